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
// plugins/build.sh or `task wasm:build`) in wazero, following the call
// sequence of abi/ABI.md, so the shipped binaries are known to work.

func str(s string) *string { return &s }

func load(t testing.TB, rel, config string) *wasmtest.Guest {
	t.Helper()
	g, err := wasmtest.Load(filepath.FromSlash(rel), str(config))
	if err != nil {
		t.Fatalf("load %s with config %s: %v", rel, config, err)
	}
	t.Cleanup(g.Close)
	return g
}

const llmWasm = "estimators/llm-tokens/llm-tokens.wasm"

const llmConfig = `{"aliases":["chat"],"models":{"gpt-4o":{"input":"2.5e-06","output":"1e-05","cache_read":"1.25e-06"}}}`

func TestLLMTokensWasm(t *testing.T) {
	g := load(t, llmWasm, llmConfig)
	m := g.Manifest
	if m.Name != "llm-tokens" || m.Kind != abi.KindEstimator || !m.Handles("LLM") || len(m.ConfigSchema) == 0 || g.Version != abi.Version {
		t.Fatalf("manifest %+v version %x", m, g.Version)
	}
	p := strings.Repeat("x", 70_000)
	for _, tc := range []struct {
		tool, params string
		want         int64
		code         abi.Code
	}{
		{"LLM", `{"prompt":"` + p + `"}`, 8_750_000, abi.CodeOK},
		{"LLM", `{"prompt":"hi"}`, 100_000, abi.CodeOK},
		{"chat", `{"prompt":"` + p + `"}`, 8_750_000, abi.CodeOK},
		{"LLM", `{"max_tokens":500,"model":"gpt-4o","prompt":"` + p[:4000] + `"}`, 7_500_000, abi.CodeOK},
		{"LLM", `{"cache_read_tokens":400,"model":"gpt-4o","prompt":"` + p[:4000] + `"}`, 2_000_000, abi.CodeOK},
		{"Bash", `{"command":"ls"}`, 0, abi.CodeUnsupported},
		{"LLM", `{"cache_read_tokens":"x","prompt":"hi"}`, 0, abi.CodeBadParams},
		// A bigger request after a smaller one makes the host ask for a new buffer.
		{"LLM", `{"prompt":"` + strings.Repeat(p, 3) + `"}`, 26_250_000, abi.CodeOK},
		{"LLM", `{"prompt":"` + p + `"}`, 8_750_000, abi.CodeOK},
	} {
		got, err := g.Estimate(pursertest.NewCall(tc.tool, tc.params))
		if wasmtest.Code(err) != tc.code || got != tc.want {
			t.Errorf("%s %.60s: got %d, %v; want %d, code %v", tc.tool, tc.params, got, err, tc.want, tc.code)
		}
	}
	if _, err := wasmtest.Load(llmWasm, str(`{"models":{"x":{}}}`)); wasmtest.Code(err) != abi.CodeBadConfig ||
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
