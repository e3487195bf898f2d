package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Outage tests: real `purser serve` processes and a PostgreSQL cluster of
// their own (scripts/pg-up.sh), which the test stops and starts again —
// the shared PURSER_TEST_POSTGRES_DSN cluster other tests use is left
// alone. Skipped unless PURSER_TEST_POSTGRES_DSN is set (the PostgreSQL
// step of CI, which has the server binaries installed).

// pgCluster is a throwaway cluster a test may stop and start.
type pgCluster struct {
	t    *testing.T
	root string
	dir  string
	dsn  string
}

func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	if os.Getenv("PURSER_TEST_POSTGRES_DSN") == "" {
		t.Skip("set PURSER_TEST_POSTGRES_DSN=postgres://... to run (scripts/pg-up.sh); this test starts its own cluster too")
	}
	// The servers would read PURSER_TEST_POSTGRES_DSN as a config key.
	t.Setenv("PURSER_TEST_POSTGRES_DSN", os.Getenv("PURSER_TEST_POSTGRES_DSN"))
	os.Unsetenv("PURSER_TEST_POSTGRES_DSN")
	parent, err := os.MkdirTemp("", "purser-pg-outage")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(parent, 0o755) // as root the cluster runs as "postgres", which must reach it
	c := &pgCluster{t: t, root: repoRoot(t), dir: filepath.Join(parent, "pg")}
	t.Cleanup(func() {
		c.script("pg-down.sh", c.dir)
		os.RemoveAll(parent)
	})
	c.start()
	raw, err := os.ReadFile(filepath.Join(c.dir, "dsn"))
	if err != nil {
		t.Fatal(err)
	}
	c.dsn = strings.TrimSpace(string(raw))
	return c
}

func (c *pgCluster) script(name string, args ...string) {
	c.t.Helper()
	out, err := exec.Command("bash", append([]string{filepath.Join(c.root, "scripts", name)}, args...)...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func (c *pgCluster) start() { c.t.Helper(); c.script("pg-up.sh", c.dir) }
func (c *pgCluster) stop()  { c.t.Helper(); c.script("pg-down.sh", "--keep", c.dir) }

// Fail-open over HTTP, where the server always passes a reservation id:
// PostgreSQL is stopped mid-load, both servers keep admitting within
// their caps, the overspend stays within hosts x total_usd_max, and every
// commit a server acknowledged is in the database once it is back.
func TestPostgresFailOpenOutageEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster and two servers")
	}
	pg := newPGCluster(t)
	// Bash is $0.01 (built-in table). The team's $0.03 is spent before the
	// outage; during it each server admits at most $0.50 more.
	cfg := fmt.Sprintf(`store:
  kind: postgres
  dsn: %q
  statement_timeout: 2s
  fail_open: {call_usd_max: "0.01", total_usd_max: "0.50"}
plugins: {entries: [], watch: false}
decision_log: {enabled: false}
accounts: [{id: team, limit_usd: "0.03"}]
`, pg.dsn)
	ps := startPGServers(t, 2, cfg)
	const hosts, limit, totalMax = 2, 30_000_000, 500_000_000

	var mu sync.Mutex
	acked := map[string]bool{} // commits a server acknowledged
	var outage atomic.Bool
	var duringOutage [hosts]atomic.Int64 // commits acknowledged once the database was being stopped
	var refusedInOutage [hosts]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 20 * time.Second}
			h := c % hosts
			p := ps[h]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(5 * time.Millisecond)
				id := fmt.Sprintf("o-%d-%d", c, i)
				down := outage.Load()
				st, out, err := pgCall(hc, "POST", p.base+"/v1/reservations", map[string]any{"id": id, "account": "team", "tool": "Bash"})
				if err != nil {
					t.Errorf("reserve %s: %v", id, err)
					return
				}
				if st != 200 || out["decision"] != "allow" {
					if down && st >= 500 { // the fail-open cap (503 once the server maps ledger_unavailable)
						refusedInOutage[h].Add(1)
					}
					continue
				}
				st, _, err = pgCall(hc, "POST", p.base+"/v1/reservations/"+id+"/commit", map[string]any{})
				if err != nil || st != 200 {
					continue // not acknowledged: the client would retry it
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
				if down {
					duringOutage[h].Add(1)
				}
			}
		}()
	}
	waitUntil(t, "the budget to be spent before the outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 3
	})
	outage.Store(true) // (the budget is spent: what is admitted from now on, fail-open admits)
	pg.stop()          // mid-load
	waitUntil(t, "both servers to reach their fail-open cap", func() bool {
		return refusedInOutage[0].Load() > 0 && refusedInOutage[1].Load() > 0
	}, ps[0].logs, ps[1].logs)
	pg.start()
	outage.Store(false)
	time.Sleep(500 * time.Millisecond) // load continues across the recovery
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// The budget was spent: the database admits nothing more, so these
	// are fail-open's ($0.50 each allows 50 calls of $0.01).
	for h := range hosts {
		if n := duringOutage[h].Load(); n < 10 {
			t.Fatalf("server %d acknowledged %d commits during the outage; fail-open should admit dozens\n%s", h, n, ps[h].logs)
		}
	}

	// Every acknowledged charge reaches the database.
	ctx := context.Background()
	db, err := pgx.Connect(ctx, pg.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var missing []string
	waitUntil(t, "every acknowledged charge to be written back", func() bool {
		missing = missing[:0]
		mu.Lock()
		defer mu.Unlock()
		for id := range acked {
			var state string
			var charged int64
			err := db.QueryRow(ctx, "SELECT state, charged_nanos FROM reservations WHERE id = $1", id).Scan(&state, &charged)
			if err != nil || state != "committed" || charged != 10_000_000 {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	})
	var committed int64
	if err := db.QueryRow(ctx, "SELECT committed_nanos FROM accounts WHERE id = 'team'").Scan(&committed); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := int64(len(acked))
	mu.Unlock()
	if committed != n*10_000_000 {
		t.Errorf("team committed %d nanos; the %d acknowledged commits add up to %d", committed, n, n*10_000_000)
	}
	if committed > limit+hosts*totalMax {
		t.Errorf("team committed %d nanos: more than its limit %d plus %d hosts x total_usd_max %d", committed, limit, hosts, totalMax)
	}
	t.Logf("%d commits acknowledged (%d during the outage); team committed $%.2f against a $0.03 limit (bound $%.2f)",
		n, duringOutage[0].Load()+duringOutage[1].Load(), float64(committed)/1e9, float64(limit+hosts*totalMax)/1e9)
}

// A ledger outage reaches clients as 503 with code ledger_unavailable and
// a Retry-After header, not as a 500 "internal error" (fail closed).
func TestPostgresOutageIs503LedgerUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster and a server")
	}
	pg := newPGCluster(t)
	cfg := fmt.Sprintf(`store: {kind: postgres, dsn: %q, statement_timeout: 2s}
plugins: {entries: [], watch: false}
decision_log: {enabled: false}
accounts: [{id: team, limit_usd: "1"}]
`, pg.dsn)
	p := startPGServers(t, 1, cfg)[0]
	p.must("POST", "/v1/reservations", map[string]any{"id": "before", "account": "team", "tool": "Bash"}, 200)
	pg.stop()
	req, _ := http.NewRequest("POST", p.base+"/v1/reservations",
		strings.NewReader(`{"id": "during", "account": "team", "tool": "Bash"}`))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 503 || body.Error.Code != "ledger_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("reserve with PostgreSQL stopped: %d code %q Retry-After %q (%s); want 503 ledger_unavailable with Retry-After",
			resp.StatusCode, body.Error.Code, resp.Header.Get("Retry-After"), body.Error.Message)
	}
	pg.start()
	waitUntil(t, "the server to reach the database again", func() bool {
		st, _ := p.do("POST", "/v1/reservations", map[string]any{"id": "after", "account": "team", "tool": "Bash"})
		return st == 200
	})
}

func waitUntil(t *testing.T, what string, cond func() bool, logs ...*syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, l := range logs {
				t.Log(l)
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
