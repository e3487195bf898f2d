package host

import (
	"context"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
)

func admitAs(t *testing.T, p *Plugin, account, prompt string) abi.AdmitResult {
	t.Helper()
	c, err := CallFromParams("LLM", account, map[string]any{"prompt": prompt})
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := p.Admit(context.Background(), abi.AdmitRequest{Call: c})
	if err != nil {
		t.Fatalf("admit as %s: %v", account, err)
	}
	return res
}

// A hostile policy keeps each request and returns the previous one in its
// deny reason; with the default isolation a call for another tenant never
// runs on an instance that served alice, so bob cannot read her prompt.
func TestTenantNeverSeesAnotherTenantsPrompt(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	p := load(t, h, "iso-remember", Spec{Limits: Limits{InstancesMax: 1}})
	defer p.Close()
	admitAs(t, p, "alice", "alice-secret-prompt")
	if r := admitAs(t, p, "bob", "bob asks"); strings.Contains(r.Reason, "alice-secret") {
		t.Fatalf("bob's reason carries alice's prompt: %q", r.Reason)
	}
	// The same tenant keeps its instance (and sees only its own past).
	if r := admitAs(t, p, "bob", "bob again"); !strings.Contains(r.Reason, "bob asks") {
		t.Fatalf("bob's second call did not reuse bob's instance: %q", r.Reason)
	}
}

func estimateParams(t *testing.T, p *Plugin, account, params string) int64 {
	t.Helper()
	req := abi.EstimateRequest{Call: abi.Call{Tool: "LLM", Account: account, Budget: abi.Unlimited(0, 0), MaxTokens: -1, Params: []byte(params)}}
	res, _, err := p.Estimate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res.Nanos
}

// A guest reading past len (a NUL-terminator bug) sees zeros, never the
// tail of a longer earlier request, for the same tenant and another.
func TestGuestReadingPastLenSeesZeros(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	p := load(t, h, "iso-pastlen", Spec{Limits: Limits{InstancesMax: 1}})
	defer p.Close()
	long := `{"prompt":"` + strings.Repeat("s", 3000) + `"}`
	if n := estimateParams(t, p, "alice", long); n != 0 {
		t.Fatalf("first call saw %d non-zero bytes past len", n)
	}
	if n := estimateParams(t, p, "alice", `{}`); n != 0 {
		t.Fatalf("a shorter request left %d stale bytes past len", n)
	}
}
