package purser

import (
	"math"
	"testing"

	"github.com/purser-dev/purser/abi"
)

func TestRequestLLM(t *testing.T) {
	ctx := &abi.LLMContext{Price: abi.LLMPrice{Input: 3_000, Output: 15_000}, ExpectedOutputTokens: 700, CacheReadTokens: 9}
	c := abi.Call{Tool: "LLM", Budget: abi.Unlimited(0, 0), MaxTokens: -1, LLM: ctx, LLMPriceSource: "litellm:claude-sonnet-4-5"}
	r, err := NewRequest(abi.AppendEstimateRequest(nil, &abi.EstimateRequest{Call: c}))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := r.LLM(); !ok || got != *ctx || string(r.LLMPriceSource()) != "litellm:claude-sonnet-4-5" {
		t.Fatalf("LLM() = %+v, %v, %q", got, ok, r.LLMPriceSource())
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = r.LLM(); _ = r.LLMPriceSource() }); n != 0 {
		t.Fatalf("LLM() allocates %v times", n)
	}
	c.LLM = nil
	if err := r.reset(abi.AppendEstimateRequest(nil, &abi.EstimateRequest{Call: c})); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.LLM(); ok || got != (LLM{}) || len(r.LLMPriceSource()) != 0 {
		t.Fatalf("without a context: %+v, %v, %q", got, ok, r.LLMPriceSource())
	}
}

// Hand-computed cases of the host's base formula; plugins/llmbasecost_test.go
// checks it against enforcer.LLMContext.BaseCost on many more.
func TestLLMBaseCost(t *testing.T) {
	opus := abi.LLMPrice{Input: 5_000_000_000, Output: 25_000_000_000, CacheRead: 500_000_000, CacheWrite: 6_250_000_000, CacheWrite1h: 10_000_000_000}
	tiered := abi.LLMPrice{Input: 2_000_000_000, Output: 12_000_000_000, CacheRead: 200_000_000,
		TierAboveTokens: 200_000, InputAbove: 4_000_000_000, OutputAbove: 18_000_000_000, CacheReadAbove: 400_000_000}
	for _, tc := range []struct {
		name   string
		c      LLM
		prompt int64
		want   int64
	}{
		// 10k fresh tokens written at $6.25/M = $0.0625, 1k output at $25/M = $0.025.
		{"opus, new prompt billed as a cache write", LLM{Price: opus, ExpectedOutputTokens: 1_000}, 10_000, 87_500_000},
		// 2k written ($0.0125) + 8k read at $0.50/M ($0.004).
		{"opus, cache reads", LLM{Price: opus, CacheReadTokens: 8_000}, 10_000, 16_500_000},
		{"cache reads clamped to the prompt", LLM{Price: opus, CacheReadTokens: 99_999}, 10_000, 5_000_000},
		{"negative expectations count as 0", LLM{Price: opus, CacheReadTokens: -5, ExpectedOutputTokens: -5}, 10_000, 62_500_000},
		{"negative prompt counts as 0", LLM{Price: opus, ExpectedOutputTokens: 1}, -3, 25_000},
		// No cache-write price: fresh tokens at input ($2/M).
		{"tier: at the threshold", LLM{Price: tiered, ExpectedOutputTokens: 1_000}, 200_000, 412_000_000},
		// Above it every token pays the tier: 200,001 x $4/M + 1k x $18/M.
		{"tier: above the threshold", LLM{Price: tiered, ExpectedOutputTokens: 1_000}, 200_001, 818_004_000},
		// Each part rounds up on its own: 1 token at 1 nano/M is 1 nano, twice.
		{"each part rounds up", LLM{Price: abi.LLMPrice{Input: 1, Output: 1}, ExpectedOutputTokens: 1}, 1, 2},
		{"zero cache prices mean input", LLM{Price: abi.LLMPrice{Input: 1_000_000}, CacheReadTokens: 500}, 1_000, 1_000},
	} {
		got, ok := LLMBaseCost(tc.c, tc.prompt)
		if !ok || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := LLMBaseCost(LLM{Price: opus, ExpectedOutputTokens: math.MaxInt64}, 1); ok {
		t.Error("an output priced past int64 must not be ok")
	}
	if _, ok := LLMBaseCost(LLM{Price: abi.LLMPrice{Input: -1}}, 1); ok {
		t.Error("a negative price must not be ok")
	}
}
