package replay

import (
	"context"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/purser-dev/purser/enforcer"
)

// paramEstimator estimates a step at its params["est"] (USD): the tests
// choose every hold.
type paramEstimator struct{}

func (paramEstimator) Estimate(_ context.Context, c enforcer.Call) (enforcer.Quote, error) {
	s, _ := c.Params["est"].(string)
	n, err := enforcer.ParseUSD(s)
	return enforcer.Quote{Nanos: n, Source: "test"}, err
}

func fakeRunner(t interface{ Fatal(...any) }) (*Runner, enforcer.Ledger) {
	clock := NewStepClock()
	l := enforcer.NewMemoryLedger(enforcer.LedgerOptions{Clock: clock})
	e, err := enforcer.New(l, enforcer.Config{Clock: clock, Estimators: map[string]enforcer.Estimator{"*": paramEstimator{}}})
	if err != nil {
		t.Fatal(err)
	}
	return &Runner{Enforcer: e, Clock: clock}, l
}

// committed lists an account's committed reservations, oldest first.
func committed(t *testing.T, l enforcer.Ledger, account string) []enforcer.Reservation {
	t.Helper()
	rs, err := l.Reservations(context.Background(), enforcer.ReservationFilter{Account: account, State: enforcer.StateCommitted})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// step is a tool call held at est and costing actual (USD).
func step(est, actual string) Step {
	a := enforcer.MustParseUSD(actual)
	return Step{Tool: "Work", Name: "Work", Params: map[string]any{"est": est}, Actual: &a}
}

func trace(name string, steps ...Step) *Trace {
	return &Trace{Name: name, Format: FormatPurser, Steps: steps}
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]int64{"25%": 250_000, "12.5%": 125_000, "0.0001%": 1, "1000%": 10_000_000, " 50% ": 500_000} {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"25", "0%", "-5%", "1000.0001%", "1.23456%", "abc%", "%", ".5%", "2 5%"} {
		if got, err := ParsePercent(in); err == nil {
			t.Errorf("ParsePercent(%q) = %d, want an error", in, got)
		}
	}
	if got := FormatPPM(125_000); got != "12.5%" {
		t.Errorf("FormatPPM = %s", got)
	}
}

func TestTraceLimit(t *testing.T) {
	tr := trace("a", step("0", "0.04"), Step{Tool: "Bash"}, step("0", "0.060000003"))
	if l, ok, err := TraceLimit(tr, 250_000); err != nil || !ok || l != enforcer.MustParseUSD("0.025") {
		t.Errorf("25%% of $0.100000003 = %v %v %v, want $0.025 (rounded down)", l, ok, err)
	}
	if _, ok, err := TraceLimit(trace("b", Step{Tool: "Bash"}), 250_000); ok || err != nil {
		t.Errorf("a trace without actual costs got a limit (%v)", err)
	}
	big := enforcer.MustParseUSD("9000000000")
	if l, ok, _ := TraceLimit(trace("c", Step{Tool: "X", Actual: &big}), 10_000_000); !ok || l != enforcer.MaxNanos {
		t.Errorf("1000%% of $9e9 = %v, want MaxNanos (saturated)", l)
	}
}

// Two traces under $1 each, worked by hand. a: $0.50 runs, $0.60 is
// denied at 50% of the limit, $0.20 runs after it, $0.40 is denied. b:
// held $0.10 but cost $0.90, then held $0.10 (fits: $1.00) but cost
// $0.30: $1.20 committed, 20% over; its third step is denied at 120%.
func TestBudgetReportByHand(t *testing.T) {
	r, _ := fakeRunner(t)
	limit := enforcer.MustParseUSD("1")
	r.TraceBudget = &limit
	rep, err := r.Run(context.Background(), []*Trace{
		trace("a", step("0.5", "0.5"), step("0.6", "0.6"), step("0.2", "0.2"), step("0.4", "0.4")),
		trace("b", step("0.1", "0.9"), step("0.1", "0.3"), step("0.1", "0.1")),
	})
	if err != nil {
		t.Fatal(err)
	}
	br := rep.Budget
	if br == nil || br.Pool != nil || br.TraceLimit != "$1.00" {
		t.Fatalf("budget %+v", br)
	}
	if len(br.OverrunAccounts) != 1 || br.OverrunAccounts[0].Trace != "b" || br.MaxOverrunUSD != "0.20" || br.MaxOverrunRatio != 0.2 {
		t.Errorf("overruns %+v max %s %v", br.OverrunAccounts, br.MaxOverrunUSD, br.MaxOverrunRatio)
	}
	if u := br.UtilizationAtFirstDenial; u == nil || u.Min != 0.5 || u.Median != 0.85 {
		t.Errorf("utilization at first denial %+v, want min 0.5 median 0.85", u)
	}
	if br.StepsAfterFirstDenial != 1 || len(br.DeniedTraces) != 2 || br.DeniedTraces[0].StepsAfter != 1 || br.DeniedTraces[0].Step != 1 ||
		br.DeniedTraces[1].Step != 2 || br.DeniedTraces[1].Spent.USD != "1.20" {
		t.Errorf("steps after %d, denied %+v", br.StepsAfterFirstDenial, br.DeniedTraces)
	}
	// Held $0.90 for $1.90 spent by the admitted steps.
	if br.Held.USD != "0.90" || br.Actual.USD != "1.90" || br.HoldRatio != 0.4737 || br.CutCalls != 0 || br.ExtendedCalls != 0 {
		t.Errorf("holds %+v", br)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 accounts ended above their limit; worst $0.20 over, 20.0% of its limit",
		"2 traces denied (or cut); at a trace's first denial the limit that refused it was 85.0% spent (median), 50.0% at least",
		"1 steps ran after their trace's first denial", "0.47x"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

// Under a pool budget a denial is measured against the pool: b's first
// step does not fit the $0.20 the pool has left after a's $0.80. With both
// budgets, the account that refused is the one measured.
func TestFirstDenialMeasuresTheRefusingAccount(t *testing.T) {
	r, _ := fakeRunner(t)
	pool, per := enforcer.MustParseUSD("1"), enforcer.MustParseUSD("0.5")
	r.Budget = &pool
	rep, err := r.Run(context.Background(), []*Trace{trace("a", step("0.8", "0.8")), trace("b", step("0.3", "0.3"), step("0.1", "0.1"))})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Budget.DeniedTraces
	if len(d) != 1 || d[0].Account != "replay" || d[0].Spent.USD != "0.80" || d[0].Utilization != 0.8 || d[0].StepsAfter != 1 {
		t.Errorf("pool budget: denied %+v", d)
	}
	r, _ = fakeRunner(t)
	r.Budget, r.TraceBudget = &pool, &per
	rep, err = r.Run(context.Background(), []*Trace{trace("a", step("0.4", "0.4"), step("0.2", "0.2"))})
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Budget.DeniedTraces; len(d) != 1 || d[0].Account != "replay/0000" || d[0].Utilization != 0.8 {
		t.Errorf("both budgets: denied %+v", d)
	}
}

// streamRun replays tr under --stream with a $1 limit per trace.
func streamRun(t *testing.T, tr *Trace) (*Report, enforcer.Ledger) {
	t.Helper()
	r, l := fakeRunner(t)
	limit := enforcer.MustParseUSD("1")
	r.TraceBudget, r.Stream = &limit, true
	rep, err := r.Run(context.Background(), []*Trace{tr})
	if err != nil {
		t.Fatal(err)
	}
	return rep, l
}

// With --stream, b's first call extends its hold until it covers $0.90;
// the second cannot extend past the $1 limit and is cut at its $0.10 hold:
// the account ends at exactly its limit.
func TestStreamCutsAtTheLimit(t *testing.T) {
	rep, l := streamRun(t, trace("b", step("0.1", "0.9"), step("0.1", "0.3"), step("0.1", "0.1")))
	br := rep.Budget
	if len(br.OverrunAccounts) != 0 || rep.Spent.USD != "1.00" || br.CutCalls != 1 || br.ExtendedCalls != 1 {
		t.Fatalf("spent %s, budget %+v", rep.Spent, br)
	}
	// The cut is the trace's first denial; the third step, denied, is not.
	if u := br.UtilizationAtFirstDenial; u == nil || u.Min != 1 || br.DeniedTraces[0].Step != 1 {
		t.Errorf("first denial %+v %+v", u, br.DeniedTraces)
	}
	// The cut call is charged its hold, without the whole call's usage.
	if c := committed(t, l, "replay/0000"); len(c) != 2 || c[1].Charged != enforcer.MustParseUSD("0.1") || c[1].Usage != nil ||
		c[0].Extended == 0 || c[0].Charged != enforcer.MustParseUSD("0.9") {
		t.Errorf("commits %+v", c)
	}
}

// The second call is held at $0.30 with $0.20 left of the $1 limit; its
// extensions by a quarter of the hold ($0.075, $0.09375) leave $0.03125,
// less than the next step ($0.1171875). It asks for that remainder before
// it is cut, so it streams up to the limit: $0.50, not $0.46875.
func TestStreamCutUsesTheRemainder(t *testing.T) {
	rep, l := streamRun(t, trace("b", step("0.5", "0.5"), step("0.3", "0.6")))
	if br := rep.Budget; len(br.OverrunAccounts) != 0 || br.CutCalls != 1 || rep.Spent.USD != "1.00" {
		t.Fatalf("spent %s, budget %+v", rep.Spent, br)
	}
	if c := committed(t, l, "replay/0000"); len(c) != 2 || c[1].Charged != enforcer.MustParseUSD("0.5") {
		t.Errorf("commits %+v", c)
	}
}

// A trace stopped only by a cut call (no step denied) counts as denied at
// the cut: it had spent its whole limit, and the free step after the cut
// ran after its first denial.
func TestStreamCutIsTheFirstDenial(t *testing.T) {
	rep, _ := streamRun(t, trace("b", step("0.5", "0.5"), step("0.3", "0.6"), step("0", "0")))
	br := rep.Budget
	if br.CutCalls != 1 || br.UtilizationAtFirstDenial == nil || *br.UtilizationAtFirstDenial != (MinMedian{Min: 1, Median: 1}) ||
		br.StepsAfterFirstDenial != 1 {
		t.Fatalf("budget %+v", br)
	}
	if d := br.DeniedTraces; len(d) != 1 || d[0].Step != 1 || d[0].Account != "replay/0000" || d[0].Spent.USD != "1.00" || d[0].StepsAfter != 1 {
		t.Errorf("denied %+v", d)
	}
}

// An LLM step's reported usage goes with its commit, priced by the
// enforcer (which records the price source); a step without usage
// commits its dollars, one without an actual commits nothing (the hold);
// usage without an actual is charged the enforcer's price of it.
func TestCommitCarriesUsage(t *testing.T) {
	r, l := fakeRunner(t)
	a := enforcer.MustParseUSD("0.0038")
	steps := []Step{
		{Tool: LLMTool, Name: LLMTool, Params: map[string]any{"est": "0.001", "model": "gpt-4o"}, Actual: &a,
			Usage: &Usage{Input: 1200, Output: 80}},
		{Tool: "Bash", Name: "Bash", Params: map[string]any{"est": "0.01"}},
		{Tool: LLMTool, Name: LLMTool, Params: map[string]any{"est": "0.000001", "model": "gpt-4o"}, Usage: &Usage{Input: 1_000_000}},
	}
	if _, err := r.Run(context.Background(), []*Trace{trace("u", steps...)}); err != nil {
		t.Fatal(err)
	}
	cs := committed(t, l, "replay/0000")
	if len(cs) != 3 {
		t.Fatalf("commits %+v", cs)
	}
	if c := cs[0]; c.Usage == nil || c.Usage.Model != "gpt-4o" || c.Usage.InputTokens != 1200 || c.Usage.OutputTokens != 80 ||
		c.PriceSource == "" || c.Charged != a || c.CostSource != enforcer.CostActual {
		t.Errorf("LLM commit %+v", c)
	}
	if c := cs[1]; c.Usage != nil || c.Charged != enforcer.MustParseUSD("0.01") || c.CostSource != enforcer.CostEstimated {
		t.Errorf("Bash commit %+v", c)
	}
	if c := cs[2]; c.Usage == nil || c.PriceSource == "" || c.CostSource != enforcer.CostActual || c.Charged == 0 {
		t.Errorf("usage without an actual: %+v", c)
	}
}

// Property: with --stream no account ever ends above its limit, whatever
// the holds, actuals and limits; and the spend per trace adds up.
func TestStreamNeverOverrunsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r, _ := fakeRunner(t)
		r.Stream = true
		if rapid.Bool().Draw(t, "pool") {
			b := enforcer.Nanos(rapid.Int64Range(0, 5e9).Draw(t, "budget"))
			r.Budget = &b
		}
		r.TraceBudgetPPM = rapid.Int64Range(1, 2_000_000).Draw(t, "ppm")
		var traces []*Trace
		for i := range rapid.IntRange(1, 4).Draw(t, "traces") {
			tr := &Trace{Name: "t" + itoa(i)}
			for range rapid.IntRange(1, 12).Draw(t, "steps") {
				est := enforcer.Nanos(rapid.Int64Range(0, 1e9).Draw(t, "est"))
				act := enforcer.Nanos(rapid.Int64Range(0, 3e9).Draw(t, "actual"))
				st := Step{Tool: "Work", Name: "Work", Params: map[string]any{"est": est.Decimal(), "model": "gpt-4o"}, Actual: &act}
				if rapid.Bool().Draw(t, "usage only") {
					// Priced by the enforcer at commit: the hold is charged instead.
					st.Actual, st.Usage = nil, &Usage{Output: rapid.Int64Range(0, 1e6).Draw(t, "output tokens")}
				}
				tr.Steps = append(tr.Steps, st)
			}
			traces = append(traces, tr)
		}
		rep, err := r.Run(context.Background(), traces)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Budget.OverrunAccounts) != 0 {
			t.Fatalf("overruns with --stream: %+v", rep.Budget.OverrunAccounts)
		}
		if rep.Budget.CutCalls > 0 && !someAccountAtLimit(t, r, traces, rep) {
			t.Fatalf("%d calls cut, yet no account spent its whole limit", rep.Budget.CutCalls)
		}
		var sum int64
		for _, p := range rep.PerTrace {
			sum += p.Spent.Nanos
		}
		if sum != rep.Spent.Nanos {
			t.Fatalf("per-trace spend %d != pool %d", sum, rep.Spent.Nanos)
		}
	})
}

// someAccountAtLimit: a cut call streams up to its tightest limit, and
// no later step can spend past it, so that account ends at exactly it.
func someAccountAtLimit(t *rapid.T, r *Runner, traces []*Trace, rep *Report) bool {
	if r.Budget != nil && rep.Spent.Nanos == int64(*r.Budget) {
		return true
	}
	for i, tr := range traces {
		limit, ok, err := TraceLimit(tr, r.TraceBudgetPPM)
		if err != nil {
			t.Fatal(err)
		}
		if ok && rep.PerTrace[i].Spent.Nanos == int64(limit) {
			return true
		}
	}
	return false
}

// The chart marks each trace's first denial and each account that went
// over its limit, on the trace's own line when traces are drawn apart.
func TestChartMarksDenialsAndOverruns(t *testing.T) {
	r, _ := fakeRunner(t)
	limit := enforcer.MustParseUSD("1")
	r.TraceBudget = &limit
	rep, err := r.Run(context.Background(), []*Trace{
		trace("a", step("0.5", "0.5"), step("0.6", "0.6")),
		trace("b", step("0.1", "0.9"), step("0.1", "0.3"), step("0.1", "0.1")),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Series()
	if len(s.Denials) != 2 || s.Denials[0].Step != 1 || s.Denials[1].Step != 4 || s.Denials[1].Y != enforcer.MustParseUSD("1.2") {
		t.Errorf("denial markers %+v", s.Denials)
	}
	if len(s.Overruns) != 1 || s.Overruns[0].Step != 3 || s.Overruns[0].Trace != "b" || s.Overruns[0].TraceStep != 1 {
		t.Errorf("overrun markers %+v", s.Overruns)
	}
	var svg strings.Builder
	if err := s.WriteSVG(&svg, "t"); err != nil {
		t.Fatal(err)
	}
	if strings.Count(svg.String(), `class="first-denial"`) != 2 || strings.Count(svg.String(), `class="overrun"`) != 1 ||
		!strings.Contains(svg.String(), "first denial of a trace (2)") || !strings.Contains(svg.String(), "over its limit: b, step 1") {
		t.Errorf("svg lacks the markers:\n%s", svg.String())
	}
}
