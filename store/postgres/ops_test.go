package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/postgres"
)

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	const hosts = 6
	var wg sync.WaitGroup
	ledgers := make([]*postgres.Ledger, hosts)
	errs := make([]error, hosts)
	for i := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ledgers[i], errs[i] = postgres.Open(context.Background(), dsn, enforcer.LedgerOptions{}, postgres.WithSchema(schema))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		t.Cleanup(func() { ledgers[i].Close() })
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, latest int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), max(version) FROM "+schema+".purser_schema_version").Scan(&rows, &latest); err != nil {
		t.Fatal(err)
	}
	if rows != postgres.LatestSchemaVersion() || latest != postgres.LatestSchemaVersion() {
		t.Errorf("schema_version has %d rows up to %d; want each of %d versions once", rows, latest, postgres.LatestSchemaVersion())
	}
	// They all share one ledger.
	ctx := context.Background()
	if _, err := ledgers[0].CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ledgers[hosts-1].CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); !errors.Is(err, enforcer.ErrAccountExists) {
		t.Errorf("second host creating the same account: %v; want ErrAccountExists", err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	l, err := postgres.Open(context.Background(), dsn, enforcer.LedgerOptions{}, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "INSERT INTO "+schema+".purser_schema_version (version) VALUES (999)"); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(context.Background(), dsn, enforcer.LedgerOptions{}, postgres.WithSchema(schema))
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Fatalf("open of a schema at version 999: %v; want ErrSchemaTooNew", err)
	}
}

// Without an injected clock, expiry is measured on the database's clock:
// a hold expires, reads as expired and stops counting with no sweep.
func TestDatabaseClockExpiry(t *testing.T) {
	l := openTemp(t, enforcer.LedgerOptions{}) // no Clock: the database's
	ctx := context.Background()
	lim := enforcer.MustParseUSD("1")
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a", Limit: &lim}); err != nil {
		t.Fatal(err)
	}
	r, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "a", Estimate: lim, TTL: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.ExpiresAt.Sub(r.CreatedAt); got != 200*time.Millisecond {
		t.Errorf("expires %s after creation; want the ttl", got)
	}
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r2", Account: "a", Estimate: 1, TTL: time.Minute}); !errors.Is(err, enforcer.ErrInsufficientBudget) {
		t.Fatalf("the pool is fully held: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := l.Reservation(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		if got.State == enforcer.StateExpired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hold never expired: %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s, err := l.Snapshot(ctx, "a"); err != nil || s.Pending != 0 {
		t.Fatalf("after expiry: %+v %v; want nothing pending", s, err)
	}
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r2", Account: "a", Estimate: lim, TTL: time.Minute}); err != nil {
		t.Fatalf("the expired hold still counts: %v", err)
	}
}

// proxy forwards TCP to PostgreSQL and can be cut, like a network
// partition between a purser host and its database.
type proxy struct {
	t      *testing.T
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
	// loseReplies > 0: the server's answers to the next that many
	// requests containing marker are dropped and their connection cut,
	// after the server acted on them (a reply lost on the way back).
	loseReplies int
	marker      []byte
	// stalled: bytes are swallowed both ways (a partition that drops
	// packets instead of refusing connections).
	stalled bool

	dsn, schema string // of the ledger viaProxy opened, to open it again
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		var lose atomic.Bool // this connection's next answer is lost
		go func() { p.pipe(s, c, &lose); s.Close() }()
		go func() { p.pipe(c, s, &lose); c.Close(); s.Close() }()
	}
}

// pipe copies from src to dst, applying stalls and lost replies: a
// request carrying the marker arms lose, and the server's next bytes on
// that connection are then dropped with the connection.
func (p *proxy) pipe(dst, src net.Conn, lose *atomic.Bool) {
	buf := make([]byte, 32<<10)
	toClient := src.RemoteAddr().String() == p.target
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			stalled := p.stalled
			if !toClient && p.loseReplies > 0 && bytes.Contains(buf[:n], p.marker) {
				p.loseReplies--
				lose.Store(true)
			}
			p.mu.Unlock()
			if toClient && lose.Load() {
				return // the caller closes both ends
			}
			if !stalled {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// loseReplies drops the server's answers to the next n requests that
// contain marker (a reservation id, say), cutting their connections.
func (p *proxy) loseRepliesTo(marker string, n int) {
	p.mu.Lock()
	p.loseReplies, p.marker = n, []byte(marker)
	p.mu.Unlock()
}

func (p *proxy) setStalled(stalled bool) {
	p.mu.Lock()
	p.stalled = stalled
	p.mu.Unlock()
}

// setDown cuts every connection and refuses new ones (or accepts again).
func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// viaProxy opens a ledger whose connections go through a cuttable proxy.
func viaProxy(t *testing.T, opts enforcer.LedgerOptions, options ...postgres.Option) (*postgres.Ledger, *proxy) {
	dsn := testDSN(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("needs PURSER_TEST_POSTGRES_DSN as a postgres://host:port/db URL: %v", err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	schema := freshSchema(t, dsn)
	p.dsn, p.schema = u.String(), schema
	l, err := postgres.Open(context.Background(), u.String(), opts, append([]postgres.Option{postgres.WithSchema(schema),
		postgres.WithOpTimeout(2 * time.Second), postgres.WithStatementTimeout(2 * time.Second)}, options...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l, p
}

func TestUnreachableFailsClosed(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	defer l.Close()
	ctx := context.Background()
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	_, err := l.Check(ctx, "a", 1)
	if !errors.Is(err, postgres.ErrUnavailable) {
		t.Fatalf("check while partitioned: %v; want ErrUnavailable", err)
	}
	_, err = l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "a", Estimate: 1, TTL: time.Minute})
	if !errors.Is(err, postgres.ErrUnavailable) || !errors.Is(err, enforcer.ErrLedgerUnavailable) || errors.Is(err, enforcer.ErrInsufficientBudget) {
		t.Fatalf("reserve while partitioned: %v; want ErrUnavailable, which is enforcer.ErrLedgerUnavailable", err)
	}
	t.Logf("fail-closed error: %v", err)
	if err := l.Ping(ctx); err == nil {
		t.Error("ping (readiness) succeeded while partitioned")
	}
	p.setDown(false)
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "a", Estimate: 1, TTL: time.Minute}); err != nil {
		t.Fatalf("reserve after the partition healed: %v", err)
	}
}

func TestFailOpenBoundedAndWrittenBack(t *testing.T) {
	var mu sync.Mutex
	var alerts []enforcer.Alert
	l, p := viaProxy(t, enforcer.LedgerOptions{Notifier: enforcer.NotifierFunc(func(a enforcer.Alert) {
		mu.Lock()
		alerts = append(alerts, a)
		mu.Unlock()
	})})
	f, err := postgres.NewFailOpen(l, postgres.FailOpenOptions{CallMax: 10, TotalMax: 25, SyncEvery: 50 * time.Millisecond,
		JournalPath: filepath.Join(t.TempDir(), "journal")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	lim := enforcer.Nanos(100)
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "a", Limit: &lim}); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	if bc, err := f.Check(ctx, "a", 11); !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		t.Errorf("check above the per-call cap while partitioned: %+v %v; want refused as unavailable", bc, err)
	}
	if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: "big", Account: "a", Estimate: 11, TTL: time.Minute}); !errors.Is(err, postgres.ErrUnavailable) {
		t.Errorf("reserve above the per-call cap: %v; want refused as unavailable", err)
	}
	for _, id := range []string{"o1", "o2"} {
		if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "a", Estimate: 10, TTL: time.Minute}); err != nil {
			t.Fatalf("reserve %s within the fail-open allowance: %v", id, err)
		}
	}
	if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: "o3", Account: "a", Estimate: 10, TTL: time.Minute}); err == nil {
		t.Fatal("a third $10 hold passed the $25 outage total")
	}
	actual := enforcer.Nanos(95) // far above the estimate: still charged in full
	if _, err := f.Commit(ctx, "o1", &actual, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Release(ctx, "o2"); err != nil {
		t.Fatal(err)
	}
	if f.Unwritten() != 95 {
		t.Errorf("unwritten %s; want the $95 charge", f.Unwritten())
	}
	p.setDown(false)
	deadline := time.Now().Add(20 * time.Second)
	for f.Unwritten() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outage charge never written: %s unwritten", f.Unwritten())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s, err := f.Snapshot(ctx, "a")
	if err != nil || s.Committed != 95 || s.Pending != 0 {
		t.Fatalf("after the partition healed: %+v %v; want committed 95", s, err)
	}
	r, err := f.Reservation(ctx, "o1")
	if err != nil || r.State != enforcer.StateCommitted || r.Charged != 95 {
		t.Errorf("o1 in the shared ledger: %+v %v", r, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(alerts) != 3 || alerts[2].ThresholdPct != 90 {
		t.Errorf("alerts %+v; want 50, 75, 90 crossed by the written charge", alerts)
	}
}
