package ledgertest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// Cases added for issue 11; each names the item it covers.
func runIssue11(t *testing.T, newLedger NewLedger) {
	cases := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"ExecuteRetryWhilePendingIsInProgress", testExecuteRetryInProgress}, // item 1
		{"RetryWithOtherFingerprintConflicts", testFingerprintConflict},      // item 2
		{"ReleaseRetryReturnsReleased", testReleaseIdempotent},               // item 18
		{"OverdrawnDenyUsesBudgetSentence", testOverdrawnDenyText},           // items 14, 23
		{"ListReservations", testListReservations},                           // item 19
		{"ListReservationsValidation", testListValidation},                   // item 19
		{"NameMustMatchParent", testAccountNames},                            // item 3
		{"RetryRacingFirstAttempt", testRetryRace},                           // item 11
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newEnv(t, newLedger)) })
	}
	t.Run("LateCommitRetainedFromCommit", func(t *testing.T) { testLateCommitRetention(t, newLedger) }) // item 9
}

// testExecuteRetryInProgress: an Execute retried under the id of one
// still running answers ErrReservationInProgress and never runs the tool
// a second time (issue 11 item 1).
func testExecuteRetryInProgress(t *testing.T, e *env) {
	e.create("a", "", "1")
	enf, err := enforcer.New(e.l, enforcer.Config{Clock: e.clk})
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int64
	started, finish := make(chan struct{}), make(chan struct{})
	run := func(context.Context) (any, error) {
		if runs.Add(1) == 1 {
			close(started)
			<-finish
		}
		return "ok", nil
	}
	first := make(chan error, 1)
	go func() {
		_, err := enf.Execute(e.ctx, "a", "Read", map[string]any{"path": "/x"}, run, enforcer.WithReservationID("x1"))
		first <- err
	}()
	<-started
	res, err := enf.Execute(e.ctx, "a", "Read", map[string]any{"path": "/x"}, run, enforcer.WithReservationID("x1"))
	close(finish)
	if !errors.Is(err, enforcer.ErrReservationInProgress) {
		t.Errorf("retry while the first runs: %+v, %v; want ErrReservationInProgress", res, err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first attempt: %v", err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("tool ran %d times, want once", n)
	}
	e.wantTotals("a", "0.001", "0")
}

// testFingerprintConflict: a retry is the same request only if its
// fingerprint (params, explicit estimate, requested TTL) matches too; the
// fingerprint is kept and read back (issue 11 item 2).
func testFingerprintConflict(t *testing.T, e *env) {
	e.create("a", "", "1")
	req := enforcer.ReserveRequest{ID: "r1", Account: "a", Tool: "Bash", Estimate: usd("0.05"), TTL: defaultTTL, Fingerprint: "fp-one"}
	first, err := e.l.Reserve(e.ctx, req)
	if err != nil || first.Fingerprint != "fp-one" {
		t.Fatalf("reserve: %+v, %v", first, err)
	}
	again, err := e.l.Reserve(e.ctx, req)
	if err != nil || again != first {
		t.Errorf("same retry: %+v, %v; want %+v", again, err, first)
	}
	for _, fp := range []string{"fp-two", ""} {
		other := req
		other.Fingerprint = fp
		_, err := e.l.Reserve(e.ctx, other)
		wantErr(t, err, enforcer.ErrReservationConflict)
		if !strings.Contains(err.Error(), "fingerprint") {
			t.Errorf("conflict %q does not name the fingerprint", err)
		}
	}
	if got, err := e.l.Reservation(e.ctx, "r1"); err != nil || got.Fingerprint != "fp-one" {
		t.Errorf("Reservation(r1) = %+v, %v; want fingerprint fp-one", got, err)
	}
	e.wantTotals("a", "0", "0.05")
	long := req
	long.ID, long.Fingerprint = "r2", strings.Repeat("f", enforcer.MaxFingerprintLen+1)
	_, err = e.l.Reserve(e.ctx, long)
	wantErr(t, err, enforcer.ErrInvalidReservation)
	long.Fingerprint = long.Fingerprint[1:]
	if r, err := e.l.Reserve(e.ctx, long); err != nil || r.Fingerprint != long.Fingerprint {
		t.Errorf("fingerprint of MaxFingerprintLen: %+v, %v", r, err)
	}
}

// testReleaseIdempotent: releasing a released reservation returns it
// unchanged; a committed or expired one stays settled (issue 11 item 18).
func testReleaseIdempotent(t *testing.T, e *env) {
	e.create("a", "", "1")
	e.reserve("r", "a", "Bash", "0.3")
	first, err := e.l.Release(e.ctx, "r")
	if err != nil || first.State != enforcer.StateReleased {
		t.Fatalf("release: %+v, %v", first, err)
	}
	e.clk.Advance(time.Second)
	again, err := e.l.Release(e.ctx, "r")
	if err != nil || again != replayed(first) {
		t.Errorf("repeated release: %+v, %v; want %+v", again, err, first)
	}
	e.wantTotals("a", "0", "0")
	e.reserve("c", "a", "", "0.1")
	e.commit("c", "")
	_, err = e.l.Release(e.ctx, "c")
	wantErr(t, err, enforcer.ErrReservationSettled)
	e.reserve("x", "a", "", "0.1")
	e.clk.Advance(defaultTTL)
	_, err = e.l.Release(e.ctx, "x")
	wantErr(t, err, enforcer.ErrReservationSettled)
	e.wantTotals("a", "0.1", "0")
}

// testOverdrawnDenyText: an overdrawn account's deny uses the one budget
// sentence, with $0.00 remaining and the overdraft named; Remaining()
// saturates at 0 (issue 11 items 14 and 23).
func testOverdrawnDenyText(t *testing.T, e *env) {
	e.create("team", "", "0.30")
	e.create("team/alice", "team", "")
	e.reserve("r1", "team/alice", "LLM", "0.30")
	e.commit("r1", "0.50")
	_, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "r2", Account: "team/alice", Estimate: usd("0.10"), TTL: defaultTTL})
	wantDenied(t, err, "team", true)
	want := "Insufficient budget: estimated $0.10 but only $0.00 remaining (account team is overdrawn by $0.20)"
	if err.Error() != want {
		t.Errorf("deny text %q, want %q", err, want)
	}
	if s := e.snap("team"); !s.Overdrawn || s.Remaining() != 0 {
		t.Errorf("overdrawn snapshot remaining %s (overdrawn %v), want $0 and overdrawn", s.Remaining(), s.Overdrawn)
	}
	if c, err := e.l.Check(e.ctx, "team/alice", 0); err != nil || c.OK || c.Remaining != -usd("0.20") {
		t.Errorf("check keeps the signed remaining: %+v, %v", c, err)
	}
}

// testListReservations: Reservations lists one account's remembered
// reservations, oldest first, by state (an overdue hold counts as
// expired before any sweep), at most Limit (issue 11 item 19).
func testListReservations(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.create("a/kid", "a", "")
	e.create("b", "", "")
	e.reserve("p2", "a", "Bash", "0.1")
	e.reserve("p1", "a", "Bash", "0.1") // same instant as p2: ordered by id
	e.clk.Advance(time.Second)
	short, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "e1", Account: "a", Estimate: usd("0.2"), TTL: time.Second, Fingerprint: "f"})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Second) // e1 is overdue, not swept
	e.reserve("c1", "a", "", "0.3")
	e.commit("c1", "")
	e.reserve("r1", "a", "", "0.4")
	if _, err := e.l.Release(e.ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	e.reserve("k1", "a/kid", "", "0.5")
	e.reserve("b1", "b", "", "0.5")
	list := func(state enforcer.ReservationState, limit int) []string {
		t.Helper()
		rs, err := e.l.Reservations(e.ctx, enforcer.ReservationFilter{Account: "a", State: state, Limit: limit})
		if err != nil {
			t.Fatalf("list %q: %v", state, err)
		}
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID+":"+string(r.State))
		}
		return ids
	}
	for _, c := range []struct {
		state enforcer.ReservationState
		limit int
		want  string
	}{
		{"", 0, "p1:pending p2:pending e1:expired c1:committed r1:released"},
		{"", 2, "p1:pending p2:pending"},
		{enforcer.StatePending, 0, "p1:pending p2:pending"},
		{enforcer.StateExpired, 0, "e1:expired"},
		{enforcer.StateCommitted, 1, "c1:committed"},
		{enforcer.StateReleased, 0, "r1:released"},
	} {
		if got := strings.Join(list(c.state, c.limit), " "); got != c.want {
			t.Errorf("state %q limit %d: %s, want %s", c.state, c.limit, got, c.want)
		}
	}
	rs, err := e.l.Reservations(e.ctx, enforcer.ReservationFilter{Account: "a", State: enforcer.StateExpired})
	if err != nil || len(rs) != 1 {
		t.Fatalf("expired: %+v, %v", rs, err)
	}
	if got := rs[0]; got.Fingerprint != "f" || !got.CreatedAt.Equal(short.CreatedAt) || !got.SettledAt.Equal(short.ExpiresAt) {
		t.Errorf("listed reservation %+v, want the fields of %+v", got, short)
	}
	rs, err = e.l.Reservations(e.ctx, enforcer.ReservationFilter{Account: "a/kid"})
	if err != nil || len(rs) != 1 || rs[0].ID != "k1" {
		t.Errorf("kid: %+v, %v", rs, err)
	}
	rs, err = e.l.Reservations(e.ctx, enforcer.ReservationFilter{Account: "b", State: enforcer.StateCommitted})
	if err != nil || len(rs) != 0 {
		t.Errorf("b committed: %+v, %v; want none", rs, err)
	}
}

// testListValidation: a filter must name an account that exists, a known
// state and a limit in range; the errors say so (issue 11 item 19).
func testListValidation(t *testing.T, e *env) {
	e.create("a", "", "")
	for _, f := range []enforcer.ReservationFilter{
		{},
		{Account: "a", State: "done"},
		{Account: "a", Limit: -1},
		{Account: "a", Limit: enforcer.MaxReservationsLimit + 1},
	} {
		_, err := e.l.Reservations(e.ctx, f)
		wantErr(t, err, enforcer.ErrInvalidReservation)
	}
	_, err := e.l.Reservations(e.ctx, enforcer.ReservationFilter{Account: "nope"})
	wantErr(t, err, enforcer.ErrAccountNotFound)
	if rs, err := e.l.Reservations(e.ctx, enforcer.ReservationFilter{Account: "a", Limit: enforcer.MaxReservationsLimit}); err != nil || len(rs) != 0 {
		t.Errorf("empty account: %+v, %v", rs, err)
	}
}

// testAccountNames: an id "P/x" must descend from P (issue 11 item 3).
func testAccountNames(t *testing.T, e *env) {
	e.create("org", "", "10")
	e.create("team-a", "org", "")
	e.create("team-a/x", "team-a", "")
	e.create("team-a/y", "team-a/x", "") // inside team-a's subtree
	for _, spec := range []enforcer.AccountSpec{
		{ID: "team-a/free"},
		{ID: "team-a/free", Parent: "org"},
		{ID: "org/z/w", Parent: "org"},
		{ID: "/x"},
		{ID: "x/", Parent: "x"},
	} {
		_, err := e.l.CreateAccount(e.ctx, spec)
		wantErr(t, err, enforcer.ErrInvalidAccount)
		if _, err := e.l.Snapshot(e.ctx, spec.ID); !errors.Is(err, enforcer.ErrAccountNotFound) {
			t.Errorf("refused %+v was created: %v", spec, err)
		}
	}
}

// testRetryRace: retries racing their first attempt (as in one group
// commit or batch) all get the one reservation; a racing request with
// other fields is a conflict (issue 11 item 11).
func testRetryRace(t *testing.T, e *env) {
	e.create("a", "", "1")
	const n = 32
	req := enforcer.ReserveRequest{ID: "same", Account: "a", Tool: "Bash", Estimate: usd("0.6"), TTL: defaultTTL, Fingerprint: "fp"}
	got := make([]enforcer.Reservation, n)
	errs := make([]error, n)
	parallel(n, func(i int) { got[i], errs[i] = e.l.Reserve(e.ctx, req) })
	for i := range n {
		if errs[i] != nil || got[i] != got[0] || got[i].State != enforcer.StatePending {
			t.Fatalf("racing retry %d: %+v, %v; want %+v", i, got[i], errs[i], got[0])
		}
	}
	e.wantTotals("a", "0", "0.6")

	var mu sync.Mutex
	won := map[string]int{}
	parallel(n, func(i int) {
		r := req
		r.ID, r.Estimate, r.Fingerprint = "mixed", usd("0.1"), []string{"fp-a", "fp-b"}[i%2]
		_, err := e.l.Reserve(e.ctx, r)
		switch {
		case err == nil:
			mu.Lock()
			won[r.Fingerprint]++
			mu.Unlock()
		case !errors.Is(err, enforcer.ErrReservationConflict):
			t.Errorf("racing %s: %v", r.Fingerprint, err)
		}
	})
	// Whichever fingerprint landed first wins for all its copies; every
	// copy of the other is a conflict.
	if len(won) != 1 || won["fp-a"]+won["fp-b"] != n/2 {
		t.Errorf("successes by fingerprint %v, want exactly one fingerprint, %d times", won, n/2)
	}
	e.wantTotals("a", "0", "0.7")
}

// testLateCommitRetention: a late commit is retained for RetainSettled
// from the commit, not from the expiry, so a commit retry inside that
// window finds it (issue 11 item 9).
func testLateCommitRetention(t *testing.T, newLedger NewLedger) {
	e := newRetainEnv(t, newLedger, time.Hour)
	clk := e.clk
	e.create("a", "", "10")
	e.reserve("late", "a", "Bash", "1")
	clk.Advance(defaultTTL)
	if _, err := e.l.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Minute)
	first := e.commit("late", "0.5")
	if !first.Late {
		t.Fatalf("commit after expiry: %+v, want late", first)
	}
	clk.Advance(30 * time.Minute) // 80m after the expiry, 30m after the commit
	if _, err := e.l.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	again, err := e.l.Commit(e.ctx, "late", ptr(usd("0.5")), "")
	if err != nil || again != replayed(first) {
		t.Fatalf("commit retry within retention: %+v, %v; want %+v", again, err, first)
	}
	clk.Advance(30*time.Minute + time.Nanosecond)
	if _, err := e.l.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	_, err = e.l.Reservation(e.ctx, "late")
	wantErr(t, err, enforcer.ErrReservationNotFound)
	e.wantTotals("a", "0.5", "0")
}
