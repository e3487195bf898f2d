package host

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
)

// BenchmarkFuel compares, in one run, each workload under fuel metering
// (the default), unbounded (no stop mechanism at all) and wazero's context
// polling with a timer per call (WithCloseOnContextDone, the mechanism
// fuel replaces):
//
//	go test ./host -run '^$' -bench BenchmarkFuel -count 6
//
// Workloads: a trivial call (WAT, and the Rust policy's fast path), the
// LLM estimate on a 1 KB prompt (Go llm-tokens), and an admission
// decision (Go ask-above-utilization, Rust max-cost-per-call).
func BenchmarkFuel(b *testing.B) {
	llm := estReq("LLM")
	prompt := strings.Repeat("abcdefghij", 100) // 1 KB
	llm.Call.Params = []byte(`{"model":"gpt-4o","prompt":"` + prompt + `"}`)
	llm.Call.Model, llm.Call.PromptChars = "gpt-4o", int64(len(prompt))
	admit := abi.AdmitRequest{Call: estReq("Bash").Call, EstimateNanos: 50_000_000}
	admit.Call.Budget = abi.Budget{LimitNanos: 1_000_000_000, CommittedNanos: 600_000_000, RemainingNanos: 400_000_000}
	plug := func(kind, name string) string { return filepath.Join("..", "plugins", kind, name, name+".wasm") }
	workloads := []struct {
		name   string
		file   string
		config string
		est    *abi.EstimateRequest
		adm    *abi.AdmitRequest
	}{
		{"trivial/wat", wasmPath("estimator"), "", &llm, nil},
		{"llm/go", plug("estimators", "llm-tokens"), "", &llm, nil},
		{"admit/go", plug("policies", "ask-above-utilization"), `{"ask_above_pct":50}`, nil, &admit},
		{"admit/rust", plug("policies", "max-cost-per-call"), `{"limit_usd":"1.00"}`, nil, &admit},
	}
	for _, w := range workloads {
		for _, m := range []struct {
			name string
			kind stopKind
		}{{"fuel", stopWatchdog}, {"unbounded", stopNone}, {"ctxpoll", stopContext}} {
			b.Run(w.name+"/"+m.name, func(b *testing.B) {
				h, _ := newTestHost(b, benchConfig(m.kind))
				var cfg []byte
				if w.config != "" {
					cfg = []byte(w.config)
				}
				p := load(b, h, w.name, Spec{File: w.file, Config: cfg})
				defer p.Close()
				ctx := context.Background()
				var fuel int64
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					var info CallInfo
					var err error
					if w.est != nil {
						_, info, err = p.Estimate(ctx, *w.est)
					} else {
						_, info, err = p.Admit(ctx, *w.adm)
					}
					if err != nil {
						b.Fatal(err)
					}
					fuel = info.Fuel
				}
				if m.kind == stopWatchdog {
					b.ReportMetric(float64(fuel), "fuel/op")
				}
			})
		}
	}
}
