package main

import (
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/pursertest"
)

// Claude Opus 4.5's prices (nano-USD per 1M tokens): $5 in, $25 out,
// $0.50 cache read, $6.25 cache write.
var opusCtx = abi.LLMContext{Price: abi.LLMPrice{Input: 5_000_000_000, Output: 25_000_000_000,
	CacheRead: 500_000_000, CacheWrite: 6_250_000_000, CacheWrite1h: 10_000_000_000}}

func hostCall(params string, llm abi.LLMContext) abi.Call {
	return pursertest.WithLLM(pursertest.NewCall("LLM", params), llm, "litellm:claude-opus-4-5")
}

// Without a configured price the host's wins; configured models and an
// explicit default_price still win over it; no context keeps the seed rule.
func TestHostPriceFillsWhatConfigLeavesOut(t *testing.T) {
	withOutput := opusCtx
	withOutput.ExpectedOutputTokens, withOutput.CacheReadTokens = 2_000, 6_000
	p40k := prompt(40_000) // 10,000 tokens
	for _, tc := range []struct {
		name, cfg, params string
		llm               *abi.LLMContext
		want              int64
	}{
		// 10k tokens written at $6.25/M.
		{"host price, no expectations", `{}`, `{"model":"claude-opus-4-5","prompt":"` + p40k + `"}`, &opusCtx, 62_500_000},
		// 4k written ($0.025) + 6k read ($0.003) + 2k out ($0.05).
		{"host expectations", `{}`, `{"model":"claude-opus-4-5","prompt":"` + p40k + `"}`, &withOutput, 78_000_000},
		// params replace them: 9k written ($0.05625) + 1k read ($0.0005) + 100 out ($0.0025).
		{"params win over host expectations", `{}`, `{"cache_read_tokens":1000,"max_tokens":100,"model":"claude-opus-4-5","prompt":"` + p40k + `"}`, &withOutput, 59_250_000},
		// default_output_tokens only when the host expects none: + 300 x $25/M.
		{"default output when the host expects none", `{"default_output_tokens":300}`, `{"model":"claude-opus-4-5","prompt":"` + p40k + `"}`, &opusCtx, 70_000_000},
		{"host expectation beats default output", `{"default_output_tokens":300}`, `{"model":"claude-opus-4-5","prompt":"` + p40k + `"}`, &withOutput, 78_000_000},
		{"minimum still applies", `{}`, `{"model":"claude-opus-4-5","prompt":"hi"}`, &opusCtx, 100_000},
		// gpt-4o configured: 10k x $2.50/M, whatever the host says.
		{"configured model wins", testConfig, `{"model":"gpt-4o","prompt":"` + p40k + `"}`, &withOutput, 25_000_000},
		{"explicit default_price wins", `{"default_price":{"input":"1e-06"}}`, `{"model":"claude-opus-4-5","prompt":"` + p40k + `"}`, &withOutput, 10_000_000},
		{"no context: seed rule", `{}`, `{"prompt":"` + prompt(70_000) + `"}`, nil, 8_750_000},
		{"no context, model priced by config", testConfig, `{"model":"gpt-4o","prompt":"` + p40k + `"}`, nil, 25_000_000},
		{"no context, named model, explicit default_price", `{"default_price":{"input":"1e-06"}}`, `{"model":"claude-opus-4-5","prompt":"` + p40k + `"}`, nil, 10_000_000},
	} {
		c := pursertest.NewCall("LLM", tc.params)
		if tc.llm != nil {
			c = pursertest.WithLLM(c, *tc.llm, "litellm:claude-opus-4-5")
		}
		got, err := load(t, tc.cfg).Estimate(c)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

// A call naming a model this plugin has no price for, from a host that
// sent no LLM context (older than ABI 1.1, or one that does not fill it),
// is unsupported: the host's chain falls through to its built-in rule,
// which prices the model with its table, instead of the $0.50/M seed.
func TestNamedModelWithoutAnyPriceIsUnsupported(t *testing.T) {
	for _, cfg := range []string{`{}`, testConfig, `{"default_output_tokens":300}`} {
		_, err := load(t, cfg).Estimate(pursertest.NewCall("LLM", `{"model":"claude-opus-4-5","prompt":"`+prompt(70_000)+`"}`))
		if pursertest.Code(err) != abi.CodeUnsupported || !strings.Contains(err.Error(), "no price for the model") {
			t.Errorf("config %s: err %v; want unsupported", cfg, err)
		}
	}
}

func TestHostPricedOverflow(t *testing.T) {
	p := load(t, `{}`)
	_, err := p.Estimate(hostCall(`{"max_tokens":9007199254740991,"model":"m","prompt":"x"}`, opusCtx))
	if pursertest.Code(err) != abi.CodeBadParams || !strings.Contains(err.Error(), "params.max_tokens: too large") {
		t.Fatalf("huge max_tokens: %v; want bad_params", err)
	}
	huge := opusCtx
	huge.ExpectedOutputTokens = 1 << 62
	if _, err := p.Estimate(hostCall(`{"model":"m","prompt":"x"}`, huge)); pursertest.Code(err) != abi.CodeInternal {
		t.Fatalf("host expectation overflowing: %v; want internal", err)
	}
	if _, err := p.Estimate(hostCall(`{"cache_read_tokens":-1,"model":"m","prompt":"x"}`, opusCtx)); pursertest.Code(err) != abi.CodeBadParams {
		t.Fatalf("negative cache_read_tokens: %v; want bad_params", err)
	}
}

func TestHostPricedNoAllocPerCall(t *testing.T) {
	p, err := newEstimator([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req, err := newRequest(hostCall(`{"cache_read_tokens":10,"model":"claude-opus-4-5","prompt":"`+prompt(1000)+`"}`, opusCtx))
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() { _, _ = p.Estimate(req) }); n != 0 {
		t.Fatalf("Estimate allocates %v times per call", n)
	}
}
