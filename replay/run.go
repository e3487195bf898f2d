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
	// TraceBudgetPPM, when > 0, replaces TraceBudget: each trace's limit
	// is this share (parts per million) of the trace's own actual cost
	// (see TraceLimit); a trace without any actual cost gets no limit.
	TraceBudgetPPM int64
	// Stream extends the hold of a step whose actual exceeds it, as a
	// streaming runtime would, and cuts the call where an extension is
	// denied (see stream.go).
	Stream bool
	// Progress, when set, is called after each trace and every
	// progressEvery steps with the steps done and the total.
	Progress func(done, total int)
	// TopN is how many of the costliest steps the report lists (default 10).
	TopN int

	total int       // steps of the current Run, for Progress
	run   *runState // the current Run's budget bookkeeping
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
	held      enforcer.Nanos // the hold at admission (0 unless admitted)
	extended  enforcer.Nanos // what --stream added to the hold
	hasActual bool
	cut       bool   // --stream: an extension was denied, the call stopped there
	cutBy     string // the account that refused the cut call's extension
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
	r.run = newRunState(pool, r.Budget, len(traces))
	recs := make([]record, 0, total)
	accounts := make([]string, len(traces))
	for i, t := range traces {
		acct := fmt.Sprintf("%s/%04d", pool, i)
		accounts[i] = acct
		limit, err := r.traceLimit(t)
		if err != nil {
			return nil, err
		}
		r.run.startTrace(i, acct, limit)
		_, err = ledger.CreateAccount(ctx, enforcer.AccountSpec{ID: acct, Parent: pool, Limit: limit,
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

// traceLimit is a trace account's limit: TraceBudget, or TraceBudgetPPM
// of the trace's actual cost.
func (r *Runner) traceLimit(t *Trace) (*enforcer.Nanos, error) {
	if r.TraceBudgetPPM <= 0 {
		return r.TraceBudget, nil
	}
	limit, ok, err := TraceLimit(t, r.TraceBudgetPPM)
	if err != nil || !ok {
		return nil, err
	}
	return &limit, nil
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
		r.run.observe(&rec)
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
	d, res, err := e.Reserve(ctx, enforcer.Call{Account: acct, Tool: st.Tool, Params: st.Params}, enforcer.ReserveOptions{Extendable: r.Stream})
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
		r.run.denied(d)
	case enforcer.Ask:
		rec.reason = d.Reason
		if d.ApprovalID != "" {
			_, _ = e.Approvals().Deny(d.ApprovalID, "replay: asks are not approved")
		}
	case enforcer.Allow:
		rec.held = res.Held()
		if err := r.settle(ctx, st, res, &rec); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// settle commits an admitted step through the enforcer: reported token
// usage goes with the commit (recorded on the reservation, and what
// calibration learns from); under Stream a step whose actual exceeds its
// hold first extends it, and a cut call is charged its hold at the cut.
func (r *Runner) settle(ctx context.Context, st *Step, res enforcer.Reservation, rec *record) error {
	req := enforcer.CommitRequest{ID: res.ID, Actual: st.Actual, Source: enforcer.CostActual, Usage: tokenUsage(st)}
	if st.Actual == nil && (req.Usage == nil || r.Stream) {
		// Under Stream a cost known only once the enforcer prices the
		// usage could exceed the hold after the fact: charge the hold.
		req.Source, req.Usage = enforcer.CostEstimated, nil
	}
	if r.Stream && st.Actual != nil && *st.Actual > res.Held() {
		held, cutBy, err := r.stream(ctx, res, *st.Actual)
		if err != nil {
			return err
		}
		rec.extended = held - res.Held()
		if cutBy != "" {
			rec.cutBy = cutBy
			// What it streamed, not what the whole call would have cost:
			// the usage is the whole call's, so it is not recorded.
			rec.cut, req.Actual, req.Usage = true, &held, nil
		}
	}
	settled, err := r.Enforcer.Commit(ctx, req)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	rec.charged = settled.Charged
	return nil
}

// tokenUsage is the step's reported usage for the commit, nil when there
// is none or it names no model (usage cannot be priced without one).
func tokenUsage(st *Step) *enforcer.TokenUsage {
	if st.Usage == nil {
		return nil
	}
	u := st.Usage.TokenUsage()
	if u.Model == "" {
		u.Model, _ = st.Params["model"].(string)
	}
	if u.Model == "" {
		return nil
	}
	return &u
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
