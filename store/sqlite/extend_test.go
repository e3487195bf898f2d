package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/enforcer/ledgertest"
	"github.com/purser-dev/purser/store/sqlite"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// extendEnv is a team with a $10 pool and an agent with a $1 limit under
// it, on a fake clock.
type extendEnv struct {
	t     *testing.T
	ctx   context.Context
	l     *sqlite.Ledger
	clock *ledgertest.FakeClock
}

func newExtendEnv(t *testing.T, opts enforcer.LedgerOptions) *extendEnv {
	clock := ledgertest.NewFakeClock(t0)
	opts.Clock = clock
	e := &extendEnv{t: t, ctx: context.Background(), l: openTemp(t, opts, sqlite.WithSynchronous(sqlite.SyncNormal)), clock: clock}
	pool, agent := enforcer.USD(10, 0), enforcer.USD(1, 0)
	e.must(e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: "team", Limit: &pool}))
	e.must(e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: "team/agent", Parent: "team", Limit: &agent}))
	return e
}

func (e *extendEnv) must(_ any, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *extendEnv) reserve(id string, est enforcer.Nanos) enforcer.Reservation {
	e.t.Helper()
	r, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: id, Account: "team/agent", Tool: "llm", Estimate: est, TTL: time.Minute})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *extendEnv) extend(id, ext string, add enforcer.Nanos) (enforcer.Reservation, error) {
	return e.l.Extend(e.ctx, enforcer.ExtendRequest{ID: id, ExtensionID: ext, Add: add})
}

// wantPending checks the pending total of the agent and of the team.
func (e *extendEnv) wantPending(want enforcer.Nanos) {
	e.t.Helper()
	for _, id := range []string{"team/agent", "team"} {
		if s, err := e.l.Snapshot(e.ctx, id); err != nil || s.Pending != want {
			e.t.Errorf("%s pending %s (%v), want %s", id, s.Pending, err, want)
		}
	}
}

func cents(n int64) enforcer.Nanos { return enforcer.USD(0, n*10_000_000) }

// TestExtendGrowsTheHoldOnThePath: an extension adds to the hold on the
// account and its ancestors; a retry of it changes nothing; the same
// extension id with another amount is a conflict.
func TestExtendGrowsTheHoldOnThePath(t *testing.T) {
	e := newExtendEnv(t, enforcer.LedgerOptions{})
	e.reserve("r", cents(10))
	r, err := e.extend("r", "x1", cents(20))
	if err != nil || r.Extended != cents(20) || r.Held() != cents(30) || r.Estimate != cents(10) || r.State != enforcer.StatePending {
		t.Fatalf("extend: %+v, %v", r, err)
	}
	e.wantPending(cents(30))
	// A retry answers the same reservation, marked as a repeat.
	want := r
	want.Replayed = true
	if again, err := e.extend("r", "x1", cents(20)); err != nil || again != want {
		t.Errorf("retry: %+v, %v; want %+v", again, err, want)
	}
	e.wantPending(cents(30))
	if _, err := e.extend("r", "x1", cents(21)); !errors.Is(err, enforcer.ErrReservationConflict) ||
		!strings.Contains(err.Error(), "x1") {
		t.Errorf("same id, other amount: %v, want a conflict naming the extension", err)
	}
	if r, err := e.extend("r", "x2", cents(5)); err != nil || r.Extended != cents(25) {
		t.Errorf("second extension: %+v, %v", r, err)
	}
	if got, err := e.l.Reservation(e.ctx, "r"); err != nil || got.Extended != cents(25) {
		t.Errorf("read back: %+v, %v", got, err)
	}
	e.wantPending(cents(35))
}

// TestExtendDenyChangesNothing: an extension past the tightest account on
// the path (the agent, then the team) is denied with Reserve's error, the
// add as its estimate, and the hold and totals are as before.
func TestExtendDenyChangesNothing(t *testing.T) {
	e := newExtendEnv(t, enforcer.LedgerOptions{})
	e.reserve("r", cents(60))
	_, err := e.extend("r", "big", cents(41))
	var deny *enforcer.InsufficientBudgetError
	if !errors.As(err, &deny) || deny.Account != "team/agent" || deny.Estimate != cents(41) || deny.Remaining != cents(40) {
		t.Fatalf("extend past the agent: %v (%+v)", err, deny)
	}
	if r, _ := e.l.Reservation(e.ctx, "r"); r.Extended != 0 {
		t.Errorf("denied extension recorded: %+v", r)
	}
	e.wantPending(cents(60))
	// Once denied, the id is free: a smaller retry under it is new.
	if r, err := e.extend("r", "big", cents(40)); err != nil || r.Held() != enforcer.USD(1, 0) {
		t.Errorf("extension to the limit: %+v, %v", r, err)
	}
	// The team is the tight one now.
	lim := enforcer.USD(1, 50_000_000)
	e.must(e.l.SetLimit(e.ctx, "team", &lim))
	e.must(e.l.SetLimit(e.ctx, "team/agent", nil))
	_, err = e.extend("r", "team", cents(6))
	if !errors.As(err, &deny) || deny.Account != "team" || deny.Remaining != cents(5) {
		t.Errorf("extend past the team: %v", err)
	}
	e.wantPending(enforcer.USD(1, 0))
}

// TestHeldIsWhatSettles: commit without an actual charges estimate plus
// extensions, and commit, release and expiry each take the whole hold off
// the pending totals (expiry also for readers before any write swept it).
func TestHeldIsWhatSettles(t *testing.T) {
	e := newExtendEnv(t, enforcer.LedgerOptions{})
	for _, id := range []string{"c", "rel", "exp"} {
		e.reserve(id, cents(10))
		e.must(e.extend(id, "x", cents(5)))
	}
	e.wantPending(cents(45))
	c, err := e.l.Commit(e.ctx, "c", nil, "")
	if err != nil || c.Charged != cents(15) || c.CostSource != enforcer.CostEstimated || c.Extended != cents(5) {
		t.Errorf("commit without actual: %+v, %v", c, err)
	}
	wantAgain := c
	wantAgain.Replayed = true
	if again, err := e.l.Commit(e.ctx, "c", nil, ""); err != nil || again != wantAgain {
		t.Errorf("repeated commit: %+v, %v", again, err)
	}
	e.wantPending(cents(30))
	e.must(e.l.Release(e.ctx, "rel"))
	e.wantPending(cents(15))
	e.clock.Advance(time.Hour)
	e.wantPending(0) // read before any write swept the hold
	if s, _ := e.l.Snapshot(e.ctx, "team"); s.Committed != cents(15) {
		t.Errorf("team committed %s, want 15c", s.Committed)
	}
	e.must(e.l.Sweep(e.ctx))
	e.wantPending(0)
	late, err := e.l.Commit(e.ctx, "exp", nil, "")
	if err != nil || !late.Late || late.Charged != cents(15) {
		t.Errorf("late commit of an expired extended hold: %+v, %v", late, err)
	}
	e.wantPending(0)
}

// TestExtendRefusals: a settled or expired reservation cannot grow, an
// unknown one is not found, and bad fields are invalid requests; a known
// extension id still answers after the reservation settled.
func TestExtendRefusals(t *testing.T) {
	e := newExtendEnv(t, enforcer.LedgerOptions{})
	e.reserve("done", cents(1))
	e.must(e.extend("done", "x", cents(1)))
	e.must(e.l.Commit(e.ctx, "done", nil, ""))
	e.reserve("gone", cents(1))
	e.must(e.l.Release(e.ctx, "gone"))
	e.reserve("late", cents(1))
	e.clock.Advance(2 * time.Minute)
	for _, c := range []struct {
		id, ext string
		add     enforcer.Nanos
		want    error
	}{
		{"done", "y", 1, enforcer.ErrReservationSettled},
		{"gone", "y", 1, enforcer.ErrReservationSettled},
		{"late", "y", 1, enforcer.ErrReservationSettled},
		{"nope", "y", 1, enforcer.ErrReservationNotFound},
		{"done", "x", cents(2), enforcer.ErrReservationConflict},
		{"late", "y", 0, enforcer.ErrInvalidReservation},
		{"late", "y", -1, enforcer.ErrInvalidReservation},
		{"late", "", 1, enforcer.ErrInvalidReservation},
		{"late", strings.Repeat("x", enforcer.MaxExtensionIDLen+1), 1, enforcer.ErrInvalidReservation},
		{"", "y", 1, enforcer.ErrInvalidReservation},
	} {
		_, err := e.extend(c.id, c.ext, c.add)
		if !errors.Is(err, c.want) || errors.Is(err, enforcer.ErrLedgerUnavailable) {
			t.Errorf("extend %q/%.10q by %d: %v, want %v", c.id, c.ext, c.add, err, c.want)
		}
	}
	if r, err := e.extend("done", "x", cents(1)); err != nil || r.State != enforcer.StateCommitted || r.Charged != cents(2) {
		t.Errorf("retry after commit: %+v, %v", r, err)
	}
}

// TestMaxExtensions: the 1001st extension of one hold is refused and the
// hold keeps its 1000; retries of earlier ones still answer.
func TestMaxExtensions(t *testing.T) {
	e := newExtendEnv(t, enforcer.LedgerOptions{})
	e.reserve("r", 0)
	var wg sync.WaitGroup
	for i := range enforcer.MaxExtensions {
		wg.Go(func() {
			if _, err := e.extend("r", fmt.Sprint("x", i), 1); err != nil {
				t.Errorf("extension %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if _, err := e.extend("r", "one-too-many", 1); !errors.Is(err, enforcer.ErrInvalidReservation) {
		t.Errorf("extension past the maximum: %v", err)
	}
	if r, err := e.extend("r", "x7", 1); err != nil || r.Extended != enforcer.MaxExtensions {
		t.Errorf("retry at the maximum: %+v, %v", r, err)
	}
	e.wantPending(enforcer.MaxExtensions)
}

// TestUsageAndCalibrationFieldsPersist: what Reserve and CommitWith record
// reads back from Reservation and Reservations, and after reopening.
func TestUsageAndCalibrationFieldsPersist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := sqlite.Open(ctx, path, enforcer.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"with", "without"} {
		if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "a", Tool: "llm", Estimate: 300, TTL: time.Hour,
			BaseEstimate: 100, CalibrationKey: "a|llm|claude-opus-4"}); err != nil {
			t.Fatal(err)
		}
	}
	usage := &enforcer.TokenUsage{Model: "claude-opus-4", InputTokens: 1, OutputTokens: 2, CacheReadTokens: 3,
		CacheWriteTokens: 4, CacheWrite1hTokens: 5}
	actual := enforcer.Nanos(250)
	want, err := l.CommitWith(ctx, enforcer.CommitRequest{ID: "with", Actual: &actual, Usage: usage, PriceSource: "litellm:claude-opus-4"})
	if err != nil || *want.Usage != *usage || want.PriceSource != "litellm:claude-opus-4" || want.BaseEstimate != 100 ||
		want.CalibrationKey != "a|llm|claude-opus-4" || want.CostSource != enforcer.CostActual {
		t.Fatalf("commit with usage: %+v, %v", want, err)
	}
	usage.OutputTokens = 99 // the ledger keeps its own copy
	other := *usage
	if again, err := l.CommitWith(ctx, enforcer.CommitRequest{ID: "with", Actual: &actual, Usage: &other}); err != nil ||
		again.Usage.OutputTokens != 2 || again.PriceSource != want.PriceSource {
		t.Errorf("repeated commit (usage not compared) %+v, %v; want the first usage", again, err)
	}
	plain, err := l.Commit(ctx, "without", nil, "")
	if err != nil || plain.Usage != nil || plain.PriceSource != "" {
		t.Errorf("commit without usage: %+v, %v", plain, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openPath(t, path, enforcer.LedgerOptions{})
	got, err := l.Reservation(ctx, "with")
	if err != nil || !sameReservation(got, want) {
		t.Errorf("after reopen: %+v, %v; want %+v", got, err, want)
	}
	list, err := l.Reservations(ctx, enforcer.ReservationFilter{Account: "a"})
	if err != nil || len(list) != 2 || !sameReservation(list[0], want) || list[1].Usage != nil || list[1].BaseEstimate != 100 {
		t.Errorf("listing: %+v, %v", list, err)
	}
}

func sameReservation(a, b enforcer.Reservation) bool {
	if (a.Usage == nil) != (b.Usage == nil) || (a.Usage != nil && *a.Usage != *b.Usage) {
		return false
	}
	a.Usage, b.Usage = nil, nil
	return a == b
}

func openPath(t *testing.T, path string, opts enforcer.LedgerOptions) *sqlite.Ledger {
	t.Helper()
	l, err := sqlite.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestRecordedFieldBounds: oversized calibration keys, price sources and
// bad usage are refused naming the field, and nothing is held or charged.
func TestRecordedFieldBounds(t *testing.T) {
	e := newExtendEnv(t, enforcer.LedgerOptions{})
	_, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "k", Account: "team/agent", Estimate: 1, TTL: time.Minute,
		CalibrationKey: strings.Repeat("k", enforcer.MaxCalibrationKeyLen+1)})
	if !errors.Is(err, enforcer.ErrInvalidReservation) || !strings.Contains(err.Error(), "calibration key") {
		t.Errorf("long calibration key: %v", err)
	}
	_, err = e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "k", Account: "team/agent", Estimate: 1, TTL: time.Minute, BaseEstimate: -1})
	if !errors.Is(err, enforcer.ErrInvalidReservation) || !strings.Contains(err.Error(), "base estimate") {
		t.Errorf("negative base estimate: %v", err)
	}
	e.reserve("r", 1)
	_, err = e.l.CommitWith(e.ctx, enforcer.CommitRequest{ID: "r", PriceSource: strings.Repeat("p", enforcer.MaxPriceSourceLen+1)})
	if !errors.Is(err, enforcer.ErrInvalidReservation) || !strings.Contains(err.Error(), "price source") {
		t.Errorf("long price source: %v", err)
	}
	_, err = e.l.CommitWith(e.ctx, enforcer.CommitRequest{ID: "r", Usage: &enforcer.TokenUsage{OutputTokens: -1}})
	if !errors.Is(err, enforcer.ErrInvalidParams) || !strings.Contains(err.Error(), "usage.output_tokens") {
		t.Errorf("negative usage: %v", err)
	}
	if r, _ := e.l.Reservation(e.ctx, "r"); r.State != enforcer.StatePending {
		t.Errorf("refused commits settled the hold: %+v", r)
	}
}

// TestSweepForgetsExtensions: once a settled reservation is forgotten so
// are its extensions, so its id and extension ids can be used afresh.
func TestSweepForgetsExtensions(t *testing.T) {
	e := newExtendEnv(t, enforcer.LedgerOptions{RetainSettled: time.Hour})
	e.reserve("r", 1)
	e.must(e.extend("r", "x", 5))
	e.must(e.l.Commit(e.ctx, "r", nil, ""))
	e.clock.Advance(2 * time.Hour)
	e.must(e.l.Sweep(e.ctx))
	if _, err := e.l.Reservation(e.ctx, "r"); !errors.Is(err, enforcer.ErrReservationNotFound) {
		t.Fatalf("settled reservation kept: %v", err)
	}
	e.reserve("r", 1)
	if r, err := e.extend("r", "x", 7); err != nil || r.Extended != 7 {
		t.Errorf("old extension id on the new reservation: %+v, %v; want a fresh extension", r, err)
	}
}

// TestExtendHammer: many callers extending holds on one pool at once never
// hold more than the limit, and the pending total is exactly the holds.
func TestExtendHammer(t *testing.T) {
	e := newExtendEnv(t, enforcer.LedgerOptions{})
	const holds, steps = 20, 20
	for i := range holds {
		e.reserve(fmt.Sprint("r", i), cents(1))
	}
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i := range holds {
		for j := range steps {
			wg.Go(func() {
				r, err := e.extend(fmt.Sprint("r", i), fmt.Sprint("x", j), cents(1))
				switch {
				case err == nil && r.Held() > enforcer.USD(1, 0):
					t.Errorf("hold %s above the agent's $1", r.Held())
				case err == nil:
					granted.Add(1)
				case !errors.Is(err, enforcer.ErrInsufficientBudget):
					t.Errorf("extend: %v", err)
				}
			})
		}
	}
	wg.Wait()
	// $1 = 100 cents: 20 reserved, so exactly 80 extensions of 1c fit.
	if granted.Load() != 80 {
		t.Errorf("%d extensions granted, want 80", granted.Load())
	}
	e.wantPending(enforcer.USD(1, 0))
	var sum enforcer.Nanos
	list, err := e.l.Reservations(e.ctx, enforcer.ReservationFilter{Account: "team/agent"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		sum += r.Held()
	}
	if sum != enforcer.USD(1, 0) {
		t.Errorf("holds sum to %s, want $1", sum)
	}
}
