package enforcer

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// ModelPrice is one model's prices in nano-USD per million tokens. Zero
// cache prices mean "as input" (see Cost).
type ModelPrice struct {
	Input        PerMTok
	Output       PerMTok
	CacheRead    PerMTok
	CacheWrite   PerMTok // 5-minute cache write
	CacheWrite1h PerMTok // 1-hour cache write; 0 = CacheWrite
	// TierAboveTokens > 0 is a long-context tier: a call whose prompt has
	// more tokens pays the *Above prices that are set, on every token.
	TierAboveTokens                                          int64
	InputAbove, OutputAbove, CacheReadAbove, CacheWriteAbove PerMTok
	// CacheWrite1hAbove is the 1-hour cache write price above the tier; 0
	// keeps CacheWrite1h. The ABI's LLM context does not carry it: BaseCost
	// prices no 1-hour writes, only settlement (Cost) does.
	CacheWrite1hAbove PerMTok
}

// PriceQuote is the price that applies to a model name and where it came
// from.
type PriceQuote struct {
	// Model is the table entry the name resolved to (for a fallback, the
	// entry whose prices were borrowed).
	Model string
	Price ModelPrice
	// Source names the table and entry, e.g. "litellm:claude-opus-4-5", or
	// the fallback rule, e.g. "fallback:dearest-anthropic:claude-opus-4-1".
	Source string
	// Fallback is true when the name was not in the table.
	Fallback bool
}

// Pricer resolves model names to prices. The pricing package implements it
// with the embedded LiteLLM table (name resolution, reload, fallback);
// PriceTable is the exact-match form. Implementations must be safe for
// concurrent use and never return a zero price for a named model silently:
// a model they do not know is a Fallback quote.
type Pricer interface {
	PriceOf(model string) PriceQuote
}

// PriceTable maps a model name (matched exactly) to its prices.
type PriceTable map[string]ModelPrice

// PriceOf matches model exactly; a model not in the table borrows the
// prices of the table's dearest entry (highest input, then output price)
// and says so in Source.
func (t PriceTable) PriceOf(model string) PriceQuote {
	if mp, ok := t[model]; ok {
		return PriceQuote{Model: model, Price: mp, Source: "table:" + model}
	}
	var best string
	for name, mp := range t {
		b, ok := t[best]
		if !ok || mp.Input > b.Input || (mp.Input == b.Input && (mp.Output > b.Output || (mp.Output == b.Output && name < best))) {
			best = name
		}
	}
	return PriceQuote{Model: best, Price: t[best], Source: "fallback:dearest:" + best, Fallback: true}
}

// DefaultPriceTable returns a small built-in table (from LiteLLM's price
// file, 2026-08) covering the models in purser's examples; load the full
// LiteLLM file for more.
func DefaultPriceTable() PriceTable {
	p := func(s string) PerMTok {
		v, err := ParsePerTokenUSD(s)
		if err != nil {
			panic(err) // constants below are valid
		}
		return v
	}
	return PriceTable{
		"gpt-4o":                   {Input: p("2.5e-06"), Output: p("1e-05"), CacheRead: p("1.25e-06")},
		"gpt-4o-mini":              {Input: p("1.5e-07"), Output: p("6e-07"), CacheRead: p("7.5e-08")},
		"gpt-4.1":                  {Input: p("2e-06"), Output: p("8e-06"), CacheRead: p("5e-07")},
		"gpt-5":                    {Input: p("1.25e-06"), Output: p("1e-05"), CacheRead: p("1.25e-07")},
		"o3":                       {Input: p("2e-06"), Output: p("8e-06"), CacheRead: p("5e-07")},
		"claude-opus-4-5":          {Input: p("5e-06"), Output: p("2.5e-05"), CacheRead: p("5e-07"), CacheWrite: p("6.25e-06")},
		"claude-opus-4-5-20251101": {Input: p("5e-06"), Output: p("2.5e-05"), CacheRead: p("5e-07"), CacheWrite: p("6.25e-06")},
		"claude-sonnet-4-5":        {Input: p("3e-06"), Output: p("1.5e-05"), CacheRead: p("3e-07"), CacheWrite: p("3.75e-06")},
		"claude-sonnet-4-5-20250929": {Input: p("3e-06"), Output: p("1.5e-05"), CacheRead: p("3e-07"),
			CacheWrite: p("3.75e-06")},
		"claude-haiku-4-5":     {Input: p("1e-06"), Output: p("5e-06"), CacheRead: p("1e-07"), CacheWrite: p("1.25e-06")},
		"gemini-3-pro-preview": {Input: p("2e-06"), Output: p("1.2e-05"), CacheRead: p("2e-07")},
	}
}

// LLMRule prices LLM calls from their prompt size.
type LLMRule struct {
	// Tools are the tool names treated as LLM calls, matched exactly.
	Tools []string
	// Prices resolve params.model (nil: DefaultPriceTable()).
	Prices Pricer
	// DefaultPrice is the input price of a call that names no model (the
	// seed's rule: $0.50 / 1M tokens). A named model is always priced by
	// Prices, which has its own fallback for names it does not know.
	DefaultPrice PerMTok
	// Minimum is the floor of any LLM estimate ($0.0001).
	Minimum Nanos
}

// DefaultLLMRule returns the brief's rule with the built-in prices.
func DefaultLLMRule() LLMRule {
	def, _ := ParsePerMTokUSD("0.50")
	return LLMRule{
		Tools:        []string{"LLM"},
		Prices:       DefaultPriceTable(),
		DefaultPrice: def,
		Minimum:      MustParseUSD("0.0001"),
	}
}

// IsLLMTool reports whether tool is one of the rule's LLM tool names.
func (r *LLMRule) IsLLMTool(tool string) bool {
	for _, t := range r.Tools {
		if t == tool {
			return true
		}
	}
	return false
}

// PriceFor returns the input price for model: DefaultPrice when model is
// empty, else what Prices says (a fallback price for an unknown name).
func (r *LLMRule) PriceFor(model string) PerMTok {
	return r.Quote(model).Price.Input
}

// Quote is the price of model: for a call that names no model, the seed's
// rule (DefaultPrice for every prompt token, no output counted); else
// what Prices says.
func (r *LLMRule) Quote(model string) PriceQuote {
	if model == "" {
		return PriceQuote{Price: ModelPrice{Input: r.DefaultPrice, CacheRead: r.DefaultPrice}, Source: "default"}
	}
	return r.Prices.PriceOf(model)
}

// Estimate prices params without calibration: LLMContext.BaseCost of
// characters/4 of params.prompt (else of the contents of params.messages
// joined by spaces) at the model's price, params.cache_read_tokens read
// from the cache; at least Minimum. A call naming no model is the seed's
// rule: characters/4 at DefaultPrice.
func (r *LLMRule) Estimate(params map[string]any) (Nanos, error) {
	model, _ := params["model"].(string)
	cache, err := paramTokens(params, "cache_read_tokens")
	if err != nil {
		return 0, err
	}
	lc := LLMContext{Price: r.Quote(model), CacheReadTokens: max(cache, 0)}
	cost, err := lc.BaseCost(int64(PromptChars(params) / 4))
	if err != nil {
		return 0, fmt.Errorf("llm estimate for model %q: %w", model, err)
	}
	return max(cost, r.Minimum), nil
}

// paramTokens reads an optional token count param: -1 when absent, an
// *InvalidParamsError when it is not a whole number in [0, MaxUsageTokens].
func paramTokens(params map[string]any, name string) (int64, error) {
	v, ok := params[name]
	if !ok || v == nil {
		return -1, nil
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case json.Number:
		n, err := x.Float64()
		if err != nil {
			return 0, &InvalidParamsError{Param: name, Reason: fmt.Sprintf("must be a whole number of tokens, got %q", x.String())}
		}
		f = n
	default:
		return 0, &InvalidParamsError{Param: name, Reason: fmt.Sprintf("must be a number of tokens, got %T", v)}
	}
	if f < 0 || f > MaxUsageTokens || f != float64(int64(f)) {
		return 0, &InvalidParamsError{Param: name, Reason: fmt.Sprintf("must be a whole number of tokens in [0, %d], got %v", MaxUsageTokens, v)}
	}
	return int64(f), nil
}

// PromptChars counts the Unicode characters of params.prompt or, without a
// prompt, of the messages' contents joined by single spaces. Content given
// as a list of blocks counts the blocks' "text" fields, joined by spaces.
func PromptChars(params map[string]any) int {
	if p, ok := params["prompt"].(string); ok {
		return utf8.RuneCountInString(p)
	}
	msgs, _ := params["messages"].([]any)
	n, parts := 0, 0
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		c, ok := contentChars(mm["content"])
		if !ok {
			continue
		}
		n += c
		parts++
	}
	if parts > 1 {
		n += parts - 1 // the joining spaces
	}
	return n
}

func contentChars(c any) (int, bool) {
	switch v := c.(type) {
	case string:
		return utf8.RuneCountInString(v), true
	case []any:
		n, parts := 0, 0
		for _, blk := range v {
			bm, _ := blk.(map[string]any)
			if t, ok := bm["text"].(string); ok {
				n += utf8.RuneCountInString(t)
				parts++
			}
		}
		if parts > 1 {
			n += parts - 1
		}
		return n, parts > 0
	}
	return 0, false
}

// withDefaults fills each zero field from d: a rule that only names
// aliases still gets the default prices and the $0.0001 minimum.
func (r LLMRule) withDefaults(d LLMRule) LLMRule {
	if r.Tools == nil {
		r.Tools = d.Tools
	}
	if r.Prices == nil {
		r.Prices = d.Prices
	}
	if r.DefaultPrice == 0 {
		r.DefaultPrice = d.DefaultPrice
	}
	if r.Minimum == 0 {
		r.Minimum = d.Minimum
	}
	return r
}

func (r *LLMRule) validate() error {
	if r.DefaultPrice < 0 || r.Minimum < 0 {
		return fmt.Errorf("llm rule: default price and minimum must be >= 0")
	}
	for _, t := range r.Tools {
		if t == "" {
			return fmt.Errorf("llm rule: empty tool alias")
		}
	}
	return nil
}
