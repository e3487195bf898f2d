package enforcer

import "testing"

// TestCostOf1hCacheWriteAboveTier: above the long-context tier a 1-hour
// cache write pays CacheWrite1hAbove (LiteLLM's
// cache_creation_input_token_cost_above_1hr_above_200k_tokens), not the
// base 1-hour price; without that price it keeps the base 1-hour price.
func TestCostOf1hCacheWriteAboveTier(t *testing.T) {
	// claude-sonnet-4-5: $6/M 1-hour writes, $12/M above 200k prompt tokens.
	p := ModelPrice{Input: 3_000_000_000, Output: 15_000_000_000, CacheWrite: 3_750_000_000, CacheWrite1h: 6_000_000_000,
		TierAboveTokens: 200_000, InputAbove: 6_000_000_000, CacheWriteAbove: 7_500_000_000, CacheWrite1hAbove: 12_000_000_000}
	cases := []struct {
		name string
		p    ModelPrice
		u    TokenUsage
		want Nanos
	}{
		{"below the tier", p, TokenUsage{InputTokens: 10, CacheWrite1hTokens: 199_990}, MustParseUSD("1.19997")},
		{"above the tier", p, TokenUsage{InputTokens: 10, CacheWrite1hTokens: 250_000}, MustParseUSD("3.00006")},
		{"above, no 1h tier price", func() ModelPrice { q := p; q.CacheWrite1hAbove = 0; return q }(),
			TokenUsage{InputTokens: 10, CacheWrite1hTokens: 250_000}, MustParseUSD("1.50006")},
	}
	for _, c := range cases {
		got, err := c.p.Cost(c.u)
		if err != nil || got != c.want {
			t.Errorf("%s: cost %s, %v; want %s", c.name, got, err, c.want)
		}
	}
}
