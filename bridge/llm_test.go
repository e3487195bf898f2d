package bridge

import (
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/enforcer"
)

func TestRequestCarriesTheEnforcersLLMContext(t *testing.T) {
	price := enforcer.ModelPrice{Input: 1_250, Output: 10_000, CacheRead: 125, CacheWrite: 1_562, CacheWrite1h: 2_500,
		TierAboveTokens: 200_000, InputAbove: 2_500, OutputAbove: 15_000, CacheReadAbove: 250, CacheWriteAbove: 3_125}
	call := enforcer.Call{Tool: "LLM", Account: "a", Params: map[string]any{"model": "gemini-3-pro", "prompt": "hi"},
		LLM: &enforcer.LLMContext{Price: enforcer.PriceQuote{Model: "gemini-3-pro-preview", Price: price, Source: "litellm:gemini-3-pro-preview", Fallback: true},
			ExpectedOutputTokens: 900, CacheReadTokens: 64}}
	want := abi.LLMContext{
		Price: abi.LLMPrice{Input: 1_250, Output: 10_000, CacheRead: 125, CacheWrite: 1_562, CacheWrite1h: 2_500,
			TierAboveTokens: 200_000, InputAbove: 2_500, OutputAbove: 15_000, CacheReadAbove: 250, CacheWriteAbove: 3_125},
		PriceFallback: true, ExpectedOutputTokens: 900, CacheReadTokens: 64,
	}
	est, err := EstimateRequest(call)
	if err != nil {
		t.Fatal(err)
	}
	adm, err := AdmitRequest(enforcer.PolicyInput{Call: call})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]abi.Call{"estimate": est.Call, "admit": adm.Call} {
		if c.LLM == nil || *c.LLM != want || c.LLMPriceSource != "litellm:gemini-3-pro-preview" || c.PromptChars != 2 {
			t.Errorf("%s request: LLM %+v source %q", name, c.LLM, c.LLMPriceSource)
		}
	}
	// What a guest reads back from the wire.
	v, err := abi.ParseRequest(abi.AppendEstimateRequest(nil, &est))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := v.LLM(); !ok || got != want || string(v.LLMPriceSource()) != "litellm:gemini-3-pro-preview" {
		t.Errorf("on the wire: %+v %v %q", got, ok, v.LLMPriceSource())
	}

	call.LLM = nil
	if est, _ := EstimateRequest(call); est.LLM != nil || est.LLMPriceSource != "" {
		t.Errorf("no LLM context must send none: %+v %q", est.LLM, est.LLMPriceSource)
	}
}
