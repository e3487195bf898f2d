package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/purser-dev/purser/enforcer"
)

// Amount is money in a report: exact nanos and the decimal USD text.
type Amount struct {
	USD   string `json:"usd"`
	Nanos int64  `json:"nanos"`
}

func amount(n enforcer.Nanos) Amount { return Amount{USD: n.Decimal(), Nanos: int64(n)} }

// String prints "$1.23".
func (a Amount) String() string { return "$" + a.USD }

// Report is the outcome of a replay. Its JSON form is what --json prints.
type Report struct {
	Traces       int            `json:"traces"`
	Steps        int            `json:"steps"`
	LLMCalls     int            `json:"llm_calls"`
	ToolCalls    int            `json:"tool_calls"`
	CallsByTool  map[string]int `json:"calls_by_tool"`
	SkippedLines int            `json:"skipped_lines"`

	Admitted int `json:"admitted"`
	Denied   int `json:"denied"`
	// Asked counts steps a policy asked about; the replay does not approve
	// them, so they did not run and were not charged.
	Asked        int      `json:"asked"`
	FirstDenials []Denial `json:"first_denials"`
	// Budget is set when a pool or trace budget is: the pool's limit and
	// what the limits did (see BudgetReport).
	Budget    *BudgetReport `json:"budget,omitempty"`
	Spent     Amount        `json:"spent"`
	Remaining *Amount       `json:"remaining,omitempty"`
	Overdrawn bool          `json:"overdrawn"`
	Alerts    []AlertAt     `json:"alerts"`
	TopCosts  []Cost        `json:"top_costs"`

	Accuracy Accuracy       `json:"accuracy"`
	PerTrace []TraceSummary `json:"per_trace"`

	// series is the chart's data (cumulative per step), not printed.
	series *Series
}

// Denial is the first denied step of a trace.
type Denial struct {
	Trace    string `json:"trace"`
	Step     int    `json:"step"`
	Tool     string `json:"tool"`
	Estimate Amount `json:"estimate"`
	Reason   string `json:"reason"`
}

// AlertAt is a threshold alert and the step that raised it.
type AlertAt struct {
	Account      string `json:"account"`
	Trace        string `json:"trace,omitempty"`
	ThresholdPct int    `json:"threshold_pct"`
	Level        string `json:"level"`
	Overdrawn    bool   `json:"overdrawn"`
	Committed    Amount `json:"committed"`
	Limit        Amount `json:"limit"`
	Step         int    `json:"step"`
}

// Cost is one expensive step.
type Cost struct {
	Trace    string `json:"trace"`
	Step     int    `json:"step"`
	Tool     string `json:"tool"`
	Charged  Amount `json:"charged"`
	Estimate Amount `json:"estimate"`
}

// TraceSummary is one trace's line in the report.
type TraceSummary struct {
	Name    string `json:"name"`
	Format  Format `json:"format"`
	Steps   int    `json:"steps"`
	Skipped int    `json:"skipped_lines"`
	Denied  int    `json:"denied"`
	Spent   Amount `json:"spent"`
	// Estimate sums every step's estimate, admitted or not.
	Estimate Amount `json:"estimate"`
}

// Series returns the chart's data.
func (r *Report) Series() *Series { return r.series }

func (r *Runner) report(ctx context.Context, traces []*Trace, accounts []string, recs []record) (*Report, error) {
	rep := &Report{Traces: len(traces), Steps: len(recs), CallsByTool: map[string]int{}, FirstDenials: []Denial{}, Alerts: []AlertAt{}}
	names := make(map[string]string, len(accounts))
	for i, t := range traces {
		rep.SkippedLines += t.Skipped
		names[accounts[i]] = t.Name
	}
	rep.countSteps(traces, recs)
	err := rep.spend(ctx, r, traces, recs)
	if err != nil {
		return nil, err
	}
	if r.Alerts != nil {
		for _, a := range r.Alerts.Alerts() {
			rep.Alerts = append(rep.Alerts, AlertAt{Account: a.Account, Trace: names[a.Account], ThresholdPct: a.ThresholdPct,
				Level: string(a.Level), Overdrawn: a.Overdrawn, Committed: amount(a.Committed), Limit: amount(a.Limit), Step: a.Step})
		}
	}
	topN := r.TopN
	if topN <= 0 {
		topN = 10
	}
	rep.TopCosts = topCosts(traces, recs, topN)
	rep.Accuracy = accuracy(recs)
	if rep.Budget, err = r.budgetReport(ctx, traces, accounts, recs); err != nil {
		return nil, err
	}
	rep.series = buildSeries(traces, recs, r.Budget, r.run)
	return rep, nil
}

func (rep *Report) countSteps(traces []*Trace, recs []record) {
	denied := make([]bool, len(traces))
	for _, rc := range recs {
		if rc.tool == LLMTool {
			rep.LLMCalls++
		} else {
			rep.ToolCalls++
			rep.CallsByTool[rc.name]++
		}
		switch rc.verdict {
		case enforcer.Allow:
			rep.Admitted++
		case enforcer.Ask:
			rep.Asked++
		case enforcer.Deny:
			rep.Denied++
			if !denied[rc.trace] {
				denied[rc.trace] = true
				rep.FirstDenials = append(rep.FirstDenials, Denial{Trace: traces[rc.trace].Name, Step: int(rc.step),
					Tool: rc.name, Estimate: amount(rc.est), Reason: rc.reason})
			}
		}
	}
}

func (rep *Report) spend(ctx context.Context, r *Runner, traces []*Trace, recs []record) error {
	pool := r.Pool
	if pool == "" {
		pool = "replay"
	}
	snap, err := r.Enforcer.Ledger().Snapshot(ctx, pool)
	if err != nil {
		return fmt.Errorf("replay report: %w", err)
	}
	rep.Spent, rep.Overdrawn = amount(snap.Committed), snap.Overdrawn
	if snap.Limit != nil {
		// Signed: the report shows how far an overdrawn pool went over.
		rem := amount(enforcer.RemainingOf(*snap.Limit, snap.Committed, snap.Pending))
		rep.Remaining = &rem
	}
	per := make([]TraceSummary, len(traces))
	for i, t := range traces {
		per[i] = TraceSummary{Name: t.Name, Format: t.Format, Steps: len(t.Steps), Skipped: t.Skipped}
	}
	spent := make([]enforcer.Nanos, len(traces))
	est := make([]enforcer.Nanos, len(traces))
	for _, rc := range recs {
		spent[rc.trace] += rc.charged
		est[rc.trace] += rc.est
		if rc.verdict == enforcer.Deny {
			per[rc.trace].Denied++
		}
	}
	for i := range per {
		per[i].Spent, per[i].Estimate = amount(spent[i]), amount(est[i])
	}
	rep.PerTrace = per
	return nil
}

func topCosts(traces []*Trace, recs []record, n int) []Cost {
	idx := make([]int, 0, len(recs))
	for i := range recs {
		if recs[i].charged > 0 {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return recs[idx[a]].charged > recs[idx[b]].charged })
	out := []Cost{}
	for _, i := range idx[:min(n, len(idx))] {
		rc := recs[i]
		out = append(out, Cost{Trace: traces[rc.trace].Name, Step: int(rc.step), Tool: rc.name, Charged: amount(rc.charged), Estimate: amount(rc.est)})
	}
	return out
}

// Accuracy compares estimates with actual costs, over the steps whose
// actual cost the trace reports (steps charged their estimate say nothing
// about the estimator). Denied and asked steps count too: the estimator
// was asked either way.
type Accuracy struct {
	Overall  AccuracyRow   `json:"overall"`
	ByTool   []AccuracyRow `json:"by_tool"`
	BySource []AccuracyRow `json:"by_source"`
	// Unmeasured counts steps without an actual cost.
	Unmeasured int `json:"unmeasured"`
}

// AccuracyRow summarises one group of estimates against actuals.
type AccuracyRow struct {
	Key      string `json:"key"`
	Calls    int    `json:"calls"`
	Estimate Amount `json:"estimate"`
	Actual   Amount `json:"actual"`
	// Ratio is total estimate / total actual (0 when the actual is 0).
	Ratio float64 `json:"ratio"`
	// Relative errors are (estimate-actual)/actual over calls with a
	// positive actual: the median and p90 of their absolute values, and
	// the median of the signed ones (negative: under-estimates dominate).
	MedianAbsRelErr float64 `json:"median_abs_rel_err"`
	P90AbsRelErr    float64 `json:"p90_abs_rel_err"`
	MedianRelErr    float64 `json:"median_rel_err"`
	// UnderShare is the share of calls estimated below their actual cost:
	// the calls that let an agent spend past its budget.
	UnderShare float64 `json:"under_share"`
	Under      int     `json:"under"`
}

type accGroup struct {
	est, act enforcer.Nanos
	n, under int
	rel      []float64
}

func (g *accGroup) add(rc *record) {
	g.n++
	g.est += rc.est
	g.act += rc.actual
	if rc.est < rc.actual {
		g.under++
	}
	if rc.actual > 0 {
		g.rel = append(g.rel, (float64(rc.est)-float64(rc.actual))/float64(rc.actual))
	}
}

func (g *accGroup) row(key string) AccuracyRow {
	row := AccuracyRow{Key: key, Calls: g.n, Estimate: amount(g.est), Actual: amount(g.act), Under: g.under}
	if g.act > 0 {
		row.Ratio = round4(float64(g.est) / float64(g.act))
	}
	if g.n > 0 {
		row.UnderShare = round4(float64(g.under) / float64(g.n))
	}
	if len(g.rel) == 0 {
		return row
	}
	abs := make([]float64, len(g.rel))
	for i, v := range g.rel {
		abs[i] = math.Abs(v)
	}
	sort.Float64s(abs)
	signed := append([]float64(nil), g.rel...)
	sort.Float64s(signed)
	row.MedianAbsRelErr, row.P90AbsRelErr = round4(quantile(abs, 0.5)), round4(quantile(abs, 0.9))
	row.MedianRelErr = round4(quantile(signed, 0.5))
	return row
}

// quantile reads a sorted slice by nearest rank.
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func round4(f float64) float64 { return math.Round(f*10000) / 10000 }

func accuracy(recs []record) Accuracy {
	var all accGroup
	byTool, bySource := map[string]*accGroup{}, map[string]*accGroup{}
	acc := Accuracy{}
	for i := range recs {
		rc := &recs[i]
		if !rc.hasActual {
			acc.Unmeasured++
			continue
		}
		all.add(rc)
		group(byTool, rc.tool).add(rc)
		group(bySource, rc.source).add(rc)
	}
	acc.Overall = all.row("all")
	acc.ByTool, acc.BySource = rows(byTool), rows(bySource)
	return acc
}

func group(m map[string]*accGroup, k string) *accGroup {
	g, ok := m[k]
	if !ok {
		g = &accGroup{}
		m[k] = g
	}
	return g
}

func rows(m map[string]*accGroup) []AccuracyRow {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]AccuracyRow, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k].row(k))
	}
	return out
}

// JSON returns the report as one indented JSON object.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }
