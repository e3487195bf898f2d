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

// TestHoldExtendRetryAfterSettle: extension x0 was granted (its reply
// lost) and the hold settled meanwhile; the retry is not a grant.
func TestHoldExtendRetryAfterSettle(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	_, err := e.Execute(ctx, "a", "Bash", nil, func(ctx context.Context) (any, error) {
		h, _ := HoldFrom(ctx)
		if _, err := e.Extend(ctx, ExtendRequest{ID: h.ID(), ExtensionID: h.ID() + "/x0", Add: 5}); err != nil {
			return nil, err
		}
		if _, err := e.Ledger().Release(ctx, h.ID()); err != nil {
			return nil, err
		}
		r, err := h.Extend(ctx, 5)
		if !errors.Is(err, ErrReservationSettled) || !strings.Contains(err.Error(), "released") {
			t.Errorf("retry after the hold settled: %+v, %v; want ErrReservationSettled", r, err)
		}
		return billed{1}, nil
	}, WithReservationID("gone"))
	if !errors.Is(err, ErrReservationSettled) {
		t.Errorf("Execute whose hold was released under it: %v, want ErrReservationSettled", err)
	}
}

// TestReplayedCommitTeachesNothing: a commit retried on another host
// (an enforcer that did not see the first) is Replayed and teaches
// calibration nothing; the first commit taught the ledger's host.
func TestReplayedCommitTeachesNothing(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	ctx := context.Background()
	params := llmParams("gpt-4o", 4000)
	settled := c.teach("org/s", params, MustParseUSD("0.01"), nil)
	other, err := New(c.e.Ledger(), Config{Clock: c.clock})
	if err != nil {
		t.Fatal(err)
	}
	actual := MustParseUSD("0.01")
	r, err := other.Commit(ctx, CommitRequest{ID: settled.ID, Actual: &actual, Source: CostActual})
	if err != nil || !r.Replayed {
		t.Fatalf("retried commit: %+v, %v", r, err)
	}
	est, err := other.Estimate(ctx, Call{Account: "org/s", Tool: "LLM", Params: params})
	if err != nil || est.Explain == nil || est.Explain.Samples != 0 {
		t.Errorf("after a replayed commit the other host has %+v, %v; want no samples", est.Explain, err)
	}
}

// TestExtendRetryIsNotReevaluated: a retried extension (known id) is the
// ledger's to answer; the policies already admitted it, and re-running
// them on a hold that includes it would deny what was granted.
func TestExtendRetryIsNotReevaluated(t *testing.T) {
	e := extendEnforcer(t, PolicySpec{Policy: capPolicy("0.05")})
	ctx := context.Background()
	req := ExtendRequest{ID: "r", ExtensionID: "x1", Add: MustParseUSD("0.04")}
	if _, err := e.Extend(ctx, req); err != nil {
		t.Fatal(err)
	}
	r, err := e.Extend(ctx, req)
	if err != nil || !r.Replayed || r.Held() != MustParseUSD("0.041") {
		t.Errorf("retried extension: %+v, %v; want the first answer again", r, err)
	}
}
