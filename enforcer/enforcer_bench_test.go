package enforcer

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
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
func BenchmarkExecute(b *testing.B) {
	e := newTestEnforcer(b, Config{Policies: []PolicySpec{{Policy: MaxCostPerCall{Limit: MustParseUSD("1")}}}})
	mustAccount(b, e, AccountSpec{ID: "a"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res, err := e.Execute(ctx, "a", "Read", nil, noop); err != nil || !res.Decision.Allowed() {
			b.Fatal(res.Decision, err)
		}
	}
}

func BenchmarkExecuteParallel(b *testing.B) {
	e := newTestEnforcer(b, Config{Policies: []PolicySpec{{Policy: MaxCostPerCall{Limit: MustParseUSD("1")}}}})
	for _, id := range []string{"a0", "a1", "a2", "a3"} {
		mustAccount(b, e, AccountSpec{ID: id})
	}
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		acct := []string{"a0", "a1", "a2", "a3"}[next.Add(1)%4]
		for pb.Next() {
			if res, err := e.Execute(ctx, acct, "Read", nil, noop); err != nil || !res.Decision.Allowed() {
				b.Fatal(res.Decision, err)
			}
		}
	})
}
