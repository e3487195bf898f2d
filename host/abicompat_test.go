package host

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
)

// TestV10GuestsRunUnchangedOnV11Requests: guests built for ABI 1.0 (the
// Rust llmchars, which finds the params string by header_len and walks the
// strings; the WAT estimator and policy, which read header fields) load on
// this 1.1 host and give the same answers whether or not the request
// carries the v1.1 LLM context (longer header, seventh string).
func TestV10GuestsRunUnchangedOnV11Requests(t *testing.T) {
	if abi.VersionMinor < 1 {
		t.Fatal("this test is about a 1.0 guest on a newer host")
	}
	h, _ := newTestHost(t, Config{})
	llm := &abi.LLMContext{Price: abi.LLMPrice{Input: 5_000_000_000, Output: 25_000_000_000, CacheRead: 500_000_000, CacheWrite: 6_250_000_000},
		PriceFallback: true, ExpectedOutputTokens: 4_096, CacheReadTokens: 1_000}
	for _, tc := range []struct{ name, file string }{
		{"llmchars", filepath.Join("..", "testplugins", "rust", "llmchars", "llmchars.wasm")},
		{"estimator", wasmPath("estimator")},
		{"policy", wasmPath("policy")},
	} {
		p := load(t, h, tc.name, Spec{File: tc.file})
		if v := p.cur.Load().abiVersion; v != abi.PackVersion(1, 0) {
			t.Fatalf("%s declares %s; want a 1.0 guest", tc.name, abi.VersionString(v))
		}
		for _, prompt := range []string{"hi", strings.Repeat("abcdefghij", 1000)} {
			call, err := CallFromParams("LLM", "acct", map[string]any{"model": "claude-opus-4-5", "prompt": prompt})
			if err != nil {
				t.Fatal(err)
			}
			withLLM := call
			withLLM.LLM, withLLM.LLMPriceSource = llm, "fallback:dearest-anthropic:claude-opus-4-5"
			if tc.name == "policy" {
				want := admit(t, p, call)
				if got := admit(t, p, withLLM); got != want {
					t.Errorf("%s: with the LLM context %+v; without %+v", tc.name, got, want)
				}
				continue
			}
			want := estimate(t, p, call)
			if got := estimate(t, p, withLLM); got != want || want <= 0 {
				t.Errorf("%s prompt %d chars: with the LLM context %d; without %d", tc.name, len(prompt), got, want)
			}
		}
		p.Close()
	}
}

func estimate(t *testing.T, p *Plugin, c abi.Call) int64 {
	t.Helper()
	res, _, err := p.Estimate(context.Background(), abi.EstimateRequest{Call: c})
	if err != nil {
		t.Fatal(err)
	}
	return res.Nanos
}

func admit(t *testing.T, p *Plugin, c abi.Call) abi.AdmitResult {
	t.Helper()
	c.Budget = abi.Budget{LimitNanos: 1_000, RemainingNanos: 1_000}
	res, _, err := p.Admit(context.Background(), abi.AdmitRequest{Call: c, EstimateNanos: 2_000, EstimateSource: abi.SourceLLM, EstimateSourceLabel: "llm"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != abi.Deny {
		t.Fatalf("policy: %+v; want the deny it gives when the estimate passes remaining", res)
	}
	return res
}
