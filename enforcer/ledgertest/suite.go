package ledgertest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// NewLedger builds a fresh, empty ledger for one test with opts (which
// always carry a *FakeClock). Cleanup belongs on t.
type NewLedger func(t *testing.T, opts enforcer.LedgerOptions) enforcer.Ledger

// RunOptions scale the suite for slow stores; zero values mean defaults.
type RunOptions struct {
	// SimSteps is the simulation's step count (default 100,000; a tenth in
	// -short mode).
	SimSteps int
	// PropertySteps caps each property-test sequence (default 200; 50 in
	// -short mode). The number of sequences is rapid's -rapid.checks flag.
	PropertySteps int
	// Goroutines is the hammer's concurrency (default 1,000).
	Goroutines int
}

func (o RunOptions) withDefaults() RunOptions {
	if o.SimSteps <= 0 {
		o.SimSteps = 100_000
		if testing.Short() {
			o.SimSteps = 10_000
		}
	}
	if o.PropertySteps <= 0 {
		o.PropertySteps = 200
		if testing.Short() {
			o.PropertySteps = 50
		}
	}
	if o.Goroutines <= 0 {
		o.Goroutines = 1000
	}
	return o
}

// Run runs the whole conformance suite against ledgers from newLedger.
func Run(t *testing.T, newLedger NewLedger, opts ...RunOptions) {
	var o RunOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	o = o.withDefaults()
	t.Run("Behaviour", func(t *testing.T) { runBehaviour(t, newLedger) })
	t.Run("Hammer", func(t *testing.T) { runHammer(t, newLedger, o) })
	t.Run("Property", func(t *testing.T) { runProperty(t, newLedger, o) })
	t.Run("Simulation", func(t *testing.T) { runSimulation(t, newLedger, o) })
}

// env is one ledger under test with its clock and a record of alerts.
type env struct {
	t   *testing.T
	ctx context.Context
	l   enforcer.Ledger
	clk *FakeClock

	mu     sync.Mutex
	alerts []enforcer.Alert
}

// newEnv builds a ledger whose notifier records alerts and calls back into
// the ledger, which deadlocks unless alerts are delivered outside locks.
func newEnv(t *testing.T, newLedger NewLedger, thresholds ...int) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), clk: NewFakeClock(Epoch())}
	opts := enforcer.LedgerOptions{Clock: e.clk, Notifier: enforcer.NotifierFunc(e.notify)}
	if len(thresholds) > 0 {
		opts.ThresholdsPct = thresholds
	}
	e.l = newLedger(t, opts)
	return e
}

// newRetainEnv builds a ledger that forgets settled reservations after
// retain, with no notifier.
func newRetainEnv(t *testing.T, newLedger NewLedger, retain time.Duration) *env {
	t.Helper()
	clk := NewFakeClock(Epoch())
	e := &env{t: t, ctx: t.Context(), clk: clk}
	e.l = newLedger(t, enforcer.LedgerOptions{Clock: clk, RetainSettled: retain})
	return e
}

func (e *env) notify(a enforcer.Alert) {
	if _, err := e.l.Snapshot(e.ctx, a.Account); err != nil {
		e.t.Errorf("notifier calling back Snapshot(%s): %v", a.Account, err)
	}
	e.mu.Lock()
	e.alerts = append(e.alerts, a)
	e.mu.Unlock()
}

// takeAlerts returns and forgets the alerts seen so far.
func (e *env) takeAlerts() []enforcer.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.alerts
	e.alerts = nil
	return out
}

func usd(s string) enforcer.Nanos { return enforcer.MustParseUSD(s) }

func ptr(n enforcer.Nanos) *enforcer.Nanos { return &n }

func (e *env) create(id, parent, limit string) enforcer.Snapshot {
	e.t.Helper()
	spec := enforcer.AccountSpec{ID: id, Parent: parent}
	if limit != "" {
		spec.Limit = ptr(usd(limit))
	}
	s, err := e.l.CreateAccount(e.ctx, spec)
	if err != nil {
		e.t.Fatalf("create %s: %v", id, err)
	}
	return s
}

func (e *env) reserve(id, account, tool, est string) enforcer.Reservation {
	e.t.Helper()
	r, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: id, Account: account, Tool: tool, Estimate: usd(est), TTL: defaultTTL})
	if err != nil {
		e.t.Fatalf("reserve %s on %s for %s: %v", id, account, est, err)
	}
	return r
}

func (e *env) commit(id string, actual string) enforcer.Reservation {
	e.t.Helper()
	var a *enforcer.Nanos
	if actual != "" {
		a = ptr(usd(actual))
	}
	r, err := e.l.Commit(e.ctx, id, a, "")
	if err != nil {
		e.t.Fatalf("commit %s: %v", id, err)
	}
	return r
}

func (e *env) snap(id string) enforcer.Snapshot {
	e.t.Helper()
	s, err := e.l.Snapshot(e.ctx, id)
	if err != nil {
		e.t.Fatalf("snapshot %s: %v", id, err)
	}
	return s
}

// wantTotals asserts an account's committed and pending amounts.
func (e *env) wantTotals(id, committed, pending string) {
	e.t.Helper()
	s := e.snap(id)
	if s.Committed != usd(committed) || s.Pending != usd(pending) {
		e.t.Errorf("%s: committed %s pending %s, want %s and %s", id, s.Committed, s.Pending, usd(committed), usd(pending))
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want one wrapping %q", err, target)
	}
}

func wantDenied(t *testing.T, err error, account string, overdrawn bool) *enforcer.InsufficientBudgetError {
	t.Helper()
	var ib *enforcer.InsufficientBudgetError
	if !errors.As(err, &ib) || !errors.Is(err, enforcer.ErrInsufficientBudget) {
		t.Fatalf("error %v, want *InsufficientBudgetError", err)
	}
	if ib.Account != account || ib.Overdrawn != overdrawn {
		t.Fatalf("denied by %s (overdrawn %v), want %s (overdrawn %v)", ib.Account, ib.Overdrawn, account, overdrawn)
	}
	return ib
}

func alertKeys(as []enforcer.Alert) []string {
	var out []string
	for _, a := range as {
		k := a.Account + "@" + strconv.Itoa(a.ThresholdPct) + ":" + string(a.Level)
		if a.Overdrawn {
			k = a.Account + "@overdrawn:" + string(a.Level)
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
