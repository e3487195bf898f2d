package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// withLLMTokensPlugin writes a config that loads the shipped llm-tokens
// estimator (no longer a default plugin) beside the default policy.
func withLLMTokensPlugin(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "llm-tokens.yaml")
	yaml := `plugins:
  entries:
    - path: plugins/estimators/llm-tokens/llm-tokens.wasm
      fail_mode: open
    - path: plugins/policies/max-cost-per-call/max-cost-per-call.wasm
      order: 10
      config: {limit_usd: "1.00"}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPricesCommandSummary(t *testing.T) {
	code, out, errOut := cli(t, "prices")
	if code != 0 || !strings.Contains(out, "embedded LiteLLM snapshot 2026-08-01") || !strings.Contains(out, "entries: 2511") ||
		!strings.Contains(out, "anthropic  claude-3-opus-20240229") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	code, out, _ = cli(t, "prices", "--json")
	var s priceSummary
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.Entries != 2511 || s.SnapshotDate != "2026-08-01" || s.UnknownModel != "dearest" ||
		s.Fallbacks["openai"] != "o1-pro" || s.NoModelUSD != "0.50" {
		t.Fatalf("exit %d: %+v %s", code, s, out)
	}
}

func TestPricesCommandModel(t *testing.T) {
	code, out, _ := cli(t, "prices", "anthropic/claude-opus-4.5", "--json")
	var r modelPriceReport
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Entry != "claude-opus-4-5" || r.Source != "litellm:claude-opus-4-5" || r.Fallback ||
		r.USD != (priceClasses{Input: "5.00", Output: "25.00", CacheRead: "0.50", CacheWrite: "6.25", CacheWrite1h: "10.00"}) || r.Tier != nil {
		t.Fatalf("exit %d: %+v", code, r)
	}
	code, out, _ = cli(t, "prices", "gemini-3-pro-preview")
	if code != 0 || !strings.Contains(out, "above 200000 prompt tokens") || !strings.Contains(out, "output          18.00") {
		t.Fatalf("tier: exit %d: %s", code, out)
	}
	// The 1-hour write's own tier price (LiteLLM's ..._above_1hr_above_200k_tokens).
	code, out, _ = cli(t, "prices", "claude-sonnet-4-5", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Tier == nil || r.Tier.USD.CacheWrite1h != "12.00" {
		t.Fatalf("sonnet 1h tier: exit %d: %s", code, out)
	}
	code, out, _ = cli(t, "prices", "claude-opus-9")
	if code != 0 || !strings.HasPrefix(out, `FALLBACK: "claude-opus-9" is not in the price table`) ||
		!strings.Contains(out, "source: fallback:dearest-anthropic:claude-3-opus-20240229") {
		t.Fatalf("fallback: exit %d: %s", code, out)
	}
}

func TestPricesCommandFileAndErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "prices.json")
	if err := os.WriteFile(good, []byte(`{"house-model": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "mode": "chat", "litellm_provider": "house"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := cli(t, "prices", "--prices", good, "house-model")
	if code != 0 || !strings.Contains(out, "source: litellm:house-model") || !strings.Contains(out, "input           1.00") {
		t.Fatalf("exit %d: %s", code, out)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\"m\": {\"input_cost_per_token\": \"cheap\"}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := cli(t, "prices", "--prices", bad)
	if code != exitUsage || !strings.Contains(errOut, bad+":1:2: model \"m\" field \"input_cost_per_token\"") {
		t.Fatalf("bad file: exit %d: %s", code, errOut)
	}
	if code, _, errOut := cli(t, "prices", "a", "b"); code != exitUsage || !strings.Contains(errOut, "at most one MODEL") {
		t.Fatalf("two models: exit %d: %s", code, errOut)
	}
}

// TestEstimateUsesTheTable: the built-in rule prices named models from
// the embedded table; --prices replaces it.
func TestEstimateUsesTheTable(t *testing.T) {
	prompt := strings.Repeat("x", 40_000) // 10,000 tokens
	code, out, _ := cli(t, "estimate", "--tool", "LLM", "--json", "--params", `{"model":"claude-opus-4-5-20251101","prompt":"`+prompt+`"}`)
	var got map[string]any
	// 10,000 fresh prompt tokens at opus's cache-write price ($6.25/M, the
	// dearer of input and cache write) = $0.0625, x2 for the cold-start
	// calibration prior.
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got["estimate_nanos"] != float64(125_000_000) {
		t.Fatalf("opus, 10,000 tokens at $6.25/M, prior x2: exit %d %s", code, out)
	}
	file := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(file, []byte(`{"claude-opus-4-5-20251101": {"input_cost_per_token": 1e-05, "mode": "chat", "litellm_provider": "anthropic"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = cli(t, "estimate", "--tool", "LLM", "--json", "--prices", file, "--params", `{"model":"claude-opus-4-5-20251101","prompt":"`+prompt+`"}`)
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got["estimate_nanos"] != float64(200_000_000) { // $10/M, no cache-write price, prior x2
		t.Fatalf("--prices: exit %d %s", code, out)
	}
}

// TestServeReloadsThePriceFile: the engine serve builds watches
// pricing.llm.litellm_file, swaps a changed file in, keeps the old table
// when the new file is bad (logging where it is bad), and stops watching
// when closed.
func TestServeReloadsThePriceFile(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "prices.json")
	write := func(data string) {
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"m": {"input_cost_per_token": 1e-06, "mode": "chat", "litellm_provider": "x"}}`)
	// Calibration off: the prior would double the base this test compares.
	cfg, err := loadConfig("", map[string]any{"store.kind": "memory", "log.level": "error", "pricing.llm.litellm_file": file,
		"calibration.disabled": true})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	eng, err := buildEngine(ctx, cfg, engineOptions{watchPrices: true, logOutput: logs})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	estimate := func() enforcer.Nanos { // 1,000 tokens
		q, err := eng.enforcer.Estimate(ctx, enforcer.Call{Tool: "LLM", Params: map[string]any{"model": "m", "prompt": strings.Repeat("x", 4000)}})
		if err != nil {
			t.Fatal(err)
		}
		return q.Nanos
	}
	waitUntil := func(what string, cond func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	if got := estimate(); got != enforcer.MustParseUSD("0.001") {
		t.Fatalf("initial estimate %s", got)
	}
	write(`{"m": {"input_cost_per_token": 3e-06, "mode": "chat", "litellm_provider": "x"}}`)
	waitUntil("the new price", func() bool { return estimate() == enforcer.MustParseUSD("0.003") })
	write("{\"m\": {\"input_cost_per_token\": 5e-06},\n \"m2\": {\"input_cost_per_token\": []}}")
	waitUntil("the error in the log", func() bool { return strings.Contains(logs.String(), "prices.json:2:2: model \\\"m2\\\"") })
	if got := estimate(); got != enforcer.MustParseUSD("0.003") {
		t.Errorf("a bad file changed the price: %s", got)
	}
}

func TestUnknownModelConfig(t *testing.T) {
	cfg, err := loadConfig("", map[string]any{"store.kind": "memory", "pricing.llm.unknown_model": "no-such-model"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.build(); err == nil || !strings.Contains(err.Error(), "pricing.llm.unknown_model: ") || !strings.Contains(err.Error(), `"no-such-model"`) {
		t.Fatalf("err = %v", err)
	}
	code, out, _ := cli(t, "prices", "--config", writeFile(t, "u.yaml", "pricing: {llm: {unknown_model: gpt-4o-mini}}"), "my-model")
	if code != 0 || !strings.Contains(out, "source: fallback:unknown_model:gpt-4o-mini") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// TestReplayPricesFlag: --prices prices the traces' reported tokens (and
// the engine's estimates); a bad file is a usage error naming it.
func TestReplayPricesFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.json")
	// gpt-4o at $1/M input and $2/M output: the fixture's first call is
	// 1,200 input + 80 output tokens = $0.00136.
	if err := os.WriteFile(file, []byte(`{"gpt-4o": {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "mode": "chat", "litellm_provider": "openai"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, "replay", "--no-plugins", replayFixture, "--prices", file, "--json")
	// The embedded table prices the fixture's two gpt-4o usages at
	// $0.0038 + $0.0115; the file at $0.00136 + $0.0049 (a cache read the
	// file does not price pays input): $0.00904 less in all.
	spent := func(out string) string {
		var rep struct{ Spent struct{ USD string } }
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return rep.Spent.USD
	}
	if code != 0 || spent(out) != "0.04906" {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if _, out, _ := cli(t, "replay", "--no-plugins", replayFixture, "--json"); spent(out) != "0.0581" {
		t.Errorf("default table: spent %s", spent(out))
	}
	cfg := writeFile(t, "p.yaml", "pricing: {llm: {litellm_file: "+file+"}}")
	if _, out, _ := cli(t, "replay", "--no-plugins", replayFixture, "--config", cfg, "--json"); spent(out) != "0.04906" {
		t.Errorf("pricing.llm.litellm_file: spent %s", spent(out))
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"gpt-4o": `), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(t, "replay", "--no-plugins", replayFixture, "--prices", bad)
	if code != exitUsage || !strings.Contains(errOut, "pricing.llm.litellm_file: "+bad+":1:") {
		t.Fatalf("bad file: exit %d: %s", code, errOut)
	}
}

// TestModelPriceNeedsOutput: a pricing.llm.models entry without an output
// price would price output at $0; it is a config error naming the key.
func TestModelPriceNeedsOutput(t *testing.T) {
	cfg, err := loadConfig(writeFile(t, "m.yaml", `pricing: {llm: {models: {house: {input_usd_per_token: "1e-06"}}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.build()
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "pricing.llm.models.house.output_usd_per_token: is required") {
		t.Fatalf("err = %v; want a config error at pricing.llm.models.house.output_usd_per_token", err)
	}
}

// TestPricesFileWithNothingToBorrow: a price file that parses but has no
// chat model to price unknown names with is refused at start, naming it.
func TestPricesFileWithNothingToBorrow(t *testing.T) {
	empty := writeFile(t, "empty.json", "{}")
	code, _, errOut := cli(t, "prices", "--prices", empty)
	if code != exitUsage || !strings.Contains(errOut, empty) || !strings.Contains(errOut, "no chat model with a per-token price") {
		t.Fatalf("prices --prices {}: exit %d: %s", code, errOut)
	}
	cfg, err := loadConfig("", map[string]any{"store.kind": "memory", "pricing.llm.litellm_file": empty})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.build(); err == nil || !strings.Contains(err.Error(), "pricing.llm.litellm_file: "+empty) {
		t.Fatalf("serve's config with {}: err = %v", err)
	}
}
