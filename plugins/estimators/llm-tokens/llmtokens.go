// Command llm-tokens is purser's LLM estimator plugin: it prices a call
// from the host-counted prompt characters (tokens = characters / 4), the
// model's price (a configured one, else the host's price table handed over
// in the request, ABI 1.1) and the expected output tokens
// (params.max_tokens, else the host's expectation, else a configured
// default). See README.md.
//
// This file is the plugin's logic and builds on any platform, so it is
// unit-tested on the host; wasm.go (wasip1 only) registers it.
package main

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/purser"
	"github.com/purser-dev/purser/sdk/go/usd"
)

// Version is the plugin's version, reported in its manifest.
const Version = "1.2.0"

const configSchema = `{"type":"object","additionalProperties":false,"properties":{` +
	`"aliases":{"type":"array","items":{"type":"string"},"description":"tool names priced like LLM (matched exactly)"},` +
	`"models":{"type":"object","additionalProperties":{"$ref":"#/$defs/price"},"description":"model name (exact) -> per-token USD prices"},` +
	`"default_price":{"$ref":"#/$defs/price","description":"prices for models not listed; when absent, the host's price for the model (its price table, ABI 1.1), and when the host gives none input 5e-07 ($0.50 per 1M tokens) for a call naming no model, unsupported (the host's own rule) for a named one"},` +
	`"minimum_usd":{"type":"string","description":"smallest estimate, decimal USD; default 0.0001"},` +
	`"default_output_tokens":{"type":"integer","minimum":0,"description":"expected output tokens when params.max_tokens is absent and the host expects none; default 0"},` +
	`"chars_per_token":{"type":"integer","minimum":1,"description":"characters per token; default 4"}},` +
	`"$defs":{"price":{"type":"object","additionalProperties":false,"required":["input"],"properties":{` +
	`"input":{"type":"string","description":"USD per input token, e.g. \"2.5e-06\""},` +
	`"output":{"type":"string","description":"USD per output token; defaults to input"},` +
	`"cache_read":{"type":"string","description":"USD per cached input token; defaults to input"}}}}}`

// Plugin declares the estimator. The tools it prices (LLM plus configured
// aliases) are only known after purser_init, so the Estimator is a
// purser.ToolLister: the host re-reads the manifest after init and routes
// only those tools here. The manifest declared before init lists "*" for
// hosts that do not re-read it; they get "unsupported" for other tools and
// answer them from their cost table.
func Plugin() *purser.Plugin {
	return purser.NewEstimator(purser.Manifest{
		Name:         "llm-tokens",
		Version:      Version,
		Tools:        []string{purser.ToolAny},
		Description:  "Prices LLM calls (tool LLM plus configured aliases) from prompt characters / 4, the model's price (configured, else the host's price table) and expected output tokens; other tools are unsupported.",
		ConfigSchema: []byte(configSchema),
	}, func(cfg []byte) (purser.Estimator, error) { return newEstimator(cfg) })
}

// Price is one model's prices in nano-USD per million tokens (exact for
// LiteLLM-style per-token prices such as "2.5e-06").
type Price struct {
	Input, Output, CacheRead int64
}

// Estimator holds the parsed config.
type Estimator struct {
	tools  map[string]struct{}
	models map[string]Price
	def    Price
	// defConfigured: default_price was given, so it beats the host's price.
	defConfigured bool
	minimum       int64
	defaultOutput int64
	charsPerToken int64
	unsupported   error // built once: the per-call path does not allocate
	// unpriced answers a named model with no price here or from the host.
	unpriced error
	// maxTokensOverflow answers a max_tokens priced past int64 nano-USD.
	maxTokensOverflow error
}

// Defaults.
const (
	DefaultInputPerToken = "5e-07"  // $0.50 per 1M tokens
	DefaultMinimumUSD    = "0.0001" // $0.0001
	DefaultCharsPerToken = 4
)

type priceConfig struct {
	Input     *string `json:"input"`
	Output    *string `json:"output"`
	CacheRead *string `json:"cache_read"`
}

type config struct {
	Aliases             []string               `json:"aliases"`
	Models              map[string]priceConfig `json:"models"`
	DefaultPrice        *priceConfig           `json:"default_price"`
	MinimumUSD          *string                `json:"minimum_usd"`
	DefaultOutputTokens *json.Number           `json:"default_output_tokens"`
	CharsPerToken       *json.Number           `json:"chars_per_token"`
}

func newEstimator(raw []byte) (*Estimator, error) {
	var c config
	if err := purser.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	e := &Estimator{tools: map[string]struct{}{"LLM": {}}, models: make(map[string]Price, len(c.Models)), charsPerToken: DefaultCharsPerToken,
		unsupported:       purser.Unsupported("llm-tokens prices only LLM and its configured aliases"),
		unpriced:          purser.Unsupported("llm-tokens has no price for the model: not in models, no default_price, and the host sent none"),
		maxTokensOverflow: purser.InvalidParam("max_tokens", "too large: the estimate passes the largest amount purser holds ($9223372036.854775807)")}
	if len(c.Aliases) >= abi.ToolsMax {
		return nil, purser.BadConfig("aliases: at most " + strconv.Itoa(abi.ToolsMax-1) + " (the manifest lists LLM and every alias)")
	}
	for i, a := range c.Aliases {
		if a == "" || len(a) > abi.ToolLenMax {
			return nil, purser.BadConfig("aliases[" + strconv.Itoa(i) + "]: tool names are 1.." + strconv.Itoa(abi.ToolLenMax) + " bytes")
		}
		e.tools[a] = struct{}{}
	}
	def := priceConfig{}
	if c.DefaultPrice != nil {
		def, e.defConfigured = *c.DefaultPrice, true
	}
	if def.Input == nil {
		s := DefaultInputPerToken
		def.Input = &s
	}
	var err error
	if e.def, err = parsePrice("default_price", def); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(c.Models))
	for name := range c.Models {
		names = append(names, name)
	}
	sort.Strings(names) // report the first bad model deterministically
	for _, name := range names {
		p := c.Models[name]
		if p.Input == nil {
			return nil, purser.BadConfig("models." + name + ".input: required")
		}
		if e.models[name], err = parsePrice("models."+name, p); err != nil {
			return nil, err
		}
	}
	min := DefaultMinimumUSD
	if c.MinimumUSD != nil {
		min = *c.MinimumUSD
	}
	if e.minimum, err = usd.Parse(min); err != nil {
		return nil, purser.BadConfig("minimum_usd: " + err.Error())
	}
	if e.defaultOutput, err = nonNegInt("default_output_tokens", c.DefaultOutputTokens, 0); err != nil {
		return nil, err
	}
	if e.charsPerToken, err = nonNegInt("chars_per_token", c.CharsPerToken, DefaultCharsPerToken); err != nil {
		return nil, err
	}
	if e.charsPerToken == 0 {
		return nil, purser.BadConfig("chars_per_token: must be at least 1")
	}
	return e, nil
}

func parsePrice(where string, p priceConfig) (Price, error) {
	var out Price
	var err error
	if out.Input, err = usd.ParsePerToken(*p.Input); err != nil {
		return out, purser.BadConfig(where + ".input: " + err.Error())
	}
	out.Output, out.CacheRead = out.Input, out.Input
	if p.Output != nil {
		if out.Output, err = usd.ParsePerToken(*p.Output); err != nil {
			return out, purser.BadConfig(where + ".output: " + err.Error())
		}
	}
	if p.CacheRead != nil {
		if out.CacheRead, err = usd.ParsePerToken(*p.CacheRead); err != nil {
			return out, purser.BadConfig(where + ".cache_read: " + err.Error())
		}
	}
	return out, nil
}

func nonNegInt(where string, n *json.Number, def int64) (int64, error) {
	if n == nil {
		return def, nil
	}
	v, err := strconv.ParseInt(string(*n), 10, 64)
	if err != nil || v < 0 {
		return 0, purser.BadConfig(where + ": want a non-negative integer, got " + string(*n))
	}
	return v, nil
}

// Tools lists the tools this configuration prices, sorted: LLM and the
// aliases. The manifest reports them after purser_init.
func (e *Estimator) Tools() []string {
	out := make([]string, 0, len(e.tools))
	for t := range e.tools {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Estimate prices one call. Tokens: input = prompt_chars / chars_per_token;
// of those, params.cache_read_tokens (capped at input) are priced at the
// cache-read price; output = params.max_tokens, else default_output_tokens.
// The price is the model's entry in models, else default_price when
// configured, else the host's price (hostPriced), else, for a call naming
// no model, $0.50 per 1M input tokens (a named model is unsupported). The sum is computed exactly, a fractional nano rounds up, and the
// result is at least minimum_usd.
func (e *Estimator) Estimate(req *purser.Request) (int64, error) {
	if _, ok := e.tools[string(req.Tool())]; !ok {
		return 0, e.unsupported
	}
	chars, _ := req.PromptChars()
	if chars < 0 {
		return 0, purser.NewError(purser.CodeBadRequest, "negative prompt_chars")
	}
	input := chars / e.charsPerToken
	cached, hasCached, err := cacheReadParam(req)
	if err != nil {
		return 0, err
	}
	model := req.Model()
	price, ok := e.models[string(model)]
	if !ok && !e.defConfigured {
		if llm, ok := req.LLM(); ok {
			return e.hostPriced(req, llm, input, cached, hasCached)
		}
		// The seed price would under-price most named models; the host's
		// built-in rule prices them with its table.
		if len(model) > 0 {
			return 0, e.unpriced
		}
	}
	if !ok {
		price = e.def
	}
	cached = min(cached, input)
	output, fromParams := req.MaxTokens()
	if !fromParams {
		output = e.defaultOutput
	}
	total, ok := cost(input-cached, price.Input, cached, price.CacheRead, output, price.Output)
	if !ok {
		return 0, e.overflow(fromParams)
	}
	return max(total, e.minimum), nil
}

// hostPriced prices with the host's LLM context exactly as the host's own
// rule does (purser.LLMBaseCost is enforcer.LLMContext.BaseCost), so one
// price table gives one answer. The caller's params still win: its
// cache_read_tokens and max_tokens replace the host's expectations, and
// default_output_tokens applies only when the host expects no output.
func (e *Estimator) hostPriced(req *purser.Request, llm purser.LLM, input, cached int64, hasCached bool) (int64, error) {
	if hasCached {
		llm.CacheReadTokens = cached
	}
	output, fromParams := req.MaxTokens()
	switch {
	case fromParams:
		llm.ExpectedOutputTokens = output
	case llm.ExpectedOutputTokens <= 0:
		llm.ExpectedOutputTokens = e.defaultOutput
	}
	total, ok := purser.LLMBaseCost(llm, input)
	if !ok {
		return 0, e.overflow(fromParams)
	}
	return max(total, e.minimum), nil
}

// overflow answers an estimate past int64 nano-USD. Input tokens are
// bounded by the request size, so only the output tokens can get there:
// the caller's max_tokens (its mistake, not a plugin failure) or the
// configured default or host expectation.
func (e *Estimator) overflow(fromParams bool) error {
	if fromParams {
		return e.maxTokensOverflow
	}
	return purser.Internal("the expected output tokens x the output price overflow int64 nano-USD")
}

// cacheReadParam reads params.cache_read_tokens: a non-negative integer,
// or absent (null counts as absent).
func cacheReadParam(req *purser.Request) (n int64, ok bool, err error) {
	v, err := req.Param("cache_read_tokens")
	if err != nil || !v.Exists() || v.IsNull() {
		return 0, false, err
	}
	if n, err = v.Int(); err != nil || n < 0 {
		return 0, false, purser.InvalidParam("cache_read_tokens", "want a non-negative integer")
	}
	return n, true, nil
}

// cost returns ceil((t1*p1 + t2*p2 + t3*p3) / 1e6) exactly, prices being
// nano-USD per million tokens; ok=false when it does not fit an int64
// (usd.SumProductsDivCeil never wraps to a valid-looking 0).
func cost(t1, p1, t2, p2, t3, p3 int64) (int64, bool) {
	return usd.SumProductsDivCeil(1_000_000, [2]int64{t1, p1}, [2]int64{t2, p2}, [2]int64{t3, p3})
}
