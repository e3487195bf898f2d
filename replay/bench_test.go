package replay

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purser-dev/purser/bridge"
	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
)

// benchTrace is a synthetic session shaped like the Claude Code data: an
// LLM call (a short chat prompt) followed by one or two tool calls, with
// reported costs and token usage on the LLM calls (the usage goes with the
// commit and is priced by the enforcer, as on real data).
func benchTrace(steps int) *Trace {
	tools := []Step{
		{Tool: "Bash", Params: map[string]any{"command": "go test ./...", "description": "run the tests"}},
		{Tool: "Read", Params: map[string]any{"file_path": "/src/main.go"}},
		{Tool: "Edit", Params: map[string]any{"file_path": "/src/main.go", "old_string": "a := 1", "new_string": "a := 2"}},
		{Tool: "Grep", Params: map[string]any{"pattern": "func main", "path": "/src"}},
	}
	msgs := []any{map[string]any{"role": "user", "content": strings.Repeat("Fix the failing test in main.go. ", 12)}}
	cost := enforcer.MustParseUSD("0.0123")
	t := &Trace{Name: "bench", Format: FormatPurser}
	for i := 0; len(t.Steps) < steps; i++ {
		if i%3 == 0 {
			t.Steps = append(t.Steps, Step{Tool: LLMTool, Name: LLMTool, Params: map[string]any{"model": "gpt-4o", "messages": msgs}, Actual: &cost,
				Usage: &Usage{Model: "gpt-4o", Input: 1200, CacheRead: 3000, Output: 400}})
			continue
		}
		st := tools[i%len(tools)]
		st.Name = st.Tool
		t.Steps = append(t.Steps, st)
	}
	return t
}

func benchRun(b *testing.B, cfg enforcer.Config, traces []*Trace) {
	b.Helper()
	benchRunWith(b, cfg, traces, func(*Runner) {})
}

// benchRunWith is benchRun with the runner adjusted by set (budgets, --stream).
func benchRunWith(b *testing.B, cfg enforcer.Config, traces []*Trace, set func(*Runner)) {
	b.Helper()
	steps := 0
	for _, t := range traces {
		steps += len(t.Steps)
	}
	budget := enforcer.MustParseUSD("1000000")
	for b.Loop() {
		r, err := NewRunner(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		r.Budget = &budget
		set(r)
		if _, err := r.Run(context.Background(), traces); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(steps)*float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkReplayTable: built-in table and LLM rule, no plugins.
func BenchmarkReplayTable(b *testing.B) {
	benchRun(b, enforcer.Config{}, []*Trace{benchTrace(10_000)})
}

// BenchmarkReplayTableStream: the same steps under --stream with each
// trace limited to 80% of its actual cost, in 100 traces of 100 steps:
// every LLM call ($0.0123 held at the table's much smaller estimate)
// extends its hold, and each trace is cut, then denied about half way.
func BenchmarkReplayTableStream(b *testing.B) {
	traces := make([]*Trace, 100)
	for i := range traces {
		traces[i] = benchTrace(100)
	}
	benchRunWith(b, enforcer.Config{}, traces, func(r *Runner) { r.Stream, r.TraceBudgetPPM = true, 800_000 })
}

// BenchmarkReplayLLMTokensPlugin: every step asks the shipped Go
// llm-tokens Wasm plugin first (it prices LLM calls and answers
// "unsupported" for the rest, which fall back to the table).
func BenchmarkReplayLLMTokensPlugin(b *testing.B) {
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(ctx)
	cfg, _ := json.Marshal(map[string]any{"default_output_tokens": 500,
		"models": map[string]any{"gpt-4o": map[string]string{"input": "2.5e-06", "output": "1e-05", "cache_read": "1.25e-06"}}})
	reg, err := h.NewRegistry(ctx, host.RegistryConfig{Plugins: []host.Spec{{
		File: filepath.Join("..", "plugins", "estimators", "llm-tokens", "llm-tokens.wasm"), Config: cfg, FailMode: host.FailOpen}}})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	est := map[string]enforcer.Estimator{"*": bridge.NewEstimator(reg)}
	benchRun(b, enforcer.Config{Estimators: est}, []*Trace{benchTrace(10_000)})
}

// BenchmarkReplaySharedData reads and replays all of ../shared/data with
// the built-in estimators (the time the whole data set takes).
func BenchmarkReplaySharedData(b *testing.B) {
	dir := sharedData(b)
	prices := sharedPrices(b, dir)
	steps := 0
	for b.Loop() {
		ts, err := ReadPaths([]string{dir}, FormatAuto, prices)
		if err != nil {
			b.Fatal(err)
		}
		r, err := NewRunner(enforcer.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := r.Run(context.Background(), ts)
		if err != nil {
			b.Fatal(err)
		}
		steps = rep.Steps
	}
	b.ReportMetric(float64(steps)*float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}
