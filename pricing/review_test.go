package pricing

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

// Regression tests for review findings on issue 13.

// TestRefusesATableWithNothingToBorrow: a file that parses but has no
// fallback candidate would price every unknown name at $0; it is refused,
// naming the file.
func TestRefusesATableWithNothingToBorrow(t *testing.T) {
	dir := t.TempDir()
	for i, data := range []string{
		`{}`,
		`{"x": {"mode": "chat"}}`,
		`{"m": {"input_cost_per_token": 1e-06}}`, // no mode, no provider
		`{"e": {"input_cost_per_token": 1e-06, "mode": "embedding", "litellm_provider": "x"}}`,
		`{"w": {"input_cost_per_token": 0.135, "mode": "chat", "litellm_provider": "x"}}`, // above the plausible cap
	} {
		path := filepath.Join(dir, string(rune('a'+i))+".json")
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadFile(path, Options{})
		if !errors.Is(err, ErrNoFallback) || !strings.Contains(err.Error(), path) ||
			!strings.Contains(err.Error(), "no chat model with a per-token price") {
			t.Errorf("%s: err = %v; want ErrNoFallback naming %s", data, err, path)
		}
	}
	// With unknown_model naming a model, unknown names have a price to borrow.
	path := filepath.Join(dir, "named.json")
	if err := os.WriteFile(path, []byte(`{"m": {"input_cost_per_token": 1e-06}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tb, err := LoadFile(path, Options{UnknownModel: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if q := tb.PriceOf("other"); q.Price.Input != 1_000_000_000 || q.Source != "fallback:unknown_model:m" {
		t.Errorf("PriceOf(other) = %+v", q)
	}
}

// TestLiveKeepsTheTableWhenTheFileHasNothingToBorrow: reloading "{}" over
// a good file leaves the good table in use.
func TestLiveKeepsTheTableWhenTheFileHasNothingToBorrow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, Snapshot(), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Watch(path, Options{}, &logRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := l.PriceOf("claude-sonnet-4-5")
	for _, data := range []string{`{}`, `{"x": {"mode": "chat"}}`} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := l.Reload(); !errors.Is(err, ErrNoFallback) {
			t.Errorf("Reload of %s: err = %v; want ErrNoFallback", data, err)
		}
		if q := l.PriceOf("claude-sonnet-4-5"); q != before || q.Price.Input == 0 {
			t.Errorf("after %s: claude-sonnet-4-5 = %+v; want %+v", data, q, before)
		}
	}
}

// TestTier1hCacheWrite: 1-hour cache writes above the 200k tier pay
// LiteLLM's cache_creation_input_token_cost_above_1hr_above_200k_tokens.
func TestTier1hCacheWrite(t *testing.T) {
	q := embedded(t, Options{}).PriceOf("claude-sonnet-4-5")
	if q.Price.CacheWrite1hAbove != usd(t, "1.2e-05") {
		t.Fatalf("claude-sonnet-4-5 CacheWrite1hAbove = %s/M; want 12.00", q.Price.CacheWrite1hAbove.USDPerMTok())
	}
	c, err := q.Price.Cost(enforcer.TokenUsage{Model: "claude-sonnet-4-5", InputTokens: 10, CacheWrite1hTokens: 250_000})
	// LiteLLM: 250,000 x 1.2e-05 + 10 x 6e-06 = $3.00006.
	if err != nil || c != enforcer.MustParseUSD("3.00006") {
		t.Fatalf("250k 1-hour cache writes above the 200k tier: %s, %v; want $3.00006", c, err)
	}
}

// TestFallbackBorrowsResponsesModels: LiteLLM marks OpenAI's dearest
// models (o1-pro, gpt-5.x-pro) mode "responses"; an unknown OpenAI name
// must not borrow a cheaper chat model's price.
func TestFallbackBorrowsResponsesModels(t *testing.T) {
	tb := embedded(t, Options{})
	unknown := tb.PriceOf("gpt-5.9-pro")
	for _, known := range []string{"gpt-5.5-pro", "o1-pro", "gpt-4"} {
		k := tb.PriceOf(known)
		if k.Fallback || unknown.Price.Output < k.Price.Output || unknown.Price.Input < k.Price.Input {
			t.Errorf("gpt-5.9-pro borrows %s (%s in, %s out per M): cheaper than %s (%s, %s)", unknown.Source,
				unknown.Price.Input.USDPerMTok(), unknown.Price.Output.USDPerMTok(), known, k.Price.Input.USDPerMTok(), k.Price.Output.USDPerMTok())
		}
	}
}
