package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/postgres"
)

// A reserve committed by the database whose answer is lost is not
// "unavailable, nothing is held": the ledger looks the id up and answers
// with the hold it finds.
func TestLostReserveReplyIsResolvedByLookup(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	defer l.Close()
	ctx := context.Background()
	lim := enforcer.Nanos(100)
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a", Limit: &lim}); err != nil {
		t.Fatal(err)
	}
	p.loseRepliesTo("lost-reply-1", 1)
	req := enforcer.ReserveRequest{ID: "lost-reply-1", Account: "a", Estimate: 40, TTL: time.Minute, Fingerprint: "fp"}
	r, err := l.Reserve(ctx, req)
	if err != nil {
		t.Fatalf("reserve whose reply was lost after it committed: %v; want the hold, found by looking the id up", err)
	}
	if r.State != enforcer.StatePending || r.Estimate != 40 || r.Fingerprint != "fp" {
		t.Errorf("resolved reservation %+v", r)
	}
	if s, err := l.Snapshot(ctx, "a"); err != nil || s.Pending != 40 {
		t.Errorf("snapshot %+v %v; want the one hold of 40 pending", s, err)
	}
}

// When the lookup cannot be made either, the caller is told the outcome
// is unknown, not that nothing is held.
func TestLostReserveReplyWithoutLookupIsOutcomeUnknown(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	defer l.Close()
	ctx := context.Background()
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	p.loseRepliesTo("lost-reply-2", 2) // the reserve's answer and the lookup's
	_, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "lost-reply-2", Account: "a", Estimate: 40, TTL: time.Minute})
	var unknown *postgres.OutcomeUnknownError
	if !errors.As(err, &unknown) || !errors.Is(err, postgres.ErrUnavailable) || !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		t.Fatalf("reserve with the reply and the lookup lost: %v; want an OutcomeUnknownError wrapping ErrUnavailable", err)
	}
	t.Logf("outcome unknown: %v", err)
}

// FailOpen admits the call whose reserve outcome is unknown; when it
// writes the charge back it meets its own hold and commits it, instead of
// calling it a conflict and dropping the charge.
func TestFailOpenWriteBackCommitsItsOwnHold(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	f := newFailOpen(t, l, filepath.Join(t.TempDir(), "journal"), 0)
	defer f.Close()
	ctx := context.Background()
	lim := enforcer.Nanos(100)
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "a", Limit: &lim}); err != nil {
		t.Fatal(err)
	}
	p.loseRepliesTo("own-hold", 2) // the reserve commits, its answer and the lookup's are lost
	req := enforcer.ReserveRequest{ID: "own-hold", Account: "a", Tool: "Read", Estimate: 10, TTL: time.Minute, Fingerprint: "fp"}
	if _, err := f.Reserve(ctx, req); err != nil {
		t.Fatalf("fail-open reserve with an unknown outcome: %v; want admitted in memory", err)
	}
	actual := enforcer.Nanos(7)
	if _, err := f.Commit(ctx, "own-hold", &actual, ""); err != nil {
		t.Fatal(err)
	}
	syncUntilWritten(t, f)
	r, err := l.Reservation(ctx, "own-hold")
	if err != nil || r.State != enforcer.StateCommitted || r.Charged != 7 {
		t.Errorf("own-hold in the shared ledger: %+v %v; want committed at 7", r, err)
	}
	if s, err := l.Snapshot(ctx, "a"); err != nil || s.Committed != 7 || s.Pending != 0 {
		t.Errorf("account: %+v %v; want committed 7, nothing pending", s, err)
	}
}

// Charges acknowledged during an outage survive the process: they are in
// the journal and written when the next process starts and reaches the
// database.
func TestFailOpenJournalKeepsChargesAcrossRestart(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	journal := filepath.Join(t.TempDir(), "journal")
	f := newFailOpen(t, l, journal, 0)
	ctx := context.Background()
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	for i, id := range []string{"j1", "j2"} {
		if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "a", Estimate: 5, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		actual := enforcer.Nanos(3 + i)
		if _, err := f.Commit(ctx, id, &actual, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil { // the database is still down
		t.Fatal(err)
	}
	p.setDown(false)
	l2, err := postgres.Open(ctx, p.dsn, enforcer.LedgerOptions{}, postgres.WithSchema(p.schema))
	if err != nil {
		t.Fatal(err)
	}
	f2 := newFailOpen(t, l2, journal, 0)
	defer f2.Close()
	if got := f2.Unwritten(); got != 7 {
		t.Errorf("replayed %s unwritten; want the two charges, 7", got)
	}
	syncUntilWritten(t, f2)
	if s, err := l2.Snapshot(ctx, "a"); err != nil || s.Committed != 7 {
		t.Errorf("after the restart: %+v %v; want committed 7", s, err)
	}
	// Written charges are not replayed again.
	f2.Sync(ctx)
	if err := f2.Close(); err != nil {
		t.Fatal(err)
	}
	l3, err := postgres.Open(ctx, p.dsn, enforcer.LedgerOptions{}, postgres.WithSchema(p.schema))
	if err != nil {
		t.Fatal(err)
	}
	f3 := newFailOpen(t, l3, journal, 0)
	defer f3.Close()
	if got := f3.Unwritten(); got != 0 {
		t.Errorf("a second restart replays %s; want nothing", got)
	}
}

// The journal is bounded: past JournalEntriesMax charges and live holds
// nothing more is admitted, with an error that says so.
func TestFailOpenJournalFullRefusesAdmission(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	f := newFailOpen(t, l, filepath.Join(t.TempDir(), "journal"), 2)
	defer f.Close()
	ctx := context.Background()
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	for _, id := range []string{"f1", "f2"} {
		if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "a", Estimate: 1, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: "f3", Account: "a", Estimate: 1, TTL: time.Minute})
	if !errors.Is(err, postgres.ErrJournalFull) || !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		t.Fatalf("third outage hold with room for two: %v; want ErrJournalFull (and unavailable)", err)
	}
	t.Logf("journal full: %v", err)
}

// The server always passes a reservation id, and the enforcer looks it up
// first: during an outage that lookup must not fail closed.
func TestFailOpenAdmitsCallerChosenIDs(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	f, err := postgres.NewFailOpen(l, postgres.FailOpenOptions{CallMax: enforcer.MustParseUSD("0.01"),
		TotalMax: enforcer.MustParseUSD("1"), SyncEvery: time.Hour, JournalPath: filepath.Join(t.TempDir(), "journal")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	e, err := enforcer.New(f, enforcer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	d, r, err := e.Reserve(ctx, enforcer.Call{Account: "a", Tool: "Read"}, enforcer.ReserveOptions{ID: "chosen-1"})
	if err != nil || d.Verdict != enforcer.Allow || r.ID != "chosen-1" {
		t.Fatalf("reserve with a caller-chosen id while the database is down: %+v %+v %v; want admitted by fail-open", d, r, err)
	}
	if _, err := e.Ledger().Commit(ctx, "chosen-1", nil, ""); err != nil {
		t.Fatal(err)
	}
	p.setDown(false)
	syncUntilWritten(t, f)
	if r, err := l.Reservation(ctx, "chosen-1"); err != nil || r.State != enforcer.StateCommitted {
		t.Errorf("chosen-1 after recovery: %+v %v", r, err)
	}
}

func newFailOpen(t *testing.T, l *postgres.Ledger, journal string, entriesMax int) *postgres.FailOpen {
	t.Helper()
	f, err := postgres.NewFailOpen(l, postgres.FailOpenOptions{CallMax: 10, TotalMax: 25, SyncEvery: time.Hour,
		JournalPath: journal, JournalEntriesMax: entriesMax})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// syncUntilWritten runs Sync until every outage charge is written.
func syncUntilWritten(t *testing.T, f *postgres.FailOpen) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		f.Sync(ctx)
		cancel()
		if f.Unwritten() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outage charges never written: %s unwritten", f.Unwritten())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A retry that lands in the same batch as its first attempt is answered
// as a retry (the same hold), not budget-checked against its own hold.
func TestRetryInTheSameBatchIsARetry(t *testing.T) {
	dsn := testDSN(t)
	l := openTemp(t, enforcer.LedgerOptions{}, postgres.WithWriters(1))
	ctx := context.Background()
	lim := enforcer.Nanos(10)
	for _, id := range []string{"a", "blocker"} {
		if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: id, Limit: &lim}); err != nil {
			t.Fatal(err)
		}
	}
	// Hold the writer in a batch on another tree while the two attempts queue.
	unlock := lockRoot(t, dsn, l, "blocker")
	blocked := make(chan error, 1)
	go func() {
		_, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "b1", Account: "blocker", Estimate: 1, TTL: time.Minute})
		blocked <- err
	}()
	waitFor(t, "the writer's batch to wait for the lock", func() bool { return lockWaiters(t, dsn) == 1 })
	req := enforcer.ReserveRequest{ID: "r1", Account: "a", Estimate: 10, TTL: time.Minute}
	var wg sync.WaitGroup
	res := make([]enforcer.Reservation, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); res[i], errs[i] = l.Reserve(ctx, req) }()
	}
	waitFor(t, "both attempts to queue", func() bool { return postgres.QueuedWrites(l) == 2 })
	unlock()
	wg.Wait()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if errs[i] != nil || res[i].ID != "r1" || res[i].State != enforcer.StatePending {
			t.Errorf("attempt %d: %+v %v; want the one hold r1", i, res[i], errs[i])
		}
	}
	if s, err := l.Snapshot(ctx, "a"); err != nil || s.Pending != 10 {
		t.Errorf("account a: %+v %v; want one hold of 10", s, err)
	}
}

// Callers wait at most their own deadline: a batch stuck behind a lock
// (or a failed one being retried) does not hold them until the operation
// timeout.
func TestWritersWaitOnlyTheirOwnDeadline(t *testing.T) {
	dsn := testDSN(t)
	l := openTemp(t, enforcer.LedgerOptions{}, postgres.WithWriters(1), postgres.WithOpTimeout(time.Minute),
		postgres.WithStatementTimeout(time.Minute))
	ctx := context.Background()
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	unlock := lockRoot(t, dsn, l, "a")
	var released sync.Mutex // held while the lock is: a caller that returns while it is held did not wait for it
	released.Lock()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	early := make([]bool, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			_, errs[i] = l.Reserve(cctx, enforcer.ReserveRequest{ID: "w" + string(rune('0'+i)), Account: "a", Estimate: 1, TTL: time.Minute})
			early[i] = !released.TryLock()
			if !early[i] {
				released.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
	}
	unlock()
	released.Unlock()
	<-done
	for i := range 8 {
		if !early[i] || !errors.Is(errs[i], enforcer.ErrLedgerUnavailable) {
			t.Errorf("caller %d: returned before the lock was released: %v, error %v; want an unavailable error at its own deadline", i, early[i], errs[i])
		}
	}
}

// Reads too: a pipeline stuck in a partition does not hold its callers
// past their own deadlines, nor retry each read with a fresh timeout.
func TestReadsWaitOnlyTheirOwnDeadline(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{}, postgres.WithReaders(1), postgres.WithOpTimeout(time.Minute))
	defer l.Close()
	ctx := context.Background()
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	p.setStalled(true)
	var wg sync.WaitGroup
	var mu sync.Mutex
	stalled := true
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			_, err := l.Check(cctx, "a", 1)
			mu.Lock()
			defer mu.Unlock()
			if !stalled || !errors.Is(err, enforcer.ErrLedgerUnavailable) {
				t.Errorf("read %d: returned after the partition healed (%v) or with %v; want unavailable at its own deadline", i, !stalled, err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
	}
	mu.Lock()
	stalled = false
	mu.Unlock()
	p.setDown(true) // cut the stalled connections
	<-done
}

// lockRoot locks an account's row from another connection (as a
// concurrent writer of its tree would) until the returned func is called.
func lockRoot(t *testing.T, dsn string, l *postgres.Ledger, id string) func() {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	where := l.Where()
	schema := where[len(where)-len("purser_test_0123456789abcdef"):]
	cfg.RuntimeParams["search_path"] = schema
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", id); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unlock := func() {
		once.Do(func() {
			_ = tx.Rollback(ctx)
			conn.Close(ctx)
		})
	}
	t.Cleanup(unlock)
	return unlock
}

// lockWaiters counts the database's sessions waiting for a lock.
func lockWaiters(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A database created by the previous schema version upgrades in place:
// its reservations keep working, with an empty fingerprint (what a
// request without one sends), so retries across the upgrade are retries.
func TestUpgradeFromSchemaVersion1(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	ctx := context.Background()
	v1, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		"CREATE SCHEMA " + schema,
		"SET search_path = " + schema,
		string(v1),
		"CREATE TABLE purser_schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
		"INSERT INTO purser_schema_version (version) VALUES (1)",
		"INSERT INTO accounts (id, root_id, path, limit_nanos, created_at) VALUES ('a', 'a', '{a}', 100, 0)",
		`SELECT * FROM purser_apply(NULL, '{reserve}', '{old}', '{a}', '{Read}', '{60}', '{60000000000}', '{""}')`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%.60s: %v", stmt, err)
		}
	}
	l, err := postgres.Open(ctx, dsn, enforcer.LedgerOptions{}, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	req := enforcer.ReserveRequest{ID: "old", Account: "a", Tool: "Read", Estimate: 60, TTL: time.Minute}
	if r, err := l.Reserve(ctx, req); err != nil || r.State != enforcer.StatePending || r.Fingerprint != "" {
		t.Fatalf("retry of a hold made before the upgrade: %+v %v; want the hold", r, err)
	}
	req.Fingerprint = "params-digest"
	if _, err := l.Reserve(ctx, req); !errors.Is(err, enforcer.ErrReservationConflict) {
		t.Errorf("the same id with a fingerprint: %v; want a conflict", err)
	}
}

// An account id "P/x" must descend from P: a name never claims a parent
// it does not have (a scope matching "team-a/*" would otherwise spend
// outside team-a's budget).
func TestAccountNameMustMatchItsParent(t *testing.T) {
	l := openTemp(t, enforcer.LedgerOptions{})
	ctx := context.Background()
	lim := enforcer.Nanos(10)
	for _, spec := range []enforcer.AccountSpec{{ID: "org", Limit: &lim}, {ID: "team-a", Parent: "org"}, {ID: "team-a/x", Parent: "team-a"}} {
		if _, err := l.CreateAccount(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	for _, spec := range []enforcer.AccountSpec{{ID: "team-a/free"}, {ID: "team-a/free", Parent: "org"}} {
		if _, err := l.CreateAccount(ctx, spec); !errors.Is(err, enforcer.ErrInvalidAccount) {
			t.Errorf("create %+v: %v; want ErrInvalidAccount", spec, err)
		}
	}
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "team-a/x/y", Parent: "team-a/x"}); err != nil {
		t.Errorf("a child named under its parent: %v", err)
	}
}

// Hammer (run with -race): callers with deadlines from a millisecond up
// give up while their operations are queued, in flight or done; the books
// stay consistent (every pending hold is counted once) and nothing races.
func TestDeadlinesHammer(t *testing.T) {
	l := openTemp(t, enforcer.LedgerOptions{}, postgres.WithWriters(2), postgres.WithReaders(2))
	ctx := context.Background()
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "h"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				cctx, cancel := context.WithTimeout(ctx, time.Duration(1+(g*7+i*3)%40)*time.Millisecond)
				id := fmt.Sprintf("h-%d-%d", g, i)
				_, _ = l.Reserve(cctx, enforcer.ReserveRequest{ID: id, Account: "h", Estimate: 1, TTL: time.Hour})
				switch i % 3 {
				case 0:
					_, _ = l.Commit(cctx, id, nil, "")
				case 1:
					_, _ = l.Release(cctx, id)
				}
				_, _ = l.Check(cctx, "h", 1)
				_, _ = l.Reservation(cctx, id)
				cancel()
			}
		}()
	}
	wg.Wait()
	s, err := l.Snapshot(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	list, err := l.Reservations(ctx, enforcer.ReservationFilter{Account: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var pending, committed enforcer.Nanos
	for _, r := range list {
		switch r.State {
		case enforcer.StatePending:
			pending += r.Estimate
		case enforcer.StateCommitted:
			committed += r.Charged
		}
	}
	if s.Pending != pending || s.Committed != committed {
		t.Errorf("totals %s pending, %s committed; the reservations add up to %s and %s", s.Pending, s.Committed, pending, committed)
	}
}

// Hammer (run with -race): fail-open holds reserved, committed and
// released concurrently while the sync loop runs during an outage and
// after it; every commit acknowledged is written back once.
func TestFailOpenHammer(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	f, err := postgres.NewFailOpen(l, postgres.FailOpenOptions{CallMax: 10, TotalMax: 1 << 40, SyncEvery: 20 * time.Millisecond,
		JournalPath: filepath.Join(t.TempDir(), "journal")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "h"}); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked enforcer.Nanos
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if g == 0 && i == 10 {
					p.setDown(false) // recovery while the others run
				}
				id := fmt.Sprintf("fh-%d-%d", g, i)
				if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "h", Estimate: 2, TTL: time.Hour}); err != nil {
					continue
				}
				if i%2 == 1 {
					_, _ = f.Release(ctx, id)
					continue
				}
				actual := enforcer.Nanos(1)
				if _, err := f.Commit(ctx, id, &actual, ""); err == nil {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	syncUntilWritten(t, f)
	if s, err := l.Snapshot(ctx, "h"); err != nil || s.Committed != acked {
		t.Errorf("after recovery: %+v %v; want the %s acknowledged", s, err, acked)
	}
}

// The row a write-back creates is the reservation the client made (its
// estimate, TTL and fingerprint), so a retry of that reserve after the
// outage is answered as a retry, not as a conflict.
func TestFailOpenWrittenChargeIsTheReservationMade(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	f := newFailOpen(t, l, filepath.Join(t.TempDir(), "journal"), 0)
	defer f.Close()
	ctx := context.Background()
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	req := enforcer.ReserveRequest{ID: "made", Account: "a", Tool: "Read", Estimate: 9, TTL: time.Minute, Fingerprint: "fp"}
	if _, err := f.Reserve(ctx, req); err != nil {
		t.Fatal(err)
	}
	actual := enforcer.Nanos(4)
	if _, err := f.Commit(ctx, "made", &actual, ""); err != nil {
		t.Fatal(err)
	}
	p.setDown(false)
	syncUntilWritten(t, f)
	r, err := l.Reserve(ctx, req)
	if err != nil || r.State != enforcer.StateCommitted || r.Charged != 4 || r.Estimate != 9 || r.Fingerprint != "fp" {
		t.Errorf("retry of the outage reserve after write-back: %+v %v; want the committed reservation", r, err)
	}
}
