package host

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
)

// asExample is a committed AssemblyScript example of sdk/assemblyscript
// (built by scripts/wasm-build.sh with the pinned asc; wasm.sum checks it).
func asExample(name string) string {
	return filepath.Join("..", "sdk", "assemblyscript", "examples", name, name+".wasm")
}

// TestAssemblyScriptSDKEstimator: the llm-cost example loads in the real
// host (metered, smoke-called, asc's env.abort replaced by the SDK) and
// prices an LLM call with the host's LLM context to the nano.
func TestAssemblyScriptSDKEstimator(t *testing.T) {
	h, logs := newTestHost(t, Config{})
	p := load(t, h, "llm-cost", Spec{File: asExample("llm-cost"), Config: json.RawMessage(`{"chars_per_token":4}`)})
	defer p.Close()
	if m := p.Manifest(); m.Name != "llm-cost" || m.Kind != abi.KindEstimator || m.ABI != "1.1" {
		t.Fatalf("manifest %+v", m)
	}
	call, err := CallFromParams("LLM", "team", map[string]any{"model": "m", "prompt": string(make([]byte, 400)), "max_tokens": 1000})
	if err != nil {
		t.Fatal(err)
	}
	call.LLM = &abi.LLMContext{Price: abi.LLMPrice{Input: 3_000_000_000, Output: 15_000_000_000, CacheWrite: 3_750_000_000}}
	call.LLMPriceSource = "litellm:m"
	// 100 prompt tokens at the cache-write price + 1000 output tokens.
	if got := estimate(t, p, call); got != 375_000+15_000_000 {
		t.Fatalf("estimate %d; want %d", got, 375_000+15_000_000)
	}
	call.LLM = nil
	if _, _, err := p.Estimate(context.Background(), abi.EstimateRequest{Call: call}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("without an LLM context: %v; want ErrUnsupported", err)
	}
	if !strings.Contains(logs.String(), "llm-cost: 4 chars per token") {
		t.Errorf("the init log line did not reach the plugin's logger:\n%s", logs.String())
	}
}

// TestAssemblyScriptSDKPolicy: the budget-guard example's verdicts and
// reasons through the host, and its config refusal naming the field.
func TestAssemblyScriptSDKPolicy(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	p := load(t, h, "budget-guard", Spec{File: asExample("budget-guard"), Config: json.RawMessage(`{"max_usd":"1","ask_share_percent":25}`)})
	defer p.Close()
	call, err := CallFromParams("Bash", "team", map[string]any{"command": "ls"})
	if err != nil {
		t.Fatal(err)
	}
	call.Budget = abi.Budget{LimitNanos: 1_000_000_000, CommittedNanos: 600_000_000, RemainingNanos: 400_000_000}
	for _, tc := range []struct {
		estimate int64
		want     abi.Verdict
		reason   string
	}{
		{1_500_000_000, abi.Deny, "Operation cost $1.50 exceeds limit $1.00"},
		{150_000_000, abi.Ask, "Operation cost $0.15 is more than 25% of the $0.40 team has left"},
		{100_000_000, abi.Allow, ""}, // exactly 25%
	} {
		got, _, err := p.Admit(context.Background(), abi.AdmitRequest{Call: call, EstimateNanos: tc.estimate,
			EstimateSource: abi.SourceTable, EstimateSourceLabel: "table"})
		if err != nil {
			t.Fatal(err)
		}
		if got.Verdict != tc.want || got.Reason != tc.reason {
			t.Errorf("estimate %d: %v %q; want %v %q", tc.estimate, got.Verdict, got.Reason, tc.want, tc.reason)
		}
	}
	_, err = h.Load(context.Background(), Spec{File: asExample("budget-guard"), Config: json.RawMessage(`{"max_usd":"-1"}`)})
	var ce *CallError
	if !errors.As(err, &ce) || abi.Code(ce.Code) != abi.CodeBadConfig ||
		ce.Message != `budget-guard: max_usd: invalid amount "-1": negative amounts are not allowed` {
		t.Fatalf("bad config: %v", err)
	}
}
