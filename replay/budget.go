package replay

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/purser-dev/purser/enforcer"
)

// MaxTraceBudgetPPM bounds a percentage trace budget (1000%).
const MaxTraceBudgetPPM = 10_000_000

// ParsePercent reads a share such as "25%" or "12.5%" (at most four
// decimals, above 0 and at most 1000%) as parts per million.
func ParsePercent(s string) (int64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, fmt.Errorf("%q is not a percentage (e.g. 25%%)", s)
	}
	whole, frac, _ := strings.Cut(num, ".")
	if whole == "" || len(frac) > 4 || !allDigits(whole) || !allDigits(frac) || len(whole) > 5 {
		return 0, fmt.Errorf("%q is not a percentage with at most 4 decimals (e.g. 25%% or 12.5%%)", s)
	}
	var ppm int64
	for _, c := range whole + frac + strings.Repeat("0", 4-len(frac)) {
		ppm = ppm*10 + int64(c-'0')
	}
	if ppm <= 0 || ppm > MaxTraceBudgetPPM {
		return 0, fmt.Errorf("%s is out of range: above 0%% and at most 1000%%", s)
	}
	return ppm, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// TraceActual sums the actual costs a trace reports (steps without one
// add nothing); ok is false when no step has one.
func TraceActual(t *Trace) (total enforcer.Nanos, ok bool, err error) {
	for i := range t.Steps {
		if a := t.Steps[i].Actual; a != nil {
			if total, err = total.Add(*a); err != nil {
				return 0, false, fmt.Errorf("actual cost of trace %s: %w", t.Name, err)
			}
			ok = true
		}
	}
	return total, ok, nil
}

// TraceLimit is ppm parts per million of the trace's actual cost, rounded
// down to a nano-USD; ok is false when the trace reports no actual cost.
func TraceLimit(t *Trace, ppm int64) (limit enforcer.Nanos, ok bool, err error) {
	total, ok, err := TraceActual(t)
	if err != nil || !ok {
		return 0, false, err
	}
	// big: actual x ppm overflows int64 from about $9,200 at 100%.
	v := new(big.Int).Mul(big.NewInt(int64(total)), big.NewInt(ppm))
	v.Quo(v, big.NewInt(1_000_000))
	if !v.IsInt64() {
		return enforcer.MaxNanos, true, nil
	}
	return enforcer.Nanos(v.Int64()), true, nil
}

// FormatPPM prints parts per million as a percentage ("25%", "12.5%").
func FormatPPM(ppm int64) string {
	s := fmt.Sprintf("%d.%04d", ppm/10_000, ppm%10_000)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".") + "%"
}

// runState is a Run's budget bookkeeping, kept as the steps go: spend per
// account as the ledger committed it (replay is sequential, so nothing is
// pending between steps) and each trace's first denial.
type runState struct {
	pool       string
	poolLimit  *enforcer.Nanos
	poolSpent  enforcer.Nanos
	limits     []*enforcer.Nanos // per trace
	cur        int
	acct       string
	traceSpent enforcer.Nanos
	refuser    string // the account that refused the step being run ("": not a budget deny)
	first      []firstDenial
}

// firstDenial is a trace's first denied step and what the limit that
// stopped it had seen spent.
type firstDenial struct {
	denied     bool
	step       int32
	account    string
	spent      enforcer.Nanos
	limit      *enforcer.Nanos
	stepsAfter int // admitted steps after it
}

func newRunState(pool string, poolLimit *enforcer.Nanos, traces int) *runState {
	return &runState{pool: pool, poolLimit: poolLimit, limits: make([]*enforcer.Nanos, traces), first: make([]firstDenial, traces)}
}

func (s *runState) startTrace(i int, acct string, limit *enforcer.Nanos) {
	s.cur, s.acct, s.traceSpent, s.limits[i] = i, acct, 0, limit
}

// denied notes which account refused a step: a budget deny names it; any
// other deny (a policy) is measured against the trace's own limit, else
// the pool's.
func (s *runState) denied(d enforcer.Decision) {
	s.refuser = ""
	if d.Layer == enforcer.LayerBudget {
		s.refuser = d.BudgetAccount
	}
}

// observe counts a replayed step of the current trace. A cut call
// (--stream) is a denial too, of its extension: when it comes first it is
// the trace's first denial, measured after its charge (what the trace had
// spent when it was stopped).
func (s *runState) observe(rc *record) {
	f := &s.first[s.cur]
	switch {
	case rc.verdict == enforcer.Allow:
		s.poolSpent += rc.charged
		s.traceSpent += rc.charged
		switch {
		case f.denied:
			f.stepsAfter++
		case rc.cut:
			s.firstDenial(f, rc.step, rc.cutBy)
		}
	case rc.verdict == enforcer.Deny && !f.denied:
		s.firstDenial(f, rc.step, s.refuser)
	}
}

func (s *runState) firstDenial(f *firstDenial, step int32, refuser string) {
	f.denied, f.step = true, step
	f.account, f.spent, f.limit = s.measure(refuser)
}

// measure returns the account a denial is measured against, its spend so
// far and its limit.
func (s *runState) measure(refuser string) (string, enforcer.Nanos, *enforcer.Nanos) {
	switch {
	case refuser == s.pool:
		return s.pool, s.poolSpent, s.poolLimit
	case refuser == s.acct, s.limits[s.cur] != nil:
		return s.acct, s.traceSpent, s.limits[s.cur]
	default:
		return s.pool, s.poolSpent, s.poolLimit
	}
}

// BudgetReport is what a budget did to the run: who ended above a limit,
// how much of its limit a trace had spent when it was first stopped, how
// much was held for what was spent, and what ran after a denial. It is in
// the report when a --budget or --trace-budget is set.
type BudgetReport struct {
	Pool *Amount `json:"pool_limit,omitempty"`
	// TraceLimit is "$X" (every trace) or "P% of each trace's actual".
	TraceLimit string `json:"trace_limit,omitempty"`
	// UnlimitedTraces had no limit of their own under a percentage budget
	// (they report no actual cost).
	UnlimitedTraces int  `json:"unlimited_traces"`
	Stream          bool `json:"stream"`

	OverrunAccounts []Overrun `json:"overrun_accounts"`
	MaxOverrunUSD   string    `json:"max_overrun_usd"`
	MaxOverrunNanos int64     `json:"max_overrun_nanos"`
	// MaxOverrunRatio is committed / limit - 1 of the worst account.
	MaxOverrunRatio float64 `json:"max_overrun_ratio"`

	// UtilizationAtFirstDenial is, over the denied traces, spend at the
	// first denial / the limit it was measured against; nil when no trace
	// was denied.
	UtilizationAtFirstDenial *MinMedian `json:"utilization_at_first_denial"`
	// StepsAfterFirstDenial counts steps admitted after their trace's first
	// denial, over all traces (per trace in DeniedTraces).
	StepsAfterFirstDenial int           `json:"steps_after_first_denial"`
	DeniedTraces          []DeniedTrace `json:"denied_traces"`

	// HoldRatio is total held / total actual over admitted steps with an
	// actual cost (LLMHoldRatio: LLM calls only); held is the hold at
	// admission, before any --stream extension.
	HoldRatio    float64 `json:"hold_ratio"`
	LLMHoldRatio float64 `json:"llm_hold_ratio"`
	Held         Amount  `json:"held"`
	Actual       Amount  `json:"actual"`

	// --stream: steps whose hold was extended, by how much in all, and the
	// calls cut where an extension was denied.
	ExtendedCalls int    `json:"extended_calls"`
	Extended      Amount `json:"extended"`
	CutCalls      int    `json:"cut_calls"`
}

// Overrun is an account whose committed spend ended above its limit.
type Overrun struct {
	Account   string  `json:"account"`
	Trace     string  `json:"trace,omitempty"` // "" for the pool
	Committed Amount  `json:"committed"`
	Limit     Amount  `json:"limit"`
	Over      Amount  `json:"over"`
	Ratio     float64 `json:"ratio"` // committed / limit - 1
}

// MinMedian summarises ratios.
type MinMedian struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
}

// DeniedTrace is a trace's first denial measured against its limit.
type DeniedTrace struct {
	Trace       string  `json:"trace"`
	Step        int     `json:"step"`
	Account     string  `json:"account"`
	Spent       Amount  `json:"spent"`
	Limit       *Amount `json:"limit,omitempty"`
	Utilization float64 `json:"utilization"` // spent / limit (0 without a limit)
	// StepsAfter counts the trace's steps admitted after its first denial.
	StepsAfter int `json:"steps_after_first_denial"`
}

func (r *Runner) budgetReport(ctx context.Context, traces []*Trace, accounts []string, recs []record) (*BudgetReport, error) {
	if r.Budget == nil && r.TraceBudget == nil && r.TraceBudgetPPM <= 0 {
		return nil, nil
	}
	br := &BudgetReport{Stream: r.Stream, OverrunAccounts: []Overrun{}, DeniedTraces: []DeniedTrace{}, MaxOverrunUSD: "0"}
	if r.Budget != nil {
		a := amount(*r.Budget)
		br.Pool = &a
	}
	switch {
	case r.TraceBudgetPPM > 0:
		br.TraceLimit = FormatPPM(r.TraceBudgetPPM) + " of each trace's actual"
		for _, l := range r.run.limits {
			if l == nil {
				br.UnlimitedTraces++
			}
		}
	case r.TraceBudget != nil:
		br.TraceLimit = r.TraceBudget.String()
	}
	if err := br.overruns(ctx, r, traces, accounts); err != nil {
		return nil, err
	}
	br.denials(r.run, traces)
	br.holds(recs)
	return br, nil
}

func (br *BudgetReport) overruns(ctx context.Context, r *Runner, traces []*Trace, accounts []string) error {
	trace := make(map[string]string, len(accounts))
	for i, a := range accounts {
		trace[a] = traces[i].Name
	}
	snaps, err := r.Enforcer.Ledger().Accounts(ctx)
	if err != nil {
		return fmt.Errorf("replay budget report: %w", err)
	}
	var worst enforcer.Nanos
	for _, s := range snaps {
		_, isTrace := trace[s.ID]
		if (s.ID != r.run.pool && !isTrace) || s.Limit == nil || s.Committed <= *s.Limit {
			continue
		}
		o := Overrun{Account: s.ID, Trace: trace[s.ID], Committed: amount(s.Committed), Limit: amount(*s.Limit), Over: amount(s.Committed - *s.Limit)}
		if *s.Limit > 0 {
			o.Ratio = round4(float64(s.Committed)/float64(*s.Limit) - 1)
		}
		br.OverrunAccounts = append(br.OverrunAccounts, o)
		worst = max(worst, s.Committed-*s.Limit)
		br.MaxOverrunRatio = max(br.MaxOverrunRatio, o.Ratio)
	}
	br.MaxOverrunUSD, br.MaxOverrunNanos = worst.Decimal(), int64(worst)
	return nil
}

func (br *BudgetReport) denials(s *runState, traces []*Trace) {
	var utils []float64
	for i, f := range s.first {
		if !f.denied {
			continue
		}
		dt := DeniedTrace{Trace: traces[i].Name, Step: int(f.step), Account: f.account, Spent: amount(f.spent), StepsAfter: f.stepsAfter}
		if f.limit != nil {
			l := amount(*f.limit)
			dt.Limit = &l
			if *f.limit > 0 {
				dt.Utilization = round4(float64(f.spent) / float64(*f.limit))
				utils = append(utils, dt.Utilization)
			}
		}
		br.StepsAfterFirstDenial += f.stepsAfter
		br.DeniedTraces = append(br.DeniedTraces, dt)
	}
	if len(utils) > 0 {
		sort.Float64s(utils)
		br.UtilizationAtFirstDenial = &MinMedian{Min: utils[0], Median: median(utils)}
	}
}

// median of a sorted slice: the mean of the middle two when even.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return round4((sorted[n/2-1] + sorted[n/2]) / 2)
}

func (br *BudgetReport) holds(recs []record) {
	var held, act, llmHeld, llmAct, ext enforcer.Nanos
	for i := range recs {
		rc := &recs[i]
		if rc.verdict != enforcer.Allow {
			continue
		}
		if rc.extended > 0 {
			br.ExtendedCalls++
			ext += rc.extended
		}
		if rc.cut {
			br.CutCalls++
		}
		if !rc.hasActual {
			continue
		}
		held, act = held+rc.held, act+rc.actual
		if rc.tool == LLMTool {
			llmHeld, llmAct = llmHeld+rc.held, llmAct+rc.actual
		}
	}
	br.Held, br.Actual, br.Extended = amount(held), amount(act), amount(ext)
	br.HoldRatio, br.LLMHoldRatio = ratio(held, act), ratio(llmHeld, llmAct)
}

func ratio(a, b enforcer.Nanos) float64 {
	if b <= 0 {
		return 0
	}
	return round4(float64(a) / float64(b))
}
