package main

import (
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/host"
	"github.com/purser-dev/purser/sdk/go/purser"
	"github.com/purser-dev/purser/sdk/go/pursertest"
)

const testConfig = `{
  "aliases": ["chat", "Completion"],
  "models": {
    "gpt-4o": {"input": "2.5e-06", "output": "1e-05", "cache_read": "1.25e-06"},
    "cheap":  {"input": "1.875e-08"}
  },
  "default_output_tokens": 0
}`

func load(t *testing.T, cfg string) *pursertest.Plugin {
	t.Helper()
	p, err := pursertest.New(Plugin(), cfg)
	if err != nil {
		t.Fatalf("load with %s: %v", cfg, err)
	}
	return p
}

func prompt(n int) string { return strings.Repeat("a", n) }

func TestEstimates(t *testing.T) {
	p := load(t, testConfig)
	for _, tc := range []struct {
		name, tool, params string
		want               int64
	}{
		// The brief's numbers: 70,000 chars at the default $0.50/1M = $0.00875.
		{"70k chars default price", "LLM", `{"prompt":"` + prompt(70_000) + `"}`, 8_750_000},
		{"short prompt hits the $0.0001 minimum", "LLM", `{"prompt":"hello"}`, 100_000},
		{"no prompt at all: minimum", "LLM", `{}`, 100_000},
		{"characters, not bytes", "LLM", `{"prompt":"` + strings.Repeat("é", 70_000) + `"}`, 8_750_000},
		{"messages joined by spaces", "LLM", `{"messages":[{"content":"` + prompt(39_999) + `"},{"content":"` + prompt(40_000) + `"}]}`, 10_000_000},
		// gpt-4o: 4,000 chars = 1,000 tokens x $2.50/1M = $0.0025.
		{"model price", "LLM", `{"model":"gpt-4o","prompt":"` + prompt(4_000) + `"}`, 2_500_000},
		// + 500 output tokens x $10/1M = $0.005.
		{"max_tokens priced at output", "LLM", `{"max_tokens":500,"model":"gpt-4o","prompt":"` + prompt(4_000) + `"}`, 7_500_000},
		// 400 of 1,000 tokens from cache: 600 x 2.5 + 400 x 1.25 = $0.002.
		{"cache-read tokens", "LLM", `{"cache_read_tokens":400,"model":"gpt-4o","prompt":"` + prompt(4_000) + `"}`, 2_000_000},
		{"cache-read capped at input", "LLM", `{"cache_read_tokens":99999,"model":"gpt-4o","prompt":"` + prompt(4_000) + `"}`, 1_250_000},
		// 1e6 tokens x $0.01875/1M = $0.01875 exactly (no float noise).
		{"sub-nano per-token price stays exact", "LLM", `{"model":"cheap","prompt":"` + prompt(4_000_000) + `"}`, 18_750_000},
		{"alias, matched exactly", "chat", `{"prompt":"` + prompt(70_000) + `"}`, 8_750_000},
		{"alias with capitals", "Completion", `{"prompt":"` + prompt(70_000) + `"}`, 8_750_000},
	} {
		got, err := p.Estimate(pursertest.NewCall(tc.tool, tc.params))
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestRoundsFractionalNanoUp(t *testing.T) {
	p := load(t, `{"minimum_usd":"0","default_price":{"input":"1e-09"}}`)
	// 1 token at $0.001/1M = 1,000 nano per 1M tokens -> 0.001 nano -> 1 nano.
	got, err := p.Estimate(pursertest.NewCall("LLM", `{"prompt":"abcd"}`))
	if err != nil || got != 1 {
		t.Fatalf("got %d, %v; want 1", got, err)
	}
}

func TestDefaultOutputTokens(t *testing.T) {
	p := load(t, `{"default_output_tokens":1000,"default_price":{"input":"5e-07","output":"1.5e-06"}}`)
	// 70,000 chars -> $0.00875 input + 1,000 x $1.50/1M = $0.0015 output.
	got, err := p.Estimate(pursertest.NewCall("LLM", `{"prompt":"`+prompt(70_000)+`"}`))
	if err != nil || got != 10_250_000 {
		t.Fatalf("got %d, %v", got, err)
	}
	// An explicit max_tokens replaces the default (0 is a real value).
	got, err = p.Estimate(pursertest.NewCall("LLM", `{"max_tokens":0,"prompt":"`+prompt(70_000)+`"}`))
	if err != nil || got != 8_750_000 {
		t.Fatalf("max_tokens 0: got %d, %v", got, err)
	}
}

func TestErrors(t *testing.T) {
	p := load(t, testConfig)
	for _, tc := range []struct {
		tool, params string
		code         abi.Code
	}{
		{"Bash", `{"command":"ls"}`, abi.CodeUnsupported},
		{"llm", `{}`, abi.CodeUnsupported}, // exact match, case-sensitive
		{"LLM-proxy", `{}`, abi.CodeUnsupported},
		{"LLM", `{"cache_read_tokens":"lots","prompt":"x"}`, abi.CodeBadParams},
		{"LLM", `{"cache_read_tokens":-1,"prompt":"x"}`, abi.CodeBadParams},
		// A named model with no price here and no host price: the host's
		// own rule prices it (with its table), not the $0.50/M seed.
		{"LLM", `{"model":"mystery","prompt":"x"}`, abi.CodeUnsupported},
	} {
		_, err := p.Estimate(pursertest.NewCall(tc.tool, tc.params))
		if pursertest.Code(err) != tc.code {
			t.Errorf("%s %s: err %v, want code %v", tc.tool, tc.params, err, tc.code)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct{ cfg, msg string }{
		{`{"models":{"x":{"output":"1e-06"}}}`, "llm-tokens: models.x.input: required"},
		{`{"models":{"x":{"input":"-1e-06"}}}`, `llm-tokens: models.x.input: invalid amount "-1e-06": negative amounts are not allowed`},
		{`{"models":{"x":{"input":"1e-06","output":"NaN"}}}`, `llm-tokens: models.x.output: invalid amount "NaN": not a finite number`},
		{`{"default_price":{"input":"abc"}}`, `llm-tokens: default_price.input: invalid amount "abc": unexpected character 'a'`},
		{`{"minimum_usd":"1e999"}`, `llm-tokens: minimum_usd: invalid amount "1e999": malformed exponent`},
		{`{"chars_per_token":0}`, "llm-tokens: chars_per_token: must be at least 1"},
		{`{"default_output_tokens":-5}`, "llm-tokens: default_output_tokens: want a non-negative integer, got -5"},
		{`{"aliases":[""]}`, "llm-tokens: aliases[0]: tool names are 1..128 bytes"},
		{`{"models":{"x":{"input":2.5e-06}}}`, `llm-tokens: config: field "models.input": expected string, got JSON number`},
		{`{"price":1}`, `llm-tokens: config: json: unknown field "price"`},
	} {
		_, err := pursertest.New(Plugin(), tc.cfg)
		if pursertest.Code(err) != abi.CodeBadConfig || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("config %s: err %v; want bad_config %q", tc.cfg, err, tc.msg)
		}
	}
}

func TestNoAllocPerCall(t *testing.T) {
	p, err := newEstimator([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	c := pursertest.NewCall("LLM", `{"cache_read_tokens":10,"max_tokens":100,"model":"gpt-4o","prompt":"`+prompt(1000)+`"}`)
	req, err := newRequest(c)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() { _, _ = p.Estimate(req) }); n != 0 {
		t.Fatalf("Estimate allocates %v times per call", n)
	}
}

// Just past 2^64 nano-USD the old 128-bit division wrapped to a valid $0.
func TestCostNeverWrapsToZero(t *testing.T) {
	// 65,535e6 tokens x 281,479,271,743,489 = 1e6 x (2^64-1); one more token
	// at 1 nano per 1M tokens puts the ceiling at 2^64.
	if got, ok := cost(65_535_000_000, 281_479_271_743_489, 1, 1, 0, 0); ok {
		t.Fatalf("cost just past 2^64 nano-USD = %d, ok; want overflow", got)
	}
	if got, ok := cost(4, 250_000, 0, 0, 0, 0); !ok || got != 1 {
		t.Fatalf("cost(4 tokens at 250,000 per 1M) = %d %v, want 1", got, ok)
	}
}

// The manifest read after purser_init lists exactly the tools priced, so
// the host never routes other tools here (issue 11, item 26); the one read
// before init keeps "*" for hosts that do not re-read it.
func TestManifestAfterInitListsPricedTools(t *testing.T) {
	x := purser.NewInstance(Plugin())
	before, err := host.ParseManifest(x.Manifest())
	if err != nil || len(before.Tools) != 1 || before.Tools[0] != abi.ToolAny {
		t.Fatalf("manifest before init: %+v %v; want tools [*]", before, err)
	}
	if res := x.Init([]byte(testConfig)); res != nil {
		t.Fatalf("init: %q", res)
	}
	after, err := host.ParseManifest(x.Manifest())
	if err != nil || strings.Join(after.Tools, ",") != "Completion,LLM,chat" {
		t.Fatalf("manifest after init: %+v %v; want tools Completion,LLM,chat", after, err)
	}
}

// A refused cache_read_tokens names the param the way the host reads it.
func TestInvalidCacheReadTokensNamesTheParam(t *testing.T) {
	p := load(t, testConfig)
	_, err := p.Estimate(pursertest.NewCall("LLM", `{"cache_read_tokens":-1,"prompt":"x"}`))
	if pursertest.Code(err) != abi.CodeBadParams || !strings.Contains(err.Error(), "params.cache_read_tokens: want a non-negative integer") {
		t.Fatalf("err %v; want bad_params naming params.cache_read_tokens", err)
	}
}

// A max_tokens so large the estimate passes int64 nano-USD is the caller's
// mistake (bad_params naming max_tokens), not a plugin failure that five
// such calls would turn into an unhealthy plugin for every tenant.
func TestHugeMaxTokensIsInvalidParams(t *testing.T) {
	p := load(t, testConfig)
	_, err := p.Estimate(pursertest.NewCall("LLM", `{"max_tokens":9007199254740991,"model":"gpt-4o","prompt":"x"}`))
	if pursertest.Code(err) != abi.CodeBadParams || !strings.Contains(err.Error(), "params.max_tokens: too large") {
		t.Fatalf("err %v; want bad_params naming params.max_tokens", err)
	}
	q := load(t, `{"default_output_tokens":9007199254740991,"default_price":{"input":"1e-05"}}`)
	if _, err := q.Estimate(pursertest.NewCall("LLM", `{"prompt":"x"}`)); pursertest.Code(err) != abi.CodeInternal {
		t.Fatalf("overflow from the config: %v; want internal", err)
	}
}
