package replay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

const (
	fxClaude     = "testdata/claude-code/0eda269a-9c44-481b-958d-23a3c6361259.jsonl"
	fxClaudeTask = "testdata/claude-code/4b2030ed-5563-49ea-b703-6a002f2d3cc8.jsonl"
	fxClaudeSub  = "testdata/claude-code/4b2030ed-5563-49ea-b703-6a002f2d3cc8/subagents/agent-a2018e5.jsonl"
	fxMiniSWE    = "testdata/mini-swe-agent/django__django-9296.traj.json"
	fxPortkey    = "testdata/mini-swe-agent/django__django-12143.traj.json"
	fxTau        = "testdata/tau-bench/gpt-4o-airline-first3.json"
	fxPurser     = "testdata/purser/example.jsonl"
	fxPrices     = "testdata/litellm-excerpt.json"
)

func testPrices(t testing.TB) enforcer.Pricer {
	t.Helper()
	p, err := LoadPricesFile(fxPrices)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readOne(t testing.TB, path string) []*Trace {
	t.Helper()
	ts, err := ReadFile(path, FormatAuto, testPrices(t))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

type counts struct{ steps, llm, tools, skipped, withActual int }

func countOf(t *Trace) counts {
	c := counts{steps: len(t.Steps), skipped: t.Skipped}
	for i := range t.Steps {
		if t.Steps[i].IsLLM() {
			c.llm++
		} else {
			c.tools++
		}
		if t.Steps[i].Actual != nil {
			c.withActual++
		}
	}
	return c
}

// The expected counts were checked against the files by hand (and against
// FORMATS.md's per-file table for the Claude Code session: 10 API calls,
// 7 tool calls, 2 unparseable lines).
func TestFixtureCounts(t *testing.T) {
	cases := []struct {
		path   string
		format Format
		want   []counts
	}{
		{fxClaude, FormatClaudeCode, []counts{{17, 10, 7, 2, 10}}},
		// One Task call, charged its sub-agent's spend.
		{fxClaudeTask, FormatClaudeCode, []counts{{3, 2, 1, 0, 3}}},
		{fxMiniSWE, FormatMiniSWE, []counts{{36, 18, 18, 0, 18}}},
		{fxPortkey, FormatMiniSWE, []counts{{54, 27, 27, 0, 27}}},
		{fxTau, FormatTauBench, []counts{{23, 15, 8, 0, 0}, {5, 5, 0, 0, 0}, {18, 11, 7, 0, 0}}},
		{fxPurser, FormatPurser, []counts{{8, 3, 5, 0, 5}}},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			ts := readOne(t, tc.path)
			if len(ts) != len(tc.want) {
				t.Fatalf("%d traces, want %d", len(ts), len(tc.want))
			}
			for i, tr := range ts {
				if tr.Format != tc.format {
					t.Errorf("format %q, want %q", tr.Format, tc.format)
				}
				if got := countOf(tr); got != tc.want[i] {
					t.Errorf("trace %s: counts %+v, want %+v", tr.Name, got, tc.want[i])
				}
			}
		})
	}
}

// The first call of django__django-9296 was billed $0.00491 by the
// provider for 1,393 prompt tokens (none cached) and 177 completion
// tokens; the same tokens priced with LiteLLM's gemini-3-pro-preview
// entry ($2/M in, $12/M out) must give exactly that.
func TestMiniSWEKnownCallCost(t *testing.T) {
	tr := readOne(t, fxMiniSWE)[0]
	st := tr.Steps[0]
	if !st.IsLLM() || st.ActualSource != ActualBilled {
		t.Fatalf("first step %s, actual source %q", st.Tool, st.ActualSource)
	}
	u := *st.Usage
	if u != (Usage{Model: "google/gemini-3-pro-preview", Input: 1393, Output: 177}) {
		t.Fatalf("usage %+v", u)
	}
	if *st.Actual != enforcer.MustParseUSD("0.00491") {
		t.Fatalf("billed %s, want $0.00491", *st.Actual)
	}
	priced, ok, err := PriceUsage(testPrices(t), u)
	if err != nil || !ok {
		t.Fatalf("Cost: ok=%v err=%v", ok, err)
	}
	if priced != *st.Actual {
		t.Fatalf("tokens x price = %s, billed %s (usage %+v)", priced, *st.Actual, u)
	}
	// Every billed call of the fixture is reproduced exactly.
	for i, s := range tr.Steps {
		if s.ActualSource != ActualBilled {
			continue
		}
		if c, _, _ := PriceUsage(testPrices(t), *s.Usage); c != *s.Actual {
			t.Errorf("step %d: tokens x price %s, billed %s", i, c, *s.Actual)
		}
	}
}

func TestMiniSWEWithoutBilledCostUsesTokens(t *testing.T) {
	tr := readOne(t, fxPortkey)[0]
	st := tr.Steps[0]
	if st.ActualSource != ActualTokens {
		t.Fatalf("actual source %q, want tokens", st.ActualSource)
	}
	// 1963 prompt tokens at $2/M + (39 completion + 244 reasoning reported
	// apart) at $12/M = 0.003926 + 0.003396.
	if want := enforcer.MustParseUSD("0.007322"); *st.Actual != want {
		t.Fatalf("actual %s, want %s (usage %+v)", *st.Actual, want, *st.Usage)
	}
	if st.Params["model"] != "gemini-3-pro-preview" {
		t.Fatalf("model %v, want the price table's name", st.Params["model"])
	}
}

func TestClaudeCodeSkipsTruncatedLines(t *testing.T) {
	in := `{"type":"user","message":{"role":"user","content":"hello"}}
{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5-20250929","role":"assistant","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":10,"cache_read_input_tokens":1000,"cache_creation_input_tokens":100,"output_tokens":5}}}
{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5-20250929","role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls [REDACTED
{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5-20250929","role":"assistant","content":[{"type":"tool_use","id":"t2","name":"mcp__x__y","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":10,"cache_read_input_tokens":1000,"cache_creation_input_tokens":100,"output_tokens":50}}}
`
	tr, err := ReadClaudeCode(strings.NewReader(in), "s.jsonl", testPrices(t))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Skipped != 1 {
		t.Fatalf("skipped %d, want 1", tr.Skipped)
	}
	if len(tr.Steps) != 2 || tr.Steps[1].Tool != "MCP" || tr.Steps[1].Name != "mcp__x__y" {
		t.Fatalf("steps %+v", tr.Steps)
	}
	// 10 x $3/M + 1000 x $0.30/M + 100 x $3.75/M + 50 x $15/M (the
	// stop_reason line's output) = 0.00003 + 0.0003 + 0.000375 + 0.00075.
	if want := enforcer.MustParseUSD("0.001455"); *tr.Steps[0].Actual != want {
		t.Fatalf("LLM actual %s, want %s", *tr.Steps[0].Actual, want)
	}
}

func TestClaudeCodeTaskChargedSubagentSpend(t *testing.T) {
	tr := readOne(t, fxClaudeTask)[0]
	var task *Step
	for i := range tr.Steps {
		if tr.Steps[i].Name == "Task" {
			task = &tr.Steps[i]
		}
	}
	if task == nil || task.Tool != "Agent" || task.ActualSource != ActualAgent {
		t.Fatalf("Task step %+v", task)
	}
	sub := readOne(t, fxClaudeSub)[0]
	want, err := sumActual(sub)
	if err != nil || want == 0 {
		t.Fatalf("sub-agent spend %s, %v", want, err)
	}
	if *task.Actual != want {
		t.Fatalf("Task charged %s, sub-agent spent %s", *task.Actual, want)
	}
	// Walking the folder does not replay the linked sub-agent again.
	ts, err := ReadPaths([]string{"testdata/claude-code"}, FormatAuto, testPrices(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Fatalf("%d traces from the folder, want 2 sessions", len(ts))
	}
}

func TestMalformedInputNamesFileAndLine(t *testing.T) {
	cases := []struct {
		name, in string
		read     func(r *strings.Reader, name string) error
		want     string
	}{
		{"purser.jsonl", "{\"tool\":\"Read\"}\n{\"tool\": \"Bash\", \"params\": [1]}\n",
			func(r *strings.Reader, n string) error { _, err := ReadPurserJSONL(r, n, nil); return err }, "purser.jsonl:2:"},
		{"purser.jsonl", "{\"tool\":\"Read\"}\n\n{\"tool\": \"Bash\", \"actual_usd\": \"-1\"}\n",
			func(r *strings.Reader, n string) error { _, err := ReadPurserJSONL(r, n, nil); return err }, "purser.jsonl:3: actual_usd"},
		{"purser.jsonl", "{\"tol\":\"Read\"}\n",
			func(r *strings.Reader, n string) error { _, err := ReadPurserJSONL(r, n, nil); return err }, "purser.jsonl:1:"},
		{"x.traj.json", "{\n  \"messages\": [\n    {\"role\": \"user\", \"content\": 1 2}\n  ]\n}\n",
			func(r *strings.Reader, n string) error { _, err := ReadMiniSWE(r, n, nil); return err }, "x.traj.json:3:"},
		{"x.traj.json", "{\"messages\": [{\"role\": \"assistant\", \"content\": \"a\", \"extra\": {\"response\": {\"usage\": {\"cost\": -1}}}}]}",
			func(r *strings.Reader, n string) error { _, err := ReadMiniSWE(r, n, nil); return err }, "x.traj.json: messages[0]: usage.cost"},
		{"tau.json", "[\n{\"task_id\": 0, \"traj\": [\n{\"role\": \"assistant\", \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": \"{oops\"}}]}]}]",
			func(r *strings.Reader, n string) error { _, err := ReadTauBench(r, n, nil); return err }, "tau.json: run [0] traj[0].tool_calls[0].function.arguments"},
		{"tau.json", "[\n{\"task_id\": 0,\n \"traj\": \"no\"}]",
			func(r *strings.Reader, n string) error { _, err := ReadTauBench(r, n, nil); return err }, "tau.json:3:"},
	}
	for _, tc := range cases {
		err := tc.read(strings.NewReader(tc.in), tc.name)
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s %q: error %v, want a ParseError starting %q", tc.name, tc.in, err, tc.want)
		}
	}
}

func TestClaudeCodeNeverFailsOnBadLines(t *testing.T) {
	tr, err := ReadClaudeCode(strings.NewReader("garbage\n{\"type\":\n\n[1,2]\n"), "bad.jsonl", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Skipped != 3 || len(tr.Steps) != 0 {
		t.Fatalf("skipped %d steps %d, want 3 and 0", tr.Skipped, len(tr.Steps))
	}
}

func TestDetect(t *testing.T) {
	for path, want := range map[string]Format{fxClaude: FormatClaudeCode, fxClaudeTask: FormatClaudeCode, fxMiniSWE: FormatMiniSWE,
		fxTau: FormatTauBench, fxPurser: FormatPurser} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Detect(data[:min(len(data), 64<<10)]); got != want || err != nil {
			t.Errorf("%s: %q %v, want %q", path, got, err, want)
		}
	}
	// A truncated first line does not hide a Claude Code transcript.
	if got, _ := Detect([]byte("{\"type\":\"user\",\"message\":{\"content\":\"cut\n{\"type\":\"summary\",\"summary\":\"x\"}\n")); got != FormatClaudeCode {
		t.Errorf("truncated first line: %q", got)
	}
	for _, bad := range []string{"", "hello", "{\"a\":1}\n", "\n\n  "} {
		if got, err := Detect([]byte(bad)); err == nil {
			t.Errorf("Detect(%q) = %q, want an error", bad, got)
		}
	}
	if _, err := ReadPaths([]string{fxPrices}, FormatAuto, nil); err == nil || !strings.Contains(err.Error(), fxPrices) {
		t.Errorf("a named non-trace file: error %v, want one naming it", err)
	}
}

// The purser fixture against a $0.02 pool: every amount below was worked
// out by hand from FORMAT.md's rules and the default cost table, so holds
// are not calibrated (calibration is tested in package enforcer).
func TestRunReportTotals(t *testing.T) {
	r, err := NewRunner(enforcer.Config{Calibration: enforcer.CalibrationConfig{Disabled: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	budget := enforcer.MustParseUSD("0.02")
	r.Budget = &budget
	rep, err := r.Run(context.Background(), readOne(t, fxPurser))
	if err != nil {
		t.Fatal(err)
	}
	// Steps 0-3 run: LLM $0.0038 (1200 in x $2.50/M + 80 out x $10/M),
	// Bash and Read at their estimates $0.01 and $0.001, LLM $0.0115
	// (3400 x $2.50/M + 1200 cached x $1.25/M + 150 x $10/M), whose
	// commit overdraws the pool; the other 4 are denied.
	if rep.Steps != 8 || rep.LLMCalls != 3 || rep.ToolCalls != 5 || rep.Admitted != 4 || rep.Denied != 4 || rep.Asked != 0 {
		t.Fatalf("counts %+v", rep)
	}
	if rep.Spent.USD != "0.0263" || !rep.Overdrawn || rep.Remaining.Nanos != -6_300_000 {
		t.Fatalf("spent %v overdrawn %v remaining %v", rep.Spent, rep.Overdrawn, rep.Remaining)
	}
	if len(rep.FirstDenials) != 1 || rep.FirstDenials[0].Step != 4 || !strings.Contains(rep.FirstDenials[0].Reason, "overdrawn") {
		t.Fatalf("first denials %+v", rep.FirstDenials)
	}
	var got []string
	for _, a := range rep.Alerts {
		got = append(got, a.Level+"@"+strings.Repeat("!", btoi(a.Overdrawn))+itoa(a.ThresholdPct)+"#"+itoa(a.Step))
	}
	if want := "info@50#1 warning@75#3 warning@90#3 critical@100#3 critical@!0#3"; strings.Join(got, " ") != want {
		t.Fatalf("alerts %v, want %s", got, want)
	}
	if rep.TopCosts[0].Charged.USD != "0.0115" || rep.TopCosts[0].Step != 3 {
		t.Fatalf("top cost %+v", rep.TopCosts[0])
	}
	// The pool's overrun, in the budget report and marked on the chart
	// where step 3 took the pool over its limit.
	if b := rep.Budget; len(b.OverrunAccounts) != 1 || b.OverrunAccounts[0].Account != "replay" || b.MaxOverrunUSD != "0.0063" || b.MaxOverrunRatio != 0.315 {
		t.Errorf("budget %+v", b)
	}
	if o := rep.Series().Overruns; len(o) != 1 || !o[0].Pool || o[0].Step != 3 || o[0].TraceStep != 3 {
		t.Errorf("chart overruns %+v", o)
	}
	// Accuracy covers the 5 steps with an actual: 3 LLM calls estimated at
	// the $0.0001 minimum, WebFetch and the unknown MCP tool.
	acc := rep.Accuracy
	if acc.Overall.Calls != 5 || acc.Unmeasured != 3 || acc.Overall.Actual.USD != "0.0421" || acc.Overall.Estimate.USD != "0.0223" || acc.Overall.Under != 3 {
		t.Fatalf("accuracy %+v", acc.Overall)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"8 steps (3 LLM calls, 5 tool calls)", "Admitted 4, denied 4, asked 0", "OVERDRAWN by $0.0063", "tool LLM"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestRunAsksAreNotRun(t *testing.T) {
	askBash := enforcer.PolicyFunc{PolicyName: "ask-bash", Fn: func(_ context.Context, in enforcer.PolicyInput) (enforcer.PolicyResult, error) {
		if in.Call.Tool == "Bash" {
			return enforcer.PolicyResult{Verdict: enforcer.Ask, Reason: "shell needs a human"}, nil
		}
		return enforcer.PolicyResult{}, nil
	}}
	r, err := NewRunner(enforcer.Config{Policies: []enforcer.PolicySpec{{Policy: askBash}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(context.Background(), readOne(t, fxMiniSWE))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Asked != 18 || rep.Admitted != 18 || rep.Denied != 0 {
		t.Fatalf("asked %d admitted %d denied %d", rep.Asked, rep.Admitted, rep.Denied)
	}
	if n := len(r.Enforcer.Approvals().List(enforcer.ApprovalPending)); n != 0 {
		t.Fatalf("%d approvals left pending", n)
	}
	// Only the LLM calls ran: spend is their billed total.
	var billed enforcer.Nanos
	for _, s := range readOne(t, fxMiniSWE)[0].Steps {
		if s.IsLLM() {
			billed += *s.Actual
		}
	}
	if rep.Spent.Nanos != int64(billed) {
		t.Fatalf("spent %v, want the billed %s", rep.Spent, billed)
	}
}

func TestChartSVG(t *testing.T) {
	r, err := NewRunner(enforcer.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	budget := enforcer.MustParseUSD("0.50")
	r.Budget = &budget
	rep, err := r.Run(context.Background(), append(readOne(t, fxMiniSWE), readOne(t, fxTau)...))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.Series().WriteSVG(&buf, "test <chart>"); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	for _, want := range []string{"<svg xmlns=\"http://www.w3.org/2000/svg\"", "test &lt;chart&gt;", "cumulative spend (USD)", "steps (",
		"limit $0.50", "cumulative estimate", "django__django-9296", "</svg>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if n := strings.Count(svg, "<polyline"); n != 2+4 {
		t.Errorf("%d polylines, want pooled estimate and actual plus 4 traces", n)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestPricesResolve(t *testing.T) {
	p := DefaultPrices()
	for in, want := range map[string]string{"gemini-3-pro-preview": "gemini-3-pro-preview", "google/gemini-3-pro-preview": "gemini-3-pro-preview",
		"@google/gemini-3-pro-preview": "gemini-3-pro-preview", "openrouter/openai/gpt-4o": "openrouter/openai/gpt-4o",
		"anthropic/claude-opus-4.5": "claude-opus-4-5"} {
		if got, ok := Resolve(p, in); !ok || got != want {
			t.Errorf("Resolve(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "no-such-model", "google/none"} {
		if _, ok := Resolve(p, in); ok {
			t.Errorf("Resolve(%q) found a price", in)
		}
	}
	if _, ok, err := PriceUsage(p, Usage{Model: "no-such-model", Input: 5}); ok || err != nil {
		t.Errorf("unpriced model: ok=%v err=%v", ok, err)
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats() {
		if got, err := ParseFormat(string(f)); got != f || err != nil {
			t.Errorf("ParseFormat(%q) = %q %v", f, got, err)
		}
	}
	if got, err := ParseFormat("auto"); got != FormatAuto || err != nil {
		t.Errorf("auto: %q %v", got, err)
	}
	if _, err := ParseFormat("csv"); err == nil {
		t.Error("csv accepted")
	}
}

// Providers report cost as float text ("0.0043939999999999995"); a billed
// cost is what was spent, so the reader takes it (rounded up to a whole
// nano) instead of refusing it as an API amount would.
func TestMiniSWEBilledCostWithFloatNoiseIsRead(t *testing.T) {
	raw, err := os.ReadFile(fxMiniSWE)
	if err != nil {
		t.Fatal(err)
	}
	noisy := strings.Replace(string(raw), `"cost": 0.00491`, `"cost": 0.0049099999999999995`, 1)
	path := filepath.Join(t.TempDir(), "noisy.traj.json")
	if err := os.WriteFile(path, []byte(noisy), 0o600); err != nil {
		t.Fatal(err)
	}
	st := readOne(t, path)[0].Steps[0]
	if st.ActualSource != ActualBilled || *st.Actual != enforcer.MustParseUSD("0.00491") {
		t.Fatalf("billed %v (%s), want $0.00491 billed", st.Actual, st.ActualSource)
	}
}

// Anthropic splits cache writes by lifetime in usage.cache_creation;
// cache_creation_input_tokens is their sum. A 1-hour write costs 2x input
// ($6/M on Sonnet 4.5), a 5-minute one 1.25x ($3.75/M). A line without
// the split is all 5-minute writes.
func TestClaudeCodeOneHourCacheWrites(t *testing.T) {
	in := `{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5-20250929","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"cache_creation_input_tokens":1000,"cache_creation":{"ephemeral_5m_input_tokens":600,"ephemeral_1h_input_tokens":400},"output_tokens":50}}}
{"type":"assistant","message":{"id":"m2","model":"claude-sonnet-4-5-20250929","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"cache_creation_input_tokens":1000,"output_tokens":50}}}
`
	tr, err := ReadClaudeCode(strings.NewReader(in), "s.jsonl", testPrices(t))
	if err != nil {
		t.Fatal(err)
	}
	if u := tr.Steps[0].Usage; u.CacheWrite != 600 || u.CacheWrite1h != 400 {
		t.Fatalf("usage %+v, want 600 5-minute and 400 1-hour writes", *u)
	}
	// 10 x $3/M + 600 x $3.75/M + 400 x $6/M + 50 x $15/M.
	if want := enforcer.MustParseUSD("0.00543"); *tr.Steps[0].Actual != want {
		t.Errorf("split call: actual %s, want %s", *tr.Steps[0].Actual, want)
	}
	// 10 x $3/M + 1000 x $3.75/M + 50 x $15/M.
	if want := enforcer.MustParseUSD("0.00453"); *tr.Steps[1].Actual != want {
		t.Errorf("unsplit call: actual %s, want %s", *tr.Steps[1].Actual, want)
	}
	if tu := tokenUsage(&tr.Steps[0]); tu == nil || tu.CacheWriteTokens != 600 || tu.CacheWrite1hTokens != 400 {
		t.Errorf("commit usage %+v", tu)
	}
}
