package enforcer

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func BenchmarkEstimateTable(b *testing.B) {
	e := newTestEnforcer(b, Config{})
	ctx, call := context.Background(), Call{Account: "a", Tool: "Read"}
	b.ReportAllocs()
	for b.Loop() {
		if est, err := e.Estimate(ctx, call); err != nil || est.Nanos == 0 {
			b.Fatal(est, err)
		}
	}
}

func BenchmarkEstimateLLM1KB(b *testing.B) {
	e := newTestEnforcer(b, Config{})
	ctx := context.Background()
	call := Call{Account: "a", Tool: "LLM", Params: map[string]any{"model": "gpt-4o", "prompt": strings.Repeat("héllo wörld ", 85)}}
	b.ReportAllocs()
	for b.Loop() {
		if est, err := e.Estimate(ctx, call); err != nil || est.Nanos == 0 {
			b.Fatal(est, err)
		}
	}
}

// BenchmarkExecute: estimate, budget check, the built-in max-cost policy,
// reserve, a no-op tool, commit.
// steadyEnforcer forgets settled reservations at every Sweep, which the
// benchmarks call every 1,024 operations as a server's sweeper would:
// without it the id index grows by one entry per call for the whole run.
func steadyEnforcer(b testing.TB) *Enforcer {
	l := NewMemoryLedger(LedgerOptions{RetainSettled: time.Nanosecond})
	e, err := New(l, Config{Policies: []PolicySpec{{Policy: MaxCostPerCall{Limit: MustParseUSD("1")}}}})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkExecute(b *testing.B) {
	e := steadyEnforcer(b)
	mustAccount(b, e, AccountSpec{ID: "a"})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if res, err := e.Execute(ctx, "a", "Read", nil, noop); err != nil || !res.Decision.Allowed() {
			b.Fatal(res.Decision, err)
		}
		if i++; i%1024 == 0 {
			_, _ = e.Ledger().Sweep(ctx)
		}
	}
}

func BenchmarkExecuteParallel(b *testing.B) {
	e := steadyEnforcer(b)
	for _, id := range []string{"a0", "a1", "a2", "a3"} {
		mustAccount(b, e, AccountSpec{ID: id})
	}
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		acct := []string{"a0", "a1", "a2", "a3"}[next.Add(1)%4]
		i := 0
		for pb.Next() {
			if res, err := e.Execute(ctx, acct, "Read", nil, noop); err != nil || !res.Decision.Allowed() {
				b.Fatal(res.Decision, err)
			}
			if i++; i%1024 == 0 {
				_, _ = e.Ledger().Sweep(ctx)
			}
		}
	})
}

// BenchmarkEstimateLLMCalibration: the LLM rule on a 1 KB prompt with
// calibration off, and on with 1,000 settled calls learned for the key
// (quantile read, session cache lookup, source naming the calibration).
func BenchmarkEstimateLLMCalibration(b *testing.B) {
	params := map[string]any{"model": "gpt-4o", "prompt": strings.Repeat("héllo wörld ", 85)}
	for _, tc := range []struct {
		name string
		cfg  CalibrationConfig
	}{{"off", CalibrationConfig{Disabled: true}}, {"on", CalibrationConfig{}}} {
		b.Run(tc.name, func(b *testing.B) {
			e := newTestEnforcer(b, Config{Calibration: tc.cfg})
			mustAccount(b, e, AccountSpec{ID: "a"})
			ctx, call := context.Background(), Call{Account: "a", Tool: "LLM", Params: params}
			for i := range 1000 {
				_, r, err := e.Reserve(ctx, call, ReserveOptions{})
				if err != nil {
					b.Fatal(err)
				}
				actual := r.Estimate * Nanos(1+i%3) / 2
				if _, err := e.Commit(ctx, CommitRequest{ID: r.ID, Actual: &actual, Source: CostActual,
					Usage: &TokenUsage{Model: "gpt-4o", InputTokens: 200, CacheReadTokens: 50, OutputTokens: int64(i % 300)}}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if est, err := e.Estimate(ctx, call); err != nil || est.Nanos == 0 {
					b.Fatal(est, err)
				}
			}
		})
	}
}
