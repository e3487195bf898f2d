package plugins_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/plugins/internal/wasmtest"
	"github.com/purser-dev/purser/sdk/go/pursertest"
)

// These tests load the committed .wasm files (rebuild them with
// scripts/wasm-build.sh, i.e. `task wasm:build`) in wazero, following the call
// sequence of abi/ABI.md, so the shipped binaries are known to work.

// loader shares compiled modules between tests (Go guests compile slowly).
var loader = wasmtest.NewLoader()

func str(s string) *string { return &s }

func load(t testing.TB, rel, config string) *wasmtest.Guest {
	t.Helper()
	g, err := loader.Load(filepath.FromSlash(rel), str(config))
	if err != nil {
		t.Fatalf("load %s with config %s: %v", rel, config, err)
	}
	t.Cleanup(g.Close)
	return g
}

const llmWasm = "estimators/llm-tokens/llm-tokens.wasm"

const llmConfig = `{"aliases":["chat"],"models":{"gpt-4o":{"input":"2.5e-06","output":"1e-05","cache_read":"1.25e-06"}}}`

// llmCases are llm-tokens requests in order (a bigger request after a
// smaller one makes the host ask for a new buffer) with their answers;
// metered_test.go runs them through the host too.
var llmCases = func() []estimateCase {
	p := strings.Repeat("x", 70_000)
	return []estimateCase{
		{"LLM", `{"prompt":"` + p + `"}`, 8_750_000, abi.CodeOK},
		{"LLM", `{"prompt":"hi"}`, 100_000, abi.CodeOK},
		{"chat", `{"prompt":"` + p + `"}`, 8_750_000, abi.CodeOK},
		{"LLM", `{"max_tokens":500,"model":"gpt-4o","prompt":"` + p[:4000] + `"}`, 7_500_000, abi.CodeOK},
		{"LLM", `{"cache_read_tokens":400,"model":"gpt-4o","prompt":"` + p[:4000] + `"}`, 2_000_000, abi.CodeOK},
		{"Bash", `{"command":"ls"}`, 0, abi.CodeUnsupported},
		{"LLM", `{"cache_read_tokens":"x","prompt":"hi"}`, 0, abi.CodeBadParams},
		{"LLM", `{"prompt":"` + strings.Repeat(p, 3) + `"}`, 26_250_000, abi.CodeOK},
		{"LLM", `{"prompt":"` + p + `"}`, 8_750_000, abi.CodeOK},
	}
}()

// estimateCase is one estimator request and its expected answer.
type estimateCase struct {
	tool, params string
	want         int64
	code         abi.Code
}

func TestLLMTokensWasm(t *testing.T) {
	g := load(t, llmWasm, llmConfig)
	m := g.Manifest
	if m.Name != "llm-tokens" || m.Kind != abi.KindEstimator || !m.Handles("LLM") || len(m.ConfigSchema) == 0 || g.Version != abi.Version {
		t.Fatalf("manifest %+v version %x", m, g.Version)
	}
	// After purser_init it lists exactly the tools it prices (issue 11, item 26).
	if tools := strings.Join(m.Tools, ","); tools != "LLM,chat" {
		t.Errorf("manifest tools after init %q; want LLM,chat", tools)
	}
	for _, tc := range llmCases {
		got, err := g.Estimate(pursertest.NewCall(tc.tool, tc.params))
		if wasmtest.Code(err) != tc.code || got != tc.want {
			t.Errorf("%s %.60s: got %d, %v; want %d, code %v", tc.tool, tc.params, got, err, tc.want, tc.code)
		}
	}
	if _, err := loader.Load(llmWasm, str(`{"models":{"x":{}}}`)); wasmtest.Code(err) != abi.CodeBadConfig ||
		!strings.Contains(err.Error(), "models.x.input: required") {
		t.Errorf("bad config: %v", err)
	}
}

func BenchmarkLLMTokensWasm1KBPrompt(b *testing.B) {
	g := load(b, llmWasm, llmConfig)
	c := pursertest.NewCall("LLM", `{"max_tokens":256,"model":"gpt-4o","prompt":"`+strings.Repeat("x", 1024)+`"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Estimate(c); err != nil {
			b.Fatal(err)
		}
	}
}

const toolRulesWasm = "policies/tool-rules/tool-rules.wasm"

const toolRulesConfig = `{"deny":["Delete"],"rules":[
  {"name":"no-rm-rf","action":"deny","tool":"Bash","params":"rm\\s+-rf","reason":"rm -rf is never allowed"},
  {"name":"git-read","action":"allow","tool":"Bash","params":"\"command\":\"git (status|diff)","priority":10}]}`

// toolRulesCases run against toolRulesConfig (here and in metered_test.go).
var toolRulesCases = []admitCase{
	{tool: "Read", params: `{"path":"a"}`, est: 1, want: abi.Allow},
	{tool: "Bash", params: `{"command":"git status"}`, est: 1, want: abi.Allow},
	{tool: "Bash", params: `{"command":"git status; rm -rf /"}`, est: 1, want: abi.Deny, reason: "rm -rf is never allowed"},
	{tool: "Bash", params: `{"command":"make"}`, est: 1, want: abi.Ask, reason: "Mode default requires approval for Bash"},
	{tool: "Delete", params: `{"path":"x"}`, est: 1, want: abi.Deny, reason: "Tool Delete is on the tool-rules deny list"},
}

// admitCase is one admission request (limit < 0: unlimited) and its
// expected verdict.
type admitCase struct {
	tool, params                   string
	limit, committed, pending, est int64
	want                           abi.Verdict
	reason                         string
}

func (tc admitCase) request() abi.AdmitRequest {
	c := pursertest.NewCall(tc.tool, tc.params)
	if tc.limit != 0 {
		c = pursertest.WithBudget(c, tc.limit, tc.committed, tc.pending)
	}
	return abi.AdmitRequest{Call: c, EstimateNanos: tc.est}
}

func TestToolRulesWasm(t *testing.T) {
	g := load(t, toolRulesWasm, toolRulesConfig)
	if g.Manifest.Name != "tool-rules" || g.Manifest.Kind != abi.KindPolicy {
		t.Fatalf("manifest %+v", g.Manifest)
	}
	for _, tc := range toolRulesCases {
		got, err := g.Admit(tc.request())
		if err != nil || got.Verdict != tc.want || got.Reason != tc.reason {
			t.Errorf("%s %s: %v %q %v; want %v %q", tc.tool, tc.params, got.Verdict, got.Reason, err, tc.want, tc.reason)
		}
	}
	g = load(t, toolRulesWasm, `{"mode":"plan"}`)
	if got, err := g.Admit(abi.AdmitRequest{Call: pursertest.NewCall("Write", `{}`)}); err != nil || got.Verdict != abi.Deny {
		t.Errorf("plan mode Write: %v %v", got, err)
	}
	_, err := loader.Load(toolRulesWasm, str(`{"rules":[{"action":"deny","params":"("}]}`))
	if wasmtest.Code(err) != abi.CodeBadConfig || !strings.Contains(err.Error(), "rules[0].params: error parsing regexp") {
		t.Errorf("bad regex: %v", err)
	}
}

func BenchmarkToolRulesWasm(b *testing.B) {
	g := load(b, toolRulesWasm, toolRulesConfig)
	r := abi.AdmitRequest{Call: pursertest.NewCall("Bash", `{"command":"git diff HEAD~1 -- src/","description":"show the last change"}`), EstimateNanos: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Admit(r); err != nil {
			b.Fatal(err)
		}
	}
}

const utilizationWasm = "policies/ask-above-utilization/ask-above-utilization.wasm"

const dollar = 1_000_000_000

// utilizationCases run against {"ask_above_pct":80}.
var utilizationCases = []admitCase{
	{tool: "Bash", params: `{"command":"ls"}`, limit: -1, committed: 100 * dollar, est: dollar, want: abi.Allow},
	{tool: "Bash", params: `{"command":"ls"}`, limit: 10 * dollar, committed: 5 * dollar, pending: 2 * dollar, est: dollar, want: abi.Allow},
	{tool: "Bash", params: `{"command":"ls"}`, limit: 10 * dollar, committed: 5 * dollar, pending: 2 * dollar, est: 1_550_000_000, want: abi.Ask,
		reason: "Utilization would reach 85.5% of the $10.00 limit (committed $5.00 + pending $2.00 + this call $1.55 = $8.55), above the 80% approval threshold"},
}

const utilizationConfig = `{"ask_above_pct":80}`

func TestAskAboveUtilizationWasm(t *testing.T) {
	g := load(t, utilizationWasm, utilizationConfig)
	if g.Manifest.Name != "ask-above-utilization" || g.Manifest.Kind != abi.KindPolicy {
		t.Fatalf("manifest %+v", g.Manifest)
	}
	for _, tc := range utilizationCases {
		got, err := g.Admit(tc.request())
		if err != nil || got.Verdict != tc.want || got.Reason != tc.reason {
			t.Errorf("%+v: %v %q %v", tc, got.Verdict, got.Reason, err)
		}
	}
}

func BenchmarkAskAboveUtilizationWasm(b *testing.B) {
	g := load(b, utilizationWasm, `{}`)
	c := pursertest.WithBudget(pursertest.NewCall("Bash", `{"command":"ls"}`), 10_000_000_000, 9_000_000_000, 0)
	r := abi.AdmitRequest{Call: c, EstimateNanos: 1_000_000}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Admit(r); err != nil {
			b.Fatal(err)
		}
	}
}
