package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/enforcer/ledgertest"
	"github.com/purser-dev/purser/store/postgres"
)

// tree creates org (limit) with child a (no limit of its own) and
// returns the ledger's context.
func orgAndChild(t *testing.T, l enforcer.Ledger, limit enforcer.Nanos) context.Context {
	t.Helper()
	ctx := context.Background()
	for _, spec := range []enforcer.AccountSpec{{ID: "org", Limit: &limit}, {ID: "org/a", Parent: "org"}} {
		if _, err := l.CreateAccount(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	return ctx
}

func pendingOf(t *testing.T, l enforcer.Ledger, account string) enforcer.Nanos {
	t.Helper()
	s, err := l.Snapshot(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	return s.Pending
}

// Extend grows the hold on the account and its ancestors, all or nothing,
// under Reserve's rule and deny; commit without an actual charges the
// whole hold and takes all of it off pending.
func TestExtendWholePathAllOrNothing(t *testing.T) {
	l := openTemp(t, enforcer.LedgerOptions{})
	ctx := orgAndChild(t, l, 100)
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "org/a", Tool: "llm", Estimate: 40, TTL: time.Minute,
		BaseEstimate: 20, CalibrationKey: "org|llm|opus"}); err != nil {
		t.Fatal(err)
	}
	r, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "e1", Add: 30})
	if err != nil || r.Extended != 30 || r.Held() != 70 || r.BaseEstimate != 20 || r.CalibrationKey != "org|llm|opus" {
		t.Fatalf("extend by 30: %+v %v; want held 70 with the reserve's calibration fields", r, err)
	}
	for _, acct := range []string{"org/a", "org"} {
		if p := pendingOf(t, l, acct); p != 70 {
			t.Errorf("pending on %s after extending: %s; want 70", acct, p)
		}
	}
	_, err = l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "e2", Add: 31})
	var deny *enforcer.InsufficientBudgetError
	if !errors.As(err, &deny) || deny.Account != "org" || deny.Estimate != 31 || deny.Remaining != 30 {
		t.Fatalf("extend past the root's budget: %v; want a deny naming org, 31 asked, 30 remaining", err)
	}
	if p := pendingOf(t, l, "org/a"); p != 70 {
		t.Errorf("a denied extension changed pending to %s", p)
	}
	c, err := l.Commit(ctx, "r", nil, "")
	if err != nil || c.Charged != 70 || c.CostSource != enforcer.CostEstimated {
		t.Fatalf("commit without an actual: %+v %v; want the whole hold (70) charged", c, err)
	}
	s, _ := l.Snapshot(ctx, "org")
	if s.Pending != 0 || s.Committed != 70 {
		t.Errorf("org after commit: %+v; want 70 committed, nothing pending", s)
	}
	if again, err := l.Commit(ctx, "r", nil, ""); err != nil || again.Charged != 70 {
		t.Errorf("repeating the commit: %+v %v; want the same commit back", again, err)
	}
}

// An extension id is idempotent: the same amount answers the reservation
// as it is now (also once settled), another amount is a conflict; settled,
// unknown and out-of-bounds requests are refused with their sentinel.
func TestExtendIdempotentAndRefusals(t *testing.T) {
	l := openTemp(t, enforcer.LedgerOptions{})
	ctx := orgAndChild(t, l, 1000)
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "org/a", Estimate: 10, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	ext := enforcer.ExtendRequest{ID: "r", ExtensionID: "chunk-1", Add: 5}
	for i := range 3 {
		if r, err := l.Extend(ctx, ext); err != nil || r.Held() != 15 {
			t.Fatalf("extend attempt %d: %+v %v; want held 15 every time", i, r, err)
		}
	}
	if p := pendingOf(t, l, "org"); p != 15 {
		t.Errorf("pending %s after a repeated extension; want 15 (added once)", p)
	}
	if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "chunk-1", Add: 6}); !errors.Is(err, enforcer.ErrReservationConflict) {
		t.Errorf("same extension id, other amount: %v; want a conflict", err)
	}
	actual := enforcer.Nanos(12)
	if _, err := l.Commit(ctx, "r", &actual, ""); err != nil {
		t.Fatal(err)
	}
	if r, err := l.Extend(ctx, ext); err != nil || r.State != enforcer.StateCommitted || r.Charged != 12 {
		t.Errorf("retry of an extension after the commit: %+v %v; want the committed reservation", r, err)
	}
	if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "chunk-2", Add: 1}); !errors.Is(err, enforcer.ErrReservationSettled) {
		t.Errorf("new extension of a committed hold: %v; want ErrReservationSettled", err)
	}
	if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "nope", ExtensionID: "x", Add: 1}); !errors.Is(err, enforcer.ErrReservationNotFound) {
		t.Errorf("extend an unknown reservation: %v; want ErrReservationNotFound", err)
	}
	for _, bad := range []enforcer.ExtendRequest{
		{ID: "r", ExtensionID: "", Add: 1}, {ID: "r", ExtensionID: "x", Add: 0}, {ID: "r", ExtensionID: "x", Add: -1},
		{ID: "", ExtensionID: "x", Add: 1}, {ID: "r", ExtensionID: string(make([]byte, enforcer.MaxExtensionIDLen+1)), Add: 1},
	} {
		if _, err := l.Extend(ctx, bad); !errors.Is(err, enforcer.ErrInvalidReservation) {
			t.Errorf("extend %+v: %v; want ErrInvalidReservation", bad, err)
		}
	}
}

// Expiry and release take the whole hold off, extensions included; an
// expired hold cannot grow.
func TestExtendedHoldExpiresAndReleasesWhole(t *testing.T) {
	clk := ledgertest.NewFakeClock(ledgertest.Epoch())
	l := openTemp(t, enforcer.LedgerOptions{Clock: clk})
	ctx := orgAndChild(t, l, 1000)
	for _, id := range []string{"x", "y"} {
		if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "org/a", Estimate: 10, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: id, ExtensionID: "e", Add: 7}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := l.Release(ctx, "x"); err != nil || r.State != enforcer.StateReleased {
		t.Fatalf("release: %+v %v", r, err)
	}
	if p := pendingOf(t, l, "org"); p != 17 {
		t.Errorf("pending %s after releasing one extended hold; want 17", p)
	}
	clk.Advance(2 * time.Minute)
	if p := pendingOf(t, l, "org"); p != 0 {
		t.Errorf("pending %s once the other expired (read); want 0", p)
	}
	if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "y", ExtensionID: "late", Add: 1}); !errors.Is(err, enforcer.ErrReservationSettled) {
		t.Errorf("extend an expired hold: %v; want ErrReservationSettled", err)
	}
	if p := pendingOf(t, l, "org"); p != 0 {
		t.Errorf("pending %s after the expiry was written; want 0 (the stored total lost the whole hold)", p)
	}
	c, err := l.Commit(ctx, "y", nil, "")
	if err != nil || !c.Late || c.Charged != 17 {
		t.Errorf("late commit without an actual: %+v %v; want the whole hold (17) charged late", c, err)
	}
}

// A reservation's extensions are bounded: past MaxExtensions the next is
// refused as invalid (a retry of a stored one still answers).
func TestExtendCountBounded(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	ctx := context.Background()
	l, err := postgres.Open(ctx, dsn, enforcer.LedgerOptions{}, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	orgAndChild(t, l, 1000)
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "org/a", Estimate: 1, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "first", Add: 1}); err != nil {
		t.Fatal(err)
	}
	execIn(t, dsn, schema, fmt.Sprintf("UPDATE reservations SET extension_count = %d WHERE id = 'r'", enforcer.MaxExtensions))
	if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "one-too-many", Add: 1}); !errors.Is(err, enforcer.ErrInvalidReservation) {
		t.Errorf("extension past the maximum: %v; want ErrInvalidReservation", err)
	}
	if r, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "first", Add: 1}); err != nil || r.Extended != 1 {
		t.Errorf("retry of a stored extension at the maximum: %+v %v", r, err)
	}
}

// execIn runs statements in schema on a connection of its own.
func execIn(t *testing.T, dsn, schema string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range append([]string{"SET search_path = " + schema}, stmts...) {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%.60s: %v", s, err)
		}
	}
}

// countIn returns a count(*) query's answer in schema.
func countIn(t *testing.T, dsn, schema, query string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET search_path = "+schema); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Many callers extending holds of one tree at once (batched together)
// never take it past its limit, every granted extension is in the totals,
// and a repeated extension id is added once.
func TestExtendConcurrentHammer(t *testing.T) {
	l := openTemp(t, enforcer.LedgerOptions{})
	ctx := orgAndChild(t, l, 500)
	const holds, perHold = 10, 20
	for i := range holds {
		if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: fmt.Sprint("h", i), Account: "org/a", Estimate: 10, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range holds {
		for j := range perHold {
			for range 2 { // each extension sent twice, concurrently
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := l.Extend(ctx, enforcer.ExtendRequest{ID: fmt.Sprint("h", i), ExtensionID: fmt.Sprint("e", j), Add: 3})
					var deny *enforcer.InsufficientBudgetError
					if err != nil && !errors.As(err, &deny) {
						t.Errorf("extend: %v", err)
					}
				}()
			}
		}
	}
	wg.Wait()
	var held enforcer.Nanos
	for i := range holds {
		r, err := l.Reservation(ctx, fmt.Sprint("h", i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Extended%3 != 0 || r.Extended > 3*perHold {
			t.Errorf("%s extended by %s: not a whole number of distinct extensions", r.ID, r.Extended)
		}
		held += r.Held()
	}
	s, _ := l.Snapshot(ctx, "org")
	if s.Pending != held || held > 500 {
		t.Errorf("org pending %s, holds add up to %s, limit 500", s.Pending, held)
	}
	if held < 500-2 { // 600 asked for: every extension that fit was granted
		t.Errorf("holds add up to %s; extensions that fit were refused", held)
	}
}

// CommitWith records the usage and price source; Reservation and
// Reservations return them with the reserve's calibration fields; bad
// usage is refused naming the field and changes nothing.
func TestCommitWithRecordsUsage(t *testing.T) {
	l := openTemp(t, enforcer.LedgerOptions{})
	ctx := orgAndChild(t, l, 1_000_000)
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "org/a", Tool: "llm", Estimate: 100, TTL: time.Minute,
		BaseEstimate: 80, CalibrationKey: "org|llm|m"}); err != nil {
		t.Fatal(err)
	}
	bad := enforcer.CommitRequest{ID: "r", Usage: &enforcer.TokenUsage{Model: "m", OutputTokens: -1}}
	var ue *enforcer.UsageError
	if _, err := l.CommitWith(ctx, bad); !errors.As(err, &ue) || ue.Field != "usage.output_tokens" {
		t.Fatalf("commit with negative output tokens: %v; want a UsageError naming usage.output_tokens", err)
	}
	actual := enforcer.Nanos(123)
	u := enforcer.TokenUsage{Model: "claude-opus", InputTokens: 1, OutputTokens: 2, CacheReadTokens: 3, CacheWriteTokens: 4, CacheWrite1hTokens: 5}
	req := enforcer.CommitRequest{ID: "r", Actual: &actual, Usage: &u, PriceSource: "litellm:claude-opus"}
	c, err := l.CommitWith(ctx, req)
	if err != nil || c.Usage == nil || *c.Usage != u || c.PriceSource != "litellm:claude-opus" || c.Charged != 123 {
		t.Fatalf("commit with usage: %+v %v", c, err)
	}
	got, err := l.Reservation(ctx, "r")
	if err != nil || got.Usage == nil || *got.Usage != u || got.PriceSource != c.PriceSource || got.BaseEstimate != 80 ||
		got.CalibrationKey != "org|llm|m" {
		t.Errorf("reservation read back: %+v %v", got, err)
	}
	list, err := l.Reservations(ctx, enforcer.ReservationFilter{Account: "org/a"})
	if err != nil || len(list) != 1 || list[0].Usage == nil || *list[0].Usage != u || list[0].BaseEstimate != 80 {
		t.Errorf("reservations listed: %+v %v", list, err)
	}
	if again, err := l.CommitWith(ctx, req); err != nil || again.Charged != 123 {
		t.Errorf("repeating the commit: %+v %v; want it back", again, err)
	}
	// A commit without usage records none.
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "plain", Account: "org/a", Estimate: 1, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if p, err := l.Commit(ctx, "plain", nil, ""); err != nil || p.Usage != nil || p.PriceSource != "" {
		t.Errorf("commit without usage: %+v %v", p, err)
	}
	for _, r := range []enforcer.ReserveRequest{
		{ID: "b1", Account: "org/a", Estimate: 1, TTL: time.Minute, BaseEstimate: -1},
		{ID: "b2", Account: "org/a", Estimate: 1, TTL: time.Minute, CalibrationKey: string(make([]byte, enforcer.MaxCalibrationKeyLen+1))},
	} {
		if _, err := l.Reserve(ctx, r); !errors.Is(err, enforcer.ErrInvalidReservation) {
			t.Errorf("reserve %s with out-of-bounds calibration fields: %v; want ErrInvalidReservation", r.ID, err)
		}
	}
}

// Sweep forgets a settled reservation's extensions with it.
func TestSweepForgetsExtensions(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	ctx := context.Background()
	l, err := postgres.Open(ctx, dsn, enforcer.LedgerOptions{RetainSettled: time.Nanosecond}, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	orgAndChild(t, l, 1000)
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "org/a", Estimate: 1, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"e1", "e2"} {
		if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: e, Add: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if n := countIn(t, dsn, schema, "SELECT count(*) FROM reservation_extensions"); n != 2 {
		t.Fatalf("%d extensions stored; want 2", n)
	}
	if _, err := l.Commit(ctx, "r", nil, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	if _, err := l.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countIn(t, dsn, schema, "SELECT count(*) FROM reservation_extensions"); n != 0 {
		t.Errorf("%d extensions left after their reservation was forgotten; want 0", n)
	}
}

// An extension whose answer is lost after it committed is resolved by
// looking its id up: the caller gets the grown hold, not an error.
func TestLostExtendReplyIsResolvedByLookup(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	defer l.Close()
	ctx := orgAndChild(t, l, 100)
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "org/a", Estimate: 10, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	p.loseRepliesTo("lost-ext-1", 1)
	r, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "lost-ext-1", Add: 15})
	if err != nil || r.Held() != 25 {
		t.Fatalf("extend whose reply was lost after it committed: %+v %v; want the grown hold, found by its id", r, err)
	}
	if got := pendingOf(t, l, "org"); got != 25 {
		t.Errorf("pending %s; want 25 (extended once)", got)
	}
	p.loseRepliesTo("lost-ext-2", 2) // the extension's answer and the lookup's
	_, err = l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "lost-ext-2", Add: 1})
	var unknown *postgres.OutcomeUnknownError
	if !errors.As(err, &unknown) || !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		t.Errorf("extend with its reply and the lookup lost: %v; want an OutcomeUnknownError", err)
	}
}

// A database at schema version 2 upgrades in place: a hold made before the
// upgrade can be extended and committed (the whole hold charged), and a
// retry of its reserve is still a retry.
func TestUpgradeFromSchemaVersion2(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	ctx := context.Background()
	var stmts []string
	for _, f := range []string{"migrations/0001_init.sql", "migrations/0002_fingerprint_batch_retry.sql"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, string(b))
	}
	execIn(t, dsn, "public", "CREATE SCHEMA "+schema)
	execIn(t, dsn, schema, append(stmts,
		"CREATE TABLE purser_schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
		"INSERT INTO purser_schema_version (version) VALUES (1), (2)",
		"INSERT INTO accounts (id, root_id, path, limit_nanos, created_at) VALUES ('a', 'a', '{a}', 100, 0)",
		`SELECT * FROM purser_apply(NULL, '{reserve}', '{old}', '{a}', '{Read}', '{60}', '{60000000000}', '{""}', '{fp}', '{NULL}')`,
	)...)
	l, err := postgres.Open(ctx, dsn, enforcer.LedgerOptions{}, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	req := enforcer.ReserveRequest{ID: "old", Account: "a", Tool: "Read", Estimate: 60, TTL: time.Minute, Fingerprint: "fp"}
	if r, err := l.Reserve(ctx, req); err != nil || r.State != enforcer.StatePending || r.Extended != 0 || r.Usage != nil {
		t.Fatalf("retry of a hold made before the upgrade: %+v %v; want the hold, never extended", r, err)
	}
	if r, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "old", ExtensionID: "e", Add: 30}); err != nil || r.Held() != 90 {
		t.Fatalf("extend a hold made before the upgrade: %+v %v", r, err)
	}
	if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "old", ExtensionID: "e2", Add: 11}); !errors.Is(err, enforcer.ErrInsufficientBudget) {
		t.Errorf("extend past the limit: %v; want a deny", err)
	}
	if c, err := l.Commit(ctx, "old", nil, ""); err != nil || c.Charged != 90 {
		t.Errorf("commit: %+v %v; want the whole hold, 90", c, err)
	}
	if v := postgres.LatestSchemaVersion(); v != 3 {
		t.Errorf("latest schema version %d; want 3", v)
	}
}
