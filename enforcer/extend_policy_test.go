package enforcer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// capPolicy is a Go policy capping what one call may cost.
func capPolicy(limit string) PolicyFunc {
	capN := MustParseUSD(limit)
	return PolicyFunc{PolicyName: "cap", Fn: func(_ context.Context, in PolicyInput) (PolicyResult, error) {
		if in.Call.Tool != "LLM" || in.Call.Account != "a" || in.Call.Params != nil {
			return PolicyResult{}, errors.New("not the hold's call")
		}
		if in.Estimate.Nanos > capN {
			return PolicyResult{Verdict: Deny, Reason: "call of " + in.Estimate.Nanos.String() + " above the cap"}, nil
		}
		return PolicyResult{Verdict: Allow}, nil
	}}
}

// extendEnforcer holds $0.001 as "r" (tool LLM) on account "a" ($10).
func extendEnforcer(t *testing.T, specs ...PolicySpec) *Enforcer {
	t.Helper()
	e := newTestEnforcer(t, Config{Policies: specs})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("10")})
	if _, err := e.Ledger().Reserve(context.Background(), ReserveRequest{ID: "r", Account: "a", Tool: "LLM", Estimate: MustParseUSD("0.001"), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	return e
}

// wantPolicyDeny asserts err is a policy deny whose reason contains why,
// and that the hold did not grow.
func wantPolicyDeny(t *testing.T, e *Enforcer, err error, why string) {
	t.Helper()
	var pde *PolicyDeniedError
	if !errors.As(err, &pde) || !errors.Is(err, ErrPolicyDenied) || pde.Decision.Verdict != Deny ||
		pde.Decision.Layer != LayerPolicy || !strings.Contains(pde.Decision.Reason, why) {
		t.Fatalf("extension: %v (%T), want a policy deny saying %q", err, err, why)
	}
	if r, _ := e.Ledger().Reservation(context.Background(), "r"); r.Extended != 0 {
		t.Errorf("a policy-denied extension grew the hold: %+v", r)
	}
}

func TestExtendRunsPoliciesOnTheGrownHold(t *testing.T) {
	e := extendEnforcer(t, PolicySpec{Policy: capPolicy("0.05")})
	ctx := context.Background()
	_, err := e.Extend(ctx, ExtendRequest{ID: "r", ExtensionID: "x1", Add: MustParseUSD("5")})
	wantPolicyDeny(t, e, err, "call of $5.001 above the cap")
	r, err := e.Extend(ctx, ExtendRequest{ID: "r", ExtensionID: "x1", Add: MustParseUSD("0.049")})
	if err != nil || r.Held() != MustParseUSD("0.05") {
		t.Fatalf("extension to the cap: %+v, %v", r, err)
	}
	_, err = e.Extend(ctx, ExtendRequest{ID: "r", ExtensionID: "x2", Add: 1})
	if !errors.Is(err, ErrPolicyDenied) {
		t.Errorf("one nano past the cap: %v", err)
	}
}

func TestExtendPolicyAskAndFailModes(t *testing.T) {
	ctx := context.Background()
	add := ExtendRequest{ID: "r", ExtensionID: "x1", Add: MustParseUSD("0.01")}
	ask := PolicyFunc{PolicyName: "ask", Fn: func(context.Context, PolicyInput) (PolicyResult, error) {
		return PolicyResult{Verdict: Ask, Reason: "a human decides"}, nil
	}}
	_, err := extendEnforcer(t, PolicySpec{Policy: ask}).Extend(ctx, add)
	if !errors.Is(err, ErrPolicyDenied) || !strings.Contains(err.Error(), "a human decides") || !strings.Contains(err.Error(), "cannot wait") {
		t.Errorf("ask: %v", err)
	}
	broken := PolicyFunc{PolicyName: "broken", Fn: func(context.Context, PolicyInput) (PolicyResult, error) {
		return PolicyResult{}, errors.New("boom")
	}}
	e := extendEnforcer(t, PolicySpec{Policy: broken})
	_, err = e.Extend(ctx, add)
	wantPolicyDeny(t, e, err, "fail-closed")
	if r, err := extendEnforcer(t, PolicySpec{Policy: broken, FailOpen: true}).Extend(ctx, add); err != nil || r.Extended != add.Add {
		t.Errorf("fail-open: %+v, %v", r, err)
	}
}
