package replay

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// StepClock is a deterministic clock for the ledger: it starts at a fixed
// instant and moves one second per replayed step, so reservation TTLs,
// alert times and retention never depend on how fast the replay runs.
type StepClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewStepClock starts at 2026-01-01T00:00:00Z.
func NewStepClock() *StepClock {
	return &StepClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now returns the current step time.
func (c *StepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d.
func (c *StepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// AlertCollector is a Notifier that keeps every alert with the replay
// step it fired at.
type AlertCollector struct {
	mu     sync.Mutex
	step   int
	alerts []FiredAlert
}

// FiredAlert is an alert and the global step index that caused it.
type FiredAlert struct {
	enforcer.Alert
	Step int
}

// Notify records a.
func (c *AlertCollector) Notify(a enforcer.Alert) {
	c.mu.Lock()
	c.alerts = append(c.alerts, FiredAlert{Alert: a, Step: c.step})
	c.mu.Unlock()
}

func (c *AlertCollector) setStep(i int) {
	c.mu.Lock()
	c.step = i
	c.mu.Unlock()
}

// Alerts returns a copy of the alerts so far.
func (c *AlertCollector) Alerts() []FiredAlert {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]FiredAlert(nil), c.alerts...)
}

// Runner replays traces through an enforcer. Each trace gets its own
// account under the pool account; the pool carries Budget (nil:
// unlimited) and every trace account TraceBudget (nil: draws on the pool
// only).
type Runner struct {
	Enforcer    *enforcer.Enforcer
	Clock       *StepClock      // optional; advanced one second per step
	Alerts      *AlertCollector // optional; the ledger's notifier
	Pool        string          // default "replay"
	Budget      *enforcer.Nanos
	TraceBudget *enforcer.Nanos
	// Progress, when set, is called after each trace and every
	// progressEvery steps with the steps done and the total.
	Progress func(done, total int)
	// TopN is how many of the costliest steps the report lists (default 10).
	TopN int

	total int // steps of the current Run, for Progress
}

// progressEvery is how often (in steps) Progress hears about a long trace.
const progressEvery = 1000

// record is one replayed step, kept compact for the report and the chart.
type record struct {
	trace     int32
	step      int32
	tool      string
	name      string
	source    string
	est       enforcer.Nanos
	actual    enforcer.Nanos // the trace's actual cost, when hasActual
	charged   enforcer.Nanos // what the ledger charged (0 unless admitted)
	hasActual bool
	verdict   enforcer.Verdict
	reason    string // set for denials and asks only
}

// Run replays traces in order and reports on them.
func (r *Runner) Run(ctx context.Context, traces []*Trace) (*Report, error) {
	pool := r.Pool
	if pool == "" {
		pool = "replay"
	}
	ledger := r.Enforcer.Ledger()
	if _, err := ledger.CreateAccount(ctx, enforcer.AccountSpec{ID: pool, Limit: r.Budget, Labels: map[string]string{"replay": "pool"}}); err != nil {
		return nil, fmt.Errorf("replay pool account: %w", err)
	}
	total := 0
	for _, t := range traces {
		total += len(t.Steps)
	}
	r.total = total
	recs := make([]record, 0, total)
	accounts := make([]string, len(traces))
	for i, t := range traces {
		acct := fmt.Sprintf("%s/%04d", pool, i)
		accounts[i] = acct
		_, err := ledger.CreateAccount(ctx, enforcer.AccountSpec{ID: acct, Parent: pool, Limit: r.TraceBudget,
			Labels: map[string]string{"trace": t.Name}})
		if err != nil {
			return nil, fmt.Errorf("replay account for %s: %w", t.Name, err)
		}
		if recs, err = r.runTrace(ctx, t, int32(i), acct, recs); err != nil {
			return nil, err
		}
		if r.Progress != nil {
			r.Progress(len(recs), total)
		}
	}
	return r.report(ctx, traces, accounts, recs)
}

func (r *Runner) runTrace(ctx context.Context, t *Trace, ti int32, acct string, recs []record) ([]record, error) {
	for si := range t.Steps {
		if err := ctx.Err(); err != nil {
			return recs, err
		}
		st := &t.Steps[si]
		if r.Alerts != nil {
			r.Alerts.setStep(len(recs))
		}
		rec, err := r.runStep(ctx, st, acct)
		if err != nil {
			return recs, fmt.Errorf("replay %s step %d (%s, line %d): %w", t.Name, si, st.Name, st.Line, err)
		}
		rec.trace, rec.step = ti, int32(si)
		recs = append(recs, rec)
		if r.Progress != nil && len(recs)%progressEvery == 0 {
			r.Progress(len(recs), r.total)
		}
		if r.Clock != nil {
			r.Clock.Advance(time.Second)
		}
	}
	return recs, nil
}

// runStep admits, holds and settles one step. An ask is not approved: the
// approval request is denied at once and the step counts as not run.
func (r *Runner) runStep(ctx context.Context, st *Step, acct string) (record, error) {
	e := r.Enforcer
	d, res, err := e.Reserve(ctx, enforcer.Call{Account: acct, Tool: st.Tool, Params: st.Params}, enforcer.ReserveOptions{})
	if err != nil {
		return record{}, err
	}
	rec := record{tool: st.Tool, name: st.Name, source: d.Estimate.Source, est: d.Estimate.Nanos, verdict: d.Verdict}
	if st.Actual != nil {
		rec.actual, rec.hasActual = *st.Actual, true
	}
	switch d.Verdict {
	case enforcer.Deny:
		rec.reason = d.Reason
	case enforcer.Ask:
		rec.reason = d.Reason
		if d.ApprovalID != "" {
			_, _ = e.Approvals().Deny(d.ApprovalID, "replay: asks are not approved")
		}
	case enforcer.Allow:
		source := enforcer.CostActual
		if st.Actual == nil {
			source = enforcer.CostEstimated
		}
		settled, err := e.Ledger().Commit(ctx, res.ID, st.Actual, source)
		if err != nil {
			return rec, fmt.Errorf("commit: %w", err)
		}
		rec.charged = settled.Charged
	}
	return rec, nil
}

// NewRunner returns a Runner over a fresh in-memory ledger on a step
// clock, with an alert collector as its notifier (thresholds nil: the
// defaults). cfg is the enforcer's configuration (zero value: the brief's
// defaults, no plugins).
func NewRunner(cfg enforcer.Config, thresholds []int) (*Runner, error) {
	clock, alerts := NewStepClock(), &AlertCollector{}
	ledger := enforcer.NewMemoryLedger(enforcer.LedgerOptions{Clock: clock, Notifier: alerts, ThresholdsPct: thresholds})
	if cfg.Clock == nil {
		cfg.Clock = clock
	}
	e, err := enforcer.New(ledger, cfg)
	if err != nil {
		return nil, err
	}
	return &Runner{Enforcer: e, Clock: clock, Alerts: alerts}, nil
}
