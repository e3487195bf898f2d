package host

import (
	"context"
	"strings"
	"sync"
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
	// One instance kept: bob's call must replace alice's, not reuse it.
	p := load(t, h, "iso-remember", Spec{Limits: Limits{InstancesMax: 1, Containment: Containment{TenantInstancesMin: 1}}})
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

// Hammer: many goroutines for four tenants share a two-instance pool, so
// instances are replaced on every tenant switch; no call ever sees a
// request of another tenant, and no instance leaks.
func TestTenantIsolationUnderConcurrency(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	p := load(t, h, "iso-remember", Spec{Limits: Limits{InstancesMax: 2, Containment: Containment{TenantInstancesMin: 2}}})
	defer p.Close()
	tenants := []string{"tenant-a", "tenant-b", "tenant-c", "tenant-d"}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				me := tenants[(g+i)%len(tenants)]
				c, _ := CallFromParams("LLM", me, map[string]any{"prompt": "secret of " + me})
				res, _, err := p.Admit(context.Background(), abi.AdmitRequest{Call: c})
				if err != nil {
					errs <- err.Error()
					return
				}
				for _, other := range tenants {
					if other != me && strings.Contains(res.Reason, other) {
						errs <- me + " saw " + other + ": " + res.Reason
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// A guest's error message reaches only the caller of that call: the
// plugin's LastError (shown by GET /v1/plugins to every agent) and the
// unhealthy error other callers get name the kind only, not the text.
func TestGuestErrorTextStaysWithItsCaller(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	p := load(t, h, "iso-pastlen", Spec{Limits: Limits{FailuresBeforeUnhealthy: 1}})
	defer p.Close()
	const secret = "alice-secret"
	p.fail(p.cur.Load(), opEstimate, ErrGuestError, 1, "cannot price "+secret)
	if hl := p.Health(); strings.Contains(hl.LastError, secret) || !strings.Contains(hl.LastError, "plugin returned an error") {
		t.Fatalf("LastError = %q", hl.LastError)
	}
	_, _, err := p.Estimate(context.Background(), abi.EstimateRequest{Call: abi.Call{Tool: "x", Account: "bob", MaxTokens: -1}})
	if !errorsIs(err, ErrUnhealthy) || strings.Contains(err.Error(), secret) {
		t.Fatalf("bob's error: %v", err)
	}
}

// With a full pool, a new tenant replaces the least recently used idle
// instance of another tenant, so the tenants in use keep theirs.
func TestTenantSwitchReplacesLeastRecentlyUsed(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	p := load(t, h, "iso-remember", Spec{Limits: Limits{InstancesMax: 2, Containment: Containment{TenantInstancesMin: 1}}})
	defer p.Close()
	admitAs(t, p, "a", "a1")
	admitAs(t, p, "b", "b1") // the pool has room: b gets a new instance
	admitAs(t, p, "a", "a2") // a used last
	admitAs(t, p, "c", "c1") // full: replaces b's (least recently used)
	if r := admitAs(t, p, "a", "a3"); !strings.Contains(r.Reason, "a2") {
		t.Fatalf("a lost its instance: %q", r.Reason)
	}
	if r := admitAs(t, p, "b", "b2"); strings.Contains(r.Reason, "b1") {
		t.Fatalf("b kept its instance although it was the least recently used: %q", r.Reason)
	}
}

// A tenant-isolated plugin keeps up to TenantInstancesMin instances,
// more than run at once (InstancesMax), so tenants that alternate keep
// their warm instance instead of paying an instance creation per switch.
func TestTenantsKeepWarmInstancesBeyondConcurrency(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	p := load(t, h, "iso-remember", Spec{Limits: Limits{InstancesMax: 1, Containment: Containment{TenantInstancesMin: 3}}})
	defer p.Close()
	for i := 0; i < 3; i++ {
		for _, who := range []string{"a", "b", "c"} {
			r := admitAs(t, p, who, who+"-call")
			if i > 0 && !strings.Contains(r.Reason, who+"-call") {
				t.Fatalf("%s lost its warm instance: %q", who, r.Reason)
			}
		}
	}
	if n := p.Stats().InstancesCreated; n != 3 {
		t.Fatalf("%d instances created for 3 tenants, want 3 (no switch cost)", n)
	}
}
