package pricing

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

func embedded(t testing.TB, opt Options) *Table {
	t.Helper()
	tb, err := Embedded(opt)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func usd(t testing.TB, perToken string) enforcer.PerMTok {
	t.Helper()
	p, err := enforcer.ParsePerTokenUSD(perToken)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEmbeddedSnapshotIsVerbatim(t *testing.T) {
	sum := sha256.Sum256(Snapshot())
	if got := hex.EncodeToString(sum[:]); got != snapshotSHA256 {
		t.Fatalf("embedded snapshot sha256 = %s; want %s (litellm/ORIGIN.md)", got, snapshotSHA256)
	}
	tb := embedded(t, Options{})
	o := tb.Origin()
	// 2,986 keys: 2,511 with a per-token input price, 474 without, and sample_spec.
	if tb.Len() != 2511 || o.Skipped != 475 || o.SHA256 != snapshotSHA256 || o.SnapshotDate != SnapshotDate {
		t.Errorf("entries %d skipped %d origin %+v", tb.Len(), o.Skipped, o)
	}
}

// TestEntryFields checks every price class against the snapshot's text.
func TestEntryFields(t *testing.T) {
	tb := embedded(t, Options{})
	cases := map[string]enforcer.ModelPrice{
		"claude-opus-4-5-20251101": {Input: usd(t, "5e-06"), Output: usd(t, "2.5e-05"), CacheRead: usd(t, "5e-07"),
			CacheWrite: usd(t, "6.25e-06"), CacheWrite1h: usd(t, "1e-05")},
		"gemini-3-pro-preview": {Input: usd(t, "2e-06"), Output: usd(t, "1.2e-05"), CacheRead: usd(t, "2e-07"),
			TierAboveTokens: 200_000, InputAbove: usd(t, "4e-06"), OutputAbove: usd(t, "1.8e-05"), CacheReadAbove: usd(t, "4e-07"),
			CacheWriteAbove: usd(t, "2.5e-07")},
		"gpt-4o": {Input: usd(t, "2.5e-06"), Output: usd(t, "1e-05"), CacheRead: usd(t, "1.25e-06")},
		// Float noise in the file (1.00002e-06) is kept exactly, never rounded through float64.
		"databricks/databricks-claude-haiku-4-5": {Input: 1_000_020_000, Output: usd(t, "5.00003e-06")},
	}
	for name, want := range cases {
		q, e := tb.Lookup(name)
		if q.Price != want || q.Source != "litellm:"+name || q.Fallback {
			t.Errorf("%s: %+v; want %+v", name, q, want)
		}
		if e.Mode != "chat" || e.Provider == "" {
			t.Errorf("%s: provider %q mode %q", name, e.Provider, e.Mode)
		}
	}
	_, e := tb.Lookup("text-embedding-3-small")
	if e.Mode != "embedding" || e.Provider != "openai" {
		t.Errorf("text-embedding-3-small: %+v", e)
	}
}

func TestParseTiersAndSkips(t *testing.T) {
	data := `{"sample_spec": {"input_cost_per_token": 0, "mode": "one of: chat"},
 "img": {"output_cost_per_image": 0.04, "mode": "image_generation"},
 "m": {"input_cost_per_token": 1e-06, "output_cost_per_token": null, "input_cost_per_token_above_128k_tokens": 2e-06,
       "output_cost_per_token_above_512k_tokens": 9e-06, "output_cost_per_token_above_128k_tokens": 4e-06,
       "input_cost_per_token_above_128k_tokens_priority": 7e-06, "cache_creation_input_token_cost_above_1hr": 3e-06,
       "cache_creation_input_token_cost_above_1hr_above_128k_tokens": 6e-06, "cache_creation_input_token_cost_above_1hr_above_512k_tokens": 8e-06}}`
	entries, skipped, err := Parse([]byte(data), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	want := enforcer.ModelPrice{Input: usd(t, "1e-06"), CacheWrite1h: usd(t, "3e-06"), TierAboveTokens: 128_000,
		InputAbove: usd(t, "2e-06"), OutputAbove: usd(t, "4e-06"), CacheWrite1hAbove: usd(t, "6e-06")}
	if skipped != 2 || len(entries) != 1 || entries[0].Price != want {
		t.Fatalf("skipped %d entries %+v; want m = %+v", skipped, entries, want)
	}
}

func TestParseErrorsNameModelFieldAndLine(t *testing.T) {
	cases := []struct {
		data         string
		model, field string
		line         int
		is           error
	}{
		{"{\n \"m1\": {\"input_cost_per_token\": 1e-6,\n \"output_cost_per_token\": \"cheap\"}}", "m1", "output_cost_per_token", 2, nil},
		{"{\"a\": {\"input_cost_per_token\": 1e-6},\n\n \"m2\": {\"input_cost_per_token\": -1e-6}}", "m2", "input_cost_per_token", 3, enforcer.ErrInvalidAmount},
		{"{\"m3\": {\"input_cost_per_token\": 1e-6, \"input_cost_per_token_above_200k_tokens\": true}}", "m3", "input_cost_per_token_above_200k_tokens", 1, nil},
		{"{\"m4\": {\"input_cost_per_token\": 1e-6, \"mode\": 3}}", "m4", "mode", 1, nil},
		{"{\"m5\": {\"input_cost_per_token\": 1e-6}\n,\n \"m6\": ", "m6", "", 3, nil},
		{"[1, 2]", "", "", 1, ErrNotATable},
		{"{\"a\": {},\n\n \"m8\": 5}", "m8", "", 3, nil},
		{"{\"m7\": {\"input_cost_per_token\": 1e-6}} {}", "", "", 1, nil},
	}
	for _, c := range cases {
		_, _, err := Parse([]byte(c.data), "prices.json")
		var pe *Error
		if !errors.As(err, &pe) || pe.Model != c.model || pe.Field != c.field || pe.Line != c.line || pe.File != "prices.json" {
			t.Errorf("%q: err = %#v (%v); want model %q field %q line %d", c.data, pe, err, c.model, c.field, c.line)
			continue
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%q: err = %v; want %v", c.data, err, c.is)
		}
		if !strings.HasPrefix(err.Error(), fmt.Sprintf("prices.json:%d:", c.line)) {
			t.Errorf("message %q does not start with the position", err)
		}
	}
}

// TestResolution shows each rule of resolve.go with real names.
func TestResolution(t *testing.T) {
	tb := embedded(t, Options{})
	cases := []struct{ name, entry string }{
		// Every model named in ../shared/data (see also TestSharedDataModelsResolve).
		{"gpt-4o", "gpt-4o"},
		{"gpt-4o-2024-05-13", "gpt-4o-2024-05-13"},
		{"gpt-4o-2024-08-06", "gpt-4o-2024-08-06"},
		{"claude-opus-4-5-20251101", "claude-opus-4-5-20251101"},
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"},
		{"claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001"},
		{"google/gemini-3-pro-preview", "gemini-3-pro-preview"},
		{"openrouter/google/gemini-3-pro-preview", "openrouter/google/gemini-3-pro-preview"},
		// 1. case
		{"Claude-Opus-4-5", "claude-opus-4-5"},
		{"GPT-4o", "gpt-4o"},
		// 2. version suffix dropped: a date the table does not have yet, Vertex's @date, -latest
		{"claude-opus-4-5-20991231", "claude-opus-4-5"},
		{"gpt-4o-2099-01-01", "gpt-4o"},
		{"claude-opus-4-5@20251101", "claude-opus-4-5"},
		{"vertex_ai/claude-opus-4-5@20251101", "vertex_ai/claude-opus-4-5@20251101"},
		{"claude-sonnet-4-5-latest", "claude-sonnet-4-5"},
		{"gemini-3-pro-preview@default", "gemini-3-pro-preview"},
		// 3. an undated name as its newest dated entry
		{"claude-opus-4", "claude-opus-4-20250514"},
		{"gpt-4o-mini-tts", "gpt-4o-mini-tts"},
		{"gpt-4o-audio-preview", "gpt-4o-audio-preview"},
		// 4. OpenRouter's dotted Anthropic versions
		{"anthropic/claude-opus-4.5", "claude-opus-4-5"},
		{"anthropic/claude-haiku-4.5", "claude-haiku-4-5"},
		// prefixes, stripped one at a time
		{"anthropic/claude-opus-4-5-20251101", "claude-opus-4-5-20251101"},
		{"@anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"},
		{"bedrock/anthropic.claude-opus-4-5-20251101-v1:0", "anthropic.claude-opus-4-5-20251101-v1:0"},
		{"vertex_ai/gemini-3-pro-preview", "vertex_ai/gemini-3-pro-preview"},
		{"litellm_proxy/openrouter/google/gemini-3-pro-preview", "openrouter/google/gemini-3-pro-preview"},
		{"openai/gpt-4o-2024-08-06", "gpt-4o-2024-08-06"},
	}
	for _, c := range cases {
		q := tb.PriceOf(c.name)
		if q.Fallback || q.Model != c.entry || q.Source != "litellm:"+c.entry {
			t.Errorf("PriceOf(%q) = %s (%s); want litellm:%s", c.name, q.Model, q.Source, c.entry)
		}
	}
}

func TestFallbackIsDearestOfFamily(t *testing.T) {
	tb := embedded(t, Options{})
	cases := []struct{ name, source string }{
		{"claude-opus-9", "fallback:dearest-anthropic:claude-3-opus-20240229"},
		{"bedrock/us.anthropic.claude-next-v1:0", "fallback:dearest-anthropic:claude-3-opus-20240229"},
		{"sonnet", "fallback:dearest-anthropic:claude-3-opus-20240229"},
		{"gpt-7", "fallback:dearest-openai:o1-pro"}, // mode "responses"
		{"o9-mini", "fallback:dearest-openai:o1-pro"},
		{"gemini-9-ultra", "fallback:dearest-gemini:gemini-3-pro-preview"},
		{"google/palm-9", "fallback:dearest-gemini:gemini-3-pro-preview"},
		{"groq/some-new-model", "fallback:dearest-groq:groq/moonshotai/kimi-k2-instruct-0905"},
		{"my-local-model", "fallback:dearest-all:o1-pro"},
		{"", "fallback:dearest-all:o1-pro"},
		{strings.Repeat("x/", 300) + "claude", "fallback:dearest-all:o1-pro"},
	}
	for _, c := range cases {
		q := tb.PriceOf(c.name)
		if !q.Fallback || q.Source != c.source || !enforcer.IsFallbackPriceSource(q.Source) || q.Price.Input == 0 {
			t.Errorf("PriceOf(%.40q) = %+v; want %s", c.name, q, c.source)
		}
		if q.Price != tb.PriceOf(q.Model).Price {
			t.Errorf("%s borrowed prices that are not %s's", c.name, q.Model)
		}
	}
	// Never a silent $0.50/M: the dearest Anthropic chat model is $15/M input.
	if q := tb.PriceOf("claude-opus-9"); q.Price.Input != usd(t, "1.5e-05") {
		t.Errorf("anthropic fallback input = %s/M", q.Price.Input.USDPerMTok())
	}
}

func TestUnknownModelAndOverrides(t *testing.T) {
	over := map[string]enforcer.ModelPrice{"in-house-7b": {Input: 100_000_000, Output: 200_000_000}, "gpt-4o": {Input: 1, Output: 2}}
	tb := embedded(t, Options{UnknownModel: "anthropic/claude-sonnet-4.5", Overrides: over})
	if q := tb.PriceOf("mystery"); !q.Fallback || q.Source != "fallback:unknown_model:claude-sonnet-4-5" {
		t.Errorf("unknown_model: %+v", q)
	}
	if q := tb.PriceOf("In-House-7B"); q.Fallback || q.Source != "config:in-house-7b" || q.Price != over["in-house-7b"] {
		t.Errorf("override: %+v", q)
	}
	if q := tb.PriceOf("gpt-4o-2099-01-01"); q.Source != "config:gpt-4o" || q.Price.Input != 1 {
		t.Errorf("override replaces the file's entry: %+v", q)
	}
	_, err := Embedded(Options{UnknownModel: "no-such-model"})
	if err == nil || !strings.Contains(err.Error(), `"no-such-model"`) {
		t.Errorf("bad unknown_model: err = %v", err)
	}
}

// TestResolvedCacheIsBounded: names come from callers; memory must not
// grow with them, and answers past the bound stay right.
func TestResolvedCacheIsBounded(t *testing.T) {
	tb := embedded(t, Options{})
	for i := range cacheMax + 100 {
		tb.PriceOf(fmt.Sprintf("claude-unknown-%d", i))
	}
	n := 0
	tb.cache.Range(func(any, any) bool { n++; return true })
	if n > cacheMax {
		t.Errorf("cache holds %d names; bound is %d", n, cacheMax)
	}
	if q := tb.PriceOf("google/gemini-3-pro-preview"); q.Model != "gemini-3-pro-preview" {
		t.Errorf("past the bound: %+v", q)
	}
}

// TestPriceOfConcurrent hammers resolution and the cache (run with -race).
func TestPriceOfConcurrent(t *testing.T) {
	tb := embedded(t, Options{})
	names := []string{"gpt-4o", "google/gemini-3-pro-preview", "Claude-Opus-4-5", "nope", "anthropic/claude-opus-4.5"}
	want := make([]enforcer.PriceQuote, len(names))
	for i, n := range names {
		want[i] = embedded(t, Options{}).PriceOf(n)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := (i + g) % len(names)
				if q := tb.PriceOf(names[k]); q != want[k] {
					t.Errorf("%s: %+v; want %+v", names[k], q, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestCostOfLongContextTier: a gemini-3-pro-preview call above 200k
// prompt tokens pays the tier price on every token.
func TestCostOfLongContextTier(t *testing.T) {
	p := embedded(t, Options{}).PriceOf("gemini-3-pro-preview").Price
	below, _ := p.Cost(enforcer.TokenUsage{InputTokens: 200_000, OutputTokens: 1000})
	above, _ := p.Cost(enforcer.TokenUsage{InputTokens: 200_001, OutputTokens: 1000})
	if below != enforcer.MustParseUSD("0.412") || above != enforcer.MustParseUSD("0.818004") {
		t.Errorf("below %s above %s", below, above)
	}
}

func BenchmarkPriceOf(b *testing.B) {
	tb := embedded(b, Options{})
	for _, name := range []string{"claude-opus-4-5-20251101", "google/gemini-3-pro-preview", "claude-opus-9"} {
		b.Run(name, func(b *testing.B) {
			tb.PriceOf(name)
			b.ReportAllocs()
			for b.Loop() {
				tb.PriceOf(name)
			}
		})
	}
}

func BenchmarkEmbedded(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Embedded(Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveUncached is the first lookup of a name (or any lookup
// past the cache bound): the rules of resolve.go without the cache.
func BenchmarkResolveUncached(b *testing.B) {
	tb := embedded(b, Options{})
	for _, name := range []string{"google/gemini-3-pro-preview", "anthropic/claude-opus-4.5", "claude-opus-9"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tb.quote(name)
			}
		})
	}
}
