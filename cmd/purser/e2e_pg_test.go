package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The multi-host proof: several `purser serve` processes share one
// PostgreSQL ledger. Skipped unless PURSER_TEST_POSTGRES_DSN is set
// (scripts/pg-up.sh starts a throwaway cluster and prints it).

// pgTestDatabase creates a fresh database next to the one in
// PURSER_TEST_POSTGRES_DSN (a postgres:// URL), drops it when the test
// ends, and returns its DSN.
func pgTestDatabase(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("PURSER_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("set PURSER_TEST_POSTGRES_DSN=postgres://... to run; scripts/pg-up.sh starts one")
	}
	// The servers would read PURSER_TEST_POSTGRES_DSN as the config key
	// test_postgres_dsn and refuse it; hide it from them for this test.
	t.Setenv("PURSER_TEST_POSTGRES_DSN", dsn)
	os.Unsetenv("PURSER_TEST_POSTGRES_DSN")
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("PURSER_TEST_POSTGRES_DSN must be a postgres:// URL for this test, got %q (%v)", dsn, err)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PURSER_TEST_POSTGRES_DSN: %v", err)
	}
	name := fmt.Sprintf("purser_e2e_%016x", rand.Uint64())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		t.Fatalf("create database %s: %v", name, err)
	}
	// Registered first, so it runs after every server started later is killed.
	t.Cleanup(func() {
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// pgCall is one HTTP exchange that reports problems instead of failing
// the test, so client goroutines can use it.
func pgCall(c *http.Client, method, url string, body any) (int, map[string]any, error) {
	var rd *bytes.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: decode: %w", method, url, err)
	}
	return resp.StatusCode, out, nil
}

func startPGServers(t *testing.T, n int, cfg string) []*serverProc {
	t.Helper()
	var ps []*serverProc
	for range n {
		ps = append(ps, startServer(t, t.TempDir(), cfg))
	}
	return ps
}

func TestPostgresSharedPoolAcrossServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four real servers")
	}
	dsn := pgTestDatabase(t)
	// Read costs $0.001 (built-in table); the pool's $0.2 is exactly 200
	// of them. pool/a is capped lower, pool/b draws on the pool alone.
	cfg := fmt.Sprintf(`store: {kind: postgres, dsn: %q}
plugins: {entries: [], watch: false}
decision_log: {enabled: false}
accounts:
  - {id: pool, limit_usd: "0.2"}
  - {id: pool/a, parent: pool, limit_usd: "0.08"}
  - {id: pool/b, parent: pool}
`, dsn)
	ps := startPGServers(t, 4, cfg)

	type outcome struct {
		id, account string
		admitted    bool
	}
	var mu sync.Mutex
	var outcomes []outcome
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	const clients, attempts = 16, 25 // 400 attempts for 200 places
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 30 * time.Second}
			for i := range attempts {
				id := fmt.Sprintf("p-%d-%d", c, i)
				account := []string{"pool/a", "pool/b", "pool"}[(c+i)%3]
				res := ps[(c+i)%len(ps)] // reserve on one server ...
				st, out, err := pgCall(hc, "POST", res.base+"/v1/reservations", map[string]any{"id": id, "account": account, "tool": "Read"})
				if err != nil || st != 200 {
					errs <- fmt.Errorf("reserve %s on %s: %d %v %v", id, res.base, st, out, err)
					return
				}
				admitted := out["decision"] == "allow"
				mu.Lock()
				outcomes = append(outcomes, outcome{id, account, admitted})
				mu.Unlock()
				if !admitted {
					continue
				}
				com := ps[(c+i+1)%len(ps)] // ... and commit on another
				st, out, err = pgCall(hc, "POST", com.base+"/v1/reservations/"+id+"/commit", map[string]any{"actual_nanos": 1_000_000})
				if err != nil || st != 200 || out["state"] != "committed" {
					errs <- fmt.Errorf("commit %s on %s: %d %v %v", id, com.base, st, out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	admitted := map[string]int{}
	for _, o := range outcomes {
		if o.admitted {
			admitted[o.account]++
			admitted["total"]++
		}
	}
	if len(outcomes) != clients*attempts || admitted["total"] != 200 {
		t.Errorf("%d attempts, %d admitted (%v); want exactly 200 = floor($0.2 / $0.001)", len(outcomes), admitted["total"], admitted)
	}
	if admitted["pool/a"] > 80 {
		t.Errorf("pool/a admitted %d holds of $0.001 under its $0.08 limit", admitted["pool/a"])
	}
	// Every server sees the same books.
	for i, p := range ps {
		pool := p.must("GET", "/v1/accounts/pool", nil, 200)
		if pool["committed_nanos"] != float64(200_000_000) || pool["pending_nanos"] != float64(0) {
			t.Errorf("server %d: pool %v; want committed $0.2 and nothing pending", i, pool)
		}
		a := p.must("GET", "/v1/accounts/pool/a", nil, 200)
		if a["committed_nanos"] != float64(admitted["pool/a"])*1_000_000 {
			t.Errorf("server %d: pool/a committed %v, admitted %d", i, a["committed_nanos"], admitted["pool/a"])
		}
	}
	// Every reservation ended in exactly one terminal state: committed
	// once if admitted, nothing stored if denied.
	for k, o := range outcomes {
		p := ps[k%len(ps)]
		st, r := p.do("GET", "/v1/reservations/"+o.id, nil)
		switch {
		case o.admitted && (st != 200 || r["state"] != "committed" || r["charged_nanos"] != float64(1_000_000)):
			t.Errorf("admitted %s: %d %v; want committed once at $0.001", o.id, st, r)
		case !o.admitted && st != 404:
			t.Errorf("denied %s: %d %v; want nothing stored", o.id, st, r)
		}
		if o.admitted {
			// A second commit of the same reservation on another server
			// must not charge again.
			st, r := ps[(k+2)%len(ps)].do("POST", "/v1/reservations/"+o.id+"/commit", map[string]any{"actual_nanos": 2_000_000})
			if st != 409 {
				t.Errorf("second commit of %s with another amount: %d %v; want 409", o.id, st, r)
			}
		}
	}
	if pool := ps[3].must("GET", "/v1/accounts/pool", nil, 200); pool["committed_nanos"] != float64(200_000_000) {
		t.Errorf("after repeated commits: pool %v", pool)
	}
}

func TestPostgresKill9OneServerMidLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four real servers")
	}
	dsn := pgTestDatabase(t)
	cfg := fmt.Sprintf(`store: {kind: postgres, dsn: %q}
plugins: {entries: [], watch: false}
decision_log: {enabled: false}
accounts: [{id: team, limit_usd: "100"}, {id: team/x, parent: team}]
`, dsn)
	ps := startPGServers(t, 4, cfg)
	victim := ps[3]

	var mu sync.Mutex
	committed := map[string]bool{} // commits a server acknowledged
	held := map[string]bool{}      // holds acknowledged and deliberately never settled
	var tried []string
	var victimAcks atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 10 * time.Second}
			p := ps[w%len(ps)]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("k-%d-%d", w, i)
				account := []string{"team", "team/x"}[i%2]
				mu.Lock()
				tried = append(tried, id)
				mu.Unlock()
				st, out, err := pgCall(hc, "POST", p.base+"/v1/reservations", map[string]any{"id": id, "account": account, "tool": "Bash", "ttl_ms": 1500})
				if err != nil || st != 200 || out["decision"] != "allow" {
					if p == victim {
						return // killed
					}
					t.Errorf("reserve %s: %d %v %v", id, st, out, err)
					return
				}
				if i%3 == 0 { // a call in flight: held, never settled
					mu.Lock()
					held[id] = true
					mu.Unlock()
					continue
				}
				st, out, err = pgCall(hc, "POST", p.base+"/v1/reservations/"+id+"/commit", map[string]any{"actual_nanos": 1000})
				if err != nil || st != 200 {
					if p == victim {
						return
					}
					t.Errorf("commit %s: %d %v %v", id, st, out, err)
					return
				}
				mu.Lock()
				committed[id] = true
				mu.Unlock()
				if p == victim && victimAcks.Add(1) == 60 {
					_ = victim.cmd.Process.Kill() // kill -9 mid-load
				}
			}
		}()
	}
	<-victim.done
	victim.done <- nil
	time.Sleep(300 * time.Millisecond) // the others keep going for a moment
	close(stop)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if victimAcks.Load() < 60 {
		t.Fatalf("only %d commits acknowledged by the victim before it died\n%s", victimAcks.Load(), victim.logs)
	}

	// The victim's acknowledged commits (and everyone else's) are there,
	// read through a surviving server.
	p := ps[0]
	var charged int64
	states := map[string]int{}
	for _, id := range tried {
		st, r := p.do("GET", "/v1/reservations/"+id, nil)
		if st == 200 {
			states[r["state"].(string)]++
		}
		switch {
		case committed[id] && (st != 200 || r["state"] != "committed" || r["charged_nanos"] != float64(1000)):
			t.Errorf("acknowledged commit %s: %d %v", id, st, r)
		case st == 200 && r["state"] == "committed":
			charged += 1000
		}
	}
	team := p.must("GET", "/v1/accounts/team", nil, 200)
	if team["committed_nanos"] != float64(charged) {
		t.Errorf("team committed %v; its committed reservations add up to %d (%v)", team["committed_nanos"], charged, states)
	}
	// Holds left by the dead server (and the deliberately unsettled ones)
	// expire after their 1.5s ttl and stop counting, with no server
	// sweeping: every read measures expiry on the database's clock.
	deadline := time.Now().Add(30 * time.Second)
	for {
		team = p.must("GET", "/v1/accounts/team", nil, 200)
		if team["pending_nanos"] == float64(0) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending holds never expired: %v (%v)", team, states)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for id := range held {
		if st, r := ps[1].do("GET", "/v1/reservations/"+id, nil); st != 200 || r["state"] != "expired" {
			t.Errorf("unsettled hold %s: %d %v; want expired", id, st, r)
		}
	}
	// A late commit of one of them still charges (the money was spent),
	// exactly once, whichever server takes it.
	for id := range held {
		r := ps[2].must("POST", "/v1/reservations/"+id+"/commit", map[string]any{"actual_nanos": 5000}, 200)
		if r["state"] != "committed" || r["late"] != true {
			t.Errorf("late commit of %s: %v", id, r)
		}
		after := ps[1].must("GET", "/v1/accounts/team", nil, 200)
		if after["committed_nanos"] != float64(charged+5000) || after["pending_nanos"] != float64(0) {
			t.Errorf("after a late commit: %v; want committed %d", after, charged+5000)
		}
		break
	}
	t.Logf("%d reservations tried, states %v, victim acknowledged %d commits before kill -9", len(tried), states, victimAcks.Load())
}

func TestPostgresStoreConfig(t *testing.T) {
	if dsn, ok := os.LookupEnv("PURSER_TEST_POSTGRES_DSN"); ok {
		t.Setenv("PURSER_TEST_POSTGRES_DSN", dsn) // restored after the test
		os.Unsetenv("PURSER_TEST_POSTGRES_DSN")   // else read as config key test_postgres_dsn
	}
	for _, tc := range []struct {
		name string
		over map[string]any
		want string // substring of the error; "" means valid
	}{
		{"postgres needs a dsn", map[string]any{"store.kind": "postgres"}, "store.dsn: is required"},
		{"dsn only with postgres", map[string]any{"store.dsn": "postgres://h/db"}, "store.dsn: is only used with store.kind postgres"},
		{"valid", map[string]any{"store.kind": "postgres", "store.dsn": "postgres://h/db", "store.pool_conns_max": 4, "store.statement_timeout": "2s"}, ""},
		{"pool too small", map[string]any{"store.kind": "postgres", "store.dsn": "postgres://h/db", "store.pool_conns_max": 1}, "store.pool_conns_max"},
		{"fail open valid", map[string]any{"store.kind": "postgres", "store.dsn": "postgres://h/db",
			"store.fail_open.call_usd_max": "0.05", "store.fail_open.total_usd_max": "2"}, ""},
		{"fail open journal settings", map[string]any{"store.kind": "postgres", "store.dsn": "postgres://h/db",
			"store.fail_open.call_usd_max": "0.05", "store.fail_open.total_usd_max": "2",
			"store.fail_open.journal_path": "/var/lib/purser/j", "store.fail_open.journal_entries_max": 10}, ""},
		{"fail open journal entries negative", map[string]any{"store.kind": "postgres", "store.dsn": "postgres://h/db",
			"store.fail_open.call_usd_max": "0.05", "store.fail_open.total_usd_max": "2",
			"store.fail_open.journal_entries_max": -1}, "store.fail_open.journal_entries_max"},
		{"fail open total below call", map[string]any{"store.kind": "postgres", "store.dsn": "postgres://h/db",
			"store.fail_open.call_usd_max": "0.05", "store.fail_open.total_usd_max": "0.01"}, "store.fail_open.total_usd_max"},
		{"unknown kind", map[string]any{"store.kind": "mysql"}, "must be sqlite, memory or postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig("", tc.over)
			if err == nil {
				_, err = cfg.build()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("want valid, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v; want one mentioning %q", err, tc.want)
			}
		})
	}
	for s, want := range map[string]bool{"postgres://h/db": true, "postgresql://h/db": true, "postgres": false, "sqlite": false} {
		if isPostgresDSN(s) != want {
			t.Errorf("isPostgresDSN(%q) = %v", s, !want)
		}
	}
}
