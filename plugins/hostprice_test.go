package plugins_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/bridge"
	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
)

// LiteLLM's prices (USD per token, the snapshot's text) for the models the
// host-priced path is checked on: cache writes (5-minute and 1-hour),
// long-context tiers above 200k prompt tokens (claude-sonnet-4-5 with a
// tiered cache write; gemini-3-pro-preview with a tiered cache write but
// no base one), and a model without cache writes (gpt-4o).
var hostPrices = map[string]map[string]string{
	"claude-opus-4-5":  {"in": "5e-06", "out": "2.5e-05", "cr": "5e-07", "cw": "6.25e-06", "cw1h": "1e-05"},
	"claude-opus-4-1":  {"in": "1.5e-05", "out": "7.5e-05", "cr": "1.5e-06", "cw": "1.875e-05", "cw1h": "3e-05"},
	"claude-haiku-4-5": {"in": "1e-06", "out": "5e-06", "cr": "1e-07", "cw": "1.25e-06", "cw1h": "2e-06"},
	"claude-sonnet-4-5": {"in": "3e-06", "out": "1.5e-05", "cr": "3e-07", "cw": "3.75e-06", "cw1h": "6e-06",
		"in>": "6e-06", "out>": "2.25e-05", "cr>": "6e-07", "cw>": "7.5e-06"},
	"gemini-3-pro-preview": {"in": "2e-06", "out": "1.2e-05", "cr": "2e-07",
		"in>": "4e-06", "out>": "1.8e-05", "cr>": "4e-07", "cw>": "2.5e-07"},
	"gpt-4o": {"in": "2.5e-06", "out": "1e-05", "cr": "1.25e-06"},
}

func modelPrice(t *testing.T, p map[string]string) enforcer.ModelPrice {
	t.Helper()
	var mp enforcer.ModelPrice
	for key, dst := range map[string]*enforcer.PerMTok{"in": &mp.Input, "out": &mp.Output, "cr": &mp.CacheRead, "cw": &mp.CacheWrite,
		"cw1h": &mp.CacheWrite1h, "in>": &mp.InputAbove, "out>": &mp.OutputAbove, "cr>": &mp.CacheReadAbove, "cw>": &mp.CacheWriteAbove} {
		if s, ok := p[key]; ok {
			v, err := enforcer.ParsePerTokenUSD(s)
			if err != nil {
				t.Fatal(err)
			}
			*dst = v
		}
	}
	if _, ok := p["in>"]; ok {
		mp.TierAboveTokens = 200_000
	}
	return mp
}

// hostPricedCase is one call: what the host knows and what the caller sent.
type hostPricedCase struct {
	model                      string
	chars                      int
	hostCacheRead, hostOutput  int64
	paramCacheRead, paramMaxTk int64 // -1: absent
}

func (c hostPricedCase) call(mp enforcer.ModelPrice, prompt string) enforcer.Call {
	params := map[string]any{"prompt": prompt[:c.chars]}
	if c.model != "" {
		params["model"] = c.model
	}
	if c.paramCacheRead >= 0 {
		params["cache_read_tokens"] = c.paramCacheRead
	}
	if c.paramMaxTk >= 0 {
		params["max_tokens"] = c.paramMaxTk
	}
	return enforcer.Call{Tool: "LLM", Account: "a", Params: params, LLM: &enforcer.LLMContext{
		Price:                enforcer.PriceQuote{Model: c.model, Price: mp, Source: "litellm:" + c.model},
		ExpectedOutputTokens: c.hostOutput, CacheReadTokens: c.hostCacheRead}}
}

// want is enforcer.LLMContext.BaseCost with the caller's params in place of
// the host's expectations (llm-tokens' README), at least minimum.
func (c hostPricedCase) want(t *testing.T, call enforcer.Call, defaultOutput int64, minimum enforcer.Nanos) enforcer.Nanos {
	ref := *call.LLM
	if c.paramCacheRead >= 0 {
		ref.CacheReadTokens = c.paramCacheRead
	}
	switch {
	case c.paramMaxTk >= 0:
		ref.ExpectedOutputTokens = c.paramMaxTk
	case ref.ExpectedOutputTokens <= 0:
		ref.ExpectedOutputTokens = defaultOutput
	}
	n, err := ref.BaseCost(int64(c.chars / 4))
	if err != nil {
		t.Fatalf("%+v: BaseCost: %v", c, err)
	}
	return max(n, minimum)
}

func randomHostPricedCase(r *rand.Rand, models []string) hostPricedCase {
	pick := func(v ...int64) int64 { return v[r.IntN(len(v))] }
	c := hostPricedCase{model: models[r.IntN(len(models))], hostCacheRead: pick(0, 0, 1, 3_000, 150_000, 250_000),
		hostOutput: pick(0, 0, 812, 4_096, 64_000), paramCacheRead: pick(-1, -1, 0, 500, 1_000_000), paramMaxTk: pick(-1, -1, 0, 1, 1_200, 32_000)}
	switch r.IntN(10) {
	case 0, 1: // edges: empty, under one token, and either side of the 200k-token tier
		c.chars = int(pick(0, 1, 3, 4, 5, 7, 799_996, 799_999, 800_000, 800_003, 800_004, 800_008))
	case 2:
		c.chars = 790_000 + r.IntN(110_000)
	default:
		c.chars = r.IntN(60_000)
	}
	if r.IntN(20) == 0 {
		c.model = "" // the host may price a call that names no model
	}
	return c
}

// TestLLMTokensPricesLikeTheHost: the committed llm-tokens.wasm, metered by
// the host and fed by the bridge, prices a call the host priced exactly as
// enforcer.LLMContext.BaseCost does, to the nano, on real prices.
func TestLLMTokensPricesLikeTheHost(t *testing.T) {
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	prices := map[string]enforcer.ModelPrice{}
	var models []string
	for name, p := range hostPrices {
		prices[name] = modelPrice(t, p)
		models = append(models, name)
	}
	prices[""] = prices["claude-opus-4-5"]
	prompt := strings.Repeat("x", 900_000)
	r := rand.New(rand.NewPCG(13, 1))
	for _, cfg := range []struct {
		json          string
		defaultOutput int64
		minimum       enforcer.Nanos
		calls         int
	}{
		{`{"minimum_usd":"0"}`, 0, 0, 600},
		{`{"minimum_usd":"0","default_output_tokens":700}`, 700, 0, 300},
		{`{}`, 0, enforcer.MustParseUSD("0.0001"), 300},
	} {
		// A loaded CI machine can take longer than the default deadline to
		// copy and scan a 900 KB prompt; the answer, not the speed, is checked.
		p, err := h.Load(ctx, host.Spec{File: llmWasm, Config: []byte(cfg.json), Limits: host.Limits{CallTimeout: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for i := range cfg.calls {
			c := randomHostPricedCase(r, models)
			if i < 12*len(models) { // every model on every edge first
				c.model, c.chars = models[i%len(models)], []int{0, 3, 4, 5, 799_996, 800_000, 800_003, 800_004, 800_008, 812, 40_001, 899_999}[i/len(models)]
			}
			call := c.call(prices[c.model], prompt)
			want := c.want(t, call, cfg.defaultOutput, cfg.minimum)
			req, err := bridge.EstimateRequest(call)
			if err != nil {
				t.Fatal(err)
			}
			res, _, err := p.Estimate(ctx, req)
			if err != nil || enforcer.Nanos(res.Nanos) != want {
				t.Fatalf("config %s, %+v: plugin %d (%v); BaseCost %d", cfg.json, c, res.Nanos, err, want)
			}
		}
	}
}

// TestLLMTokensNamedModelFallsThroughWithoutHostPrice: through the bridge,
// a call naming a model with no LLM context (Call.LLM nil: an old host, or
// one that does not fill it) and no price for it in the plugin's config is
// "unsupported" (enforcer.ErrNotHandled), so the host's chain prices it
// with its built-in rule (the real table), not at the plugin's $0.50/M
// seed. With the context it is host-priced; a call naming no model keeps
// the seed rule.
func TestLLMTokensNamedModelFallsThroughWithoutHostPrice(t *testing.T) {
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	reg, err := h.NewRegistry(ctx, host.RegistryConfig{Plugins: []host.Spec{{File: llmWasm, Config: []byte(`{}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	est := bridge.NewEstimator(reg)
	prompt := strings.Repeat("x", 70_000) // 17,500 tokens
	named := enforcer.Call{Tool: "LLM", Account: "a", Params: map[string]any{"model": "claude-opus-4-5", "prompt": prompt}}
	if q, err := est.Estimate(ctx, named); !errors.Is(err, enforcer.ErrNotHandled) {
		t.Fatalf("named model, nil Call.LLM: %+v, %v; want unsupported (enforcer.ErrNotHandled)", q, err)
	}
	// With the host's context: 17,500 tokens written at $6.25/M.
	named.LLM = &enforcer.LLMContext{Price: enforcer.PriceQuote{Model: "claude-opus-4-5", Price: modelPrice(t, hostPrices["claude-opus-4-5"])}}
	if q, err := est.Estimate(ctx, named); err != nil || q.Nanos != enforcer.MustParseUSD("0.109375") {
		t.Fatalf("named model with the host's context: %+v, %v; want $0.109375", q, err)
	}
	seed := enforcer.Call{Tool: "LLM", Account: "a", Params: map[string]any{"prompt": prompt}}
	if q, err := est.Estimate(ctx, seed); err != nil || q.Nanos != 8_750_000 {
		t.Fatalf("no model, nil Call.LLM: %+v, %v; want the seed rule, $0.00875", q, err)
	}
}
