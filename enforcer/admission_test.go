package enforcer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func usdPtr(s string) *Nanos { n := MustParseUSD(s); return &n }

func mustAccount(t testing.TB, e *Enforcer, spec AccountSpec) {
	t.Helper()
	if _, err := e.Ledger().CreateAccount(context.Background(), spec); err != nil {
		t.Fatalf("create %q: %v", spec.ID, err)
	}
}

func TestBudgetDenyReadsLikeTheBrief(t *testing.T) {
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("0.05")})
	d, err := e.Check(context.Background(), Call{Account: "a", Tool: "Agent"})
	if err != nil {
		t.Fatal(err)
	}
	want := "Insufficient budget: estimated $0.10 but only $0.05 remaining"
	if d.Verdict != Deny || d.Layer != LayerBudget || d.Reason != want || d.Remaining != MustParseUSD("0.05") {
		t.Errorf("got %v %q (layer %q, remaining %s); want deny %q", d.Verdict, d.Reason, d.Layer, d.Remaining, want)
	}
}

func TestInclusiveLimit(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{Table: CostTable{"Eight": USD(8, 0), "Two": USD(2, 0), "TwoOhOne": MustParseUSD("2.01")}})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("10")})
	run := func(context.Context) (any, error) { return nil, nil }
	for _, tool := range []string{"Eight", "Two"} {
		res, err := e.Execute(ctx, "a", tool, nil, run)
		if err != nil || !res.Decision.Allowed() {
			t.Fatalf("%s: %+v %v; want allowed ($8 + $2 <= $10)", tool, res.Decision, err)
		}
	}
	mustAccount(t, e, AccountSpec{ID: "b", Limit: usdPtr("10")})
	if res, _ := e.Execute(ctx, "b", "Eight", nil, run); !res.Decision.Allowed() {
		t.Fatal("$8 on $10 denied")
	}
	res, err := e.Execute(ctx, "b", "TwoOhOne", nil, run)
	if err != nil || res.Decision.Verdict != Deny || res.Decision.Reason != "Insufficient budget: estimated $2.01 but only $2.00 remaining" {
		t.Errorf("$8 + $2.01 on $10: %+v %v; want deny", res.Decision, err)
	}
}

func TestMaxCostPerCallPolicy(t *testing.T) {
	e := newTestEnforcer(t, Config{Table: CostTable{"Big": MustParseUSD("0.15")},
		Policies: []PolicySpec{{Policy: MaxCostPerCall{Limit: MustParseUSD("0.10")}}}})
	mustAccount(t, e, AccountSpec{ID: "a"})
	d, err := e.Check(context.Background(), Call{Account: "a", Tool: "Big"})
	if err != nil || d.Verdict != Deny || d.Reason != "Operation cost $0.15 exceeds limit $0.10" || d.Policy != "max-cost-per-call" {
		t.Errorf("got %+v, %v", d, err)
	}
}

func verdictPolicy(name string, v Verdict, err error) PolicySpec {
	return PolicySpec{Policy: PolicyFunc{PolicyName: name, Fn: func(context.Context, PolicyInput) (PolicyResult, error) {
		return PolicyResult{Verdict: v, Reason: name + " says " + v.String()}, err
	}}}
}

func TestPolicyPrecedenceAndFailModes(t *testing.T) {
	boom := errors.New("boom")
	failOpen := verdictPolicy("flaky-open", Allow, boom)
	failOpen.FailOpen = true
	cases := []struct {
		name     string
		policies []PolicySpec
		verdict  Verdict
		decider  string
	}{
		{"all allow", []PolicySpec{verdictPolicy("p1", Allow, nil), verdictPolicy("p2", Allow, nil)}, Allow, ""},
		{"ask beats allow", []PolicySpec{verdictPolicy("p1", Allow, nil), verdictPolicy("p2", Ask, nil)}, Ask, "p2"},
		{"deny beats ask", []PolicySpec{verdictPolicy("p1", Ask, nil), verdictPolicy("p2", Deny, nil)}, Deny, "p2"},
		{"fail closed", []PolicySpec{verdictPolicy("flaky", Allow, boom)}, Deny, "flaky"},
		{"fail open", []PolicySpec{failOpen, verdictPolicy("p2", Allow, nil)}, Allow, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEnforcer(t, Config{Policies: c.policies})
			mustAccount(t, e, AccountSpec{ID: "a"})
			d, err := e.Check(context.Background(), Call{Account: "a", Tool: "Read"})
			if err != nil || d.Verdict != c.verdict || d.Policy != c.decider {
				t.Fatalf("got %v by %q (%q), %v; want %v by %q", d.Verdict, d.Policy, d.Reason, err, c.verdict, c.decider)
			}
			for _, o := range d.Policies {
				if o.Err != nil && o.FailOpen != strings.Contains(o.Policy, "open") {
					t.Errorf("outcome %+v does not record its fail mode", o)
				}
			}
		})
	}
}

func TestBudgetDenySkipsPoliciesAndApproval(t *testing.T) {
	called := false
	p := PolicySpec{Policy: PolicyFunc{PolicyName: "spy", Fn: func(context.Context, PolicyInput) (PolicyResult, error) {
		called = true
		return PolicyResult{Verdict: Ask}, nil
	}}}
	e := newTestEnforcer(t, Config{Policies: []PolicySpec{p}})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("0.0001")})
	d, _ := e.Check(context.Background(), Call{Account: "a", Tool: "Bash"})
	if d.Verdict != Deny || d.Layer != LayerBudget || called {
		t.Errorf("budget deny must come first and skip policies: %+v called=%v", d, called)
	}
}

func TestPolicySeesBudgetAndEstimate(t *testing.T) {
	var got PolicyInput
	p := PolicySpec{Policy: PolicyFunc{PolicyName: "spy", Fn: func(_ context.Context, in PolicyInput) (PolicyResult, error) {
		got = in
		return PolicyResult{Verdict: Allow}, nil
	}}}
	e := newTestEnforcer(t, Config{Policies: []PolicySpec{p}})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1"), Labels: map[string]string{"tier": "LOW"}})
	if _, err := e.Check(context.Background(), Call{Account: "a", Tool: "Bash", Params: map[string]any{"command": "ls"}}); err != nil {
		t.Fatal(err)
	}
	if got.Estimate.Nanos != MustParseUSD("0.01") || got.Budget.ID != "a" || got.Budget.Labels["tier"] != "LOW" || got.Call.Params["command"] != "ls" {
		t.Errorf("policy input = %+v", got)
	}
}

func askPolicy() PolicySpec { return verdictPolicy("careful", Ask, nil) }

func TestApproverApprovesThenBudgetIsRechecked(t *testing.T) {
	ctx := context.Background()
	var e *Enforcer
	approver := ApproverFunc(func(ctx context.Context, req ApprovalRequest) (bool, string, error) {
		// While the human thinks, someone lowers the limit.
		if req.Call.Account == "shrinks" {
			if _, err := e.Ledger().SetLimit(ctx, "shrinks", usdPtr("0.001")); err != nil {
				return false, "", err
			}
		}
		return true, "ok by test", nil
	})
	e = newTestEnforcer(t, Config{Policies: []PolicySpec{askPolicy()}, Approver: approver})
	mustAccount(t, e, AccountSpec{ID: "steady", Limit: usdPtr("1")})
	mustAccount(t, e, AccountSpec{ID: "shrinks", Limit: usdPtr("1")})
	ran := 0
	run := func(context.Context) (any, error) { ran++; return "done", nil }

	res, err := e.Execute(ctx, "steady", "Bash", nil, run)
	if err != nil || !res.Decision.Allowed() || res.Value != "done" || res.Decision.ApprovalID == "" {
		t.Fatalf("approved call: %+v %v", res, err)
	}
	if req, _ := e.Approvals().Get(res.Decision.ApprovalID); req.State != ApprovalApproved || !req.Used || req.Note != "ok by test" {
		t.Errorf("approval record: %+v", req)
	}
	res, err = e.Execute(ctx, "shrinks", "Bash", nil, run)
	if err != nil || res.Decision.Verdict != Deny || res.Decision.Layer != LayerBudget || ran != 1 {
		t.Fatalf("approved but budget shrank: %+v %v ran=%d; want a budget deny", res.Decision, err, ran)
	}
}

func TestApproverDeniesOrFails(t *testing.T) {
	for name, ap := range map[string]ApproverFunc{
		"deny": func(context.Context, ApprovalRequest) (bool, string, error) { return false, "no", nil },
		"fail": func(context.Context, ApprovalRequest) (bool, string, error) {
			return true, "", errors.New("pager down")
		},
	} {
		e := newTestEnforcer(t, Config{Policies: []PolicySpec{askPolicy()}, Approver: ap})
		mustAccount(t, e, AccountSpec{ID: "a"})
		res, err := e.Execute(context.Background(), "a", "Bash", nil, func(context.Context) (any, error) {
			t.Fatal("tool ran after a refused approval")
			return nil, nil
		})
		if err != nil || res.Decision.Verdict != Deny || res.Decision.Layer != LayerApproval {
			t.Errorf("%s: %+v %v", name, res.Decision, err)
		}
	}
}

func TestApprovalQueueWaitAndExpiry(t *testing.T) {
	clock := &stepClock{t: time.Unix(1_700_000_000, 0)}
	e := newTestEnforcer(t, Config{Policies: []PolicySpec{askPolicy()}, Clock: clock, ApprovalTTL: time.Minute, ApprovalPoll: time.Millisecond})
	mustAccount(t, e, AccountSpec{ID: "a"})
	ctx := context.Background()

	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() { // the "server": approves the first pending request it sees
		defer wg.Done()
		for {
			if p := e.Approvals().List(ApprovalPending); len(p) == 1 {
				if _, err := e.Approvals().Approve(p[0].ID, "yes"); err != nil {
					t.Error(err)
				}
				return
			}
			select {
			case <-done: // Execute returned without asking: stop looking
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	res, err := e.Execute(ctx, "a", "Bash", nil, func(context.Context) (any, error) { return 1, nil })
	close(done)
	wg.Wait()
	if err != nil || !res.Decision.Allowed() {
		t.Fatalf("queued approval: %+v %v", res.Decision, err)
	}

	// Nobody answers: the request expires on the injected clock and denies.
	done2 := make(chan struct{})
	go func() {
		for len(e.Approvals().List(ApprovalPending)) == 0 {
			select {
			case <-done2:
				return
			case <-time.After(time.Millisecond):
			}
		}
		clock.advance(2 * time.Minute)
	}()
	res, err = e.Execute(ctx, "a", "Bash", nil, func(context.Context) (any, error) { return 1, nil })
	close(done2)
	if err != nil || res.Decision.Verdict != Deny || !strings.Contains(res.Decision.Reason, "expired") {
		t.Fatalf("expired approval: %+v %v", res.Decision, err)
	}
	if _, err := e.Approvals().Approve(res.Decision.ApprovalID, "too late"); !errors.Is(err, ErrApprovalDecided) {
		t.Errorf("approving an expired request: %v", err)
	}
}

func TestReserveWithApprovalID(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{Policies: []PolicySpec{askPolicy()}})
	mustAccount(t, e, AccountSpec{ID: "a"})
	mustAccount(t, e, AccountSpec{ID: "b"})
	call := Call{Account: "a", Tool: "Bash"}
	d, _, err := e.Reserve(ctx, call, ReserveOptions{})
	if err != nil || d.Verdict != Ask || d.ApprovalID == "" {
		t.Fatalf("first reserve: %+v %v", d, err)
	}
	if _, _, err := e.Reserve(ctx, call, ReserveOptions{ApprovalID: d.ApprovalID}); err == nil {
		t.Fatal("a pending approval let the call through")
	}
	if _, err := e.Approvals().Approve(d.ApprovalID, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Reserve(ctx, Call{Account: "b", Tool: "Bash"}, ReserveOptions{ApprovalID: d.ApprovalID}); !errors.Is(err, ErrApprovalMismatch) {
		t.Fatalf("approval reused for another account: %v", err)
	}
	d2, r, err := e.Reserve(ctx, call, ReserveOptions{ApprovalID: d.ApprovalID})
	if err != nil || !d2.Allowed() || r.State != StatePending {
		t.Fatalf("approved reserve: %+v %+v %v", d2, r, err)
	}
	if _, _, err := e.Reserve(ctx, call, ReserveOptions{ApprovalID: d.ApprovalID}); err == nil {
		t.Fatal("an approval was used twice")
	}
}

type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type swappablePolicies struct {
	mu    sync.Mutex
	specs []PolicySpec
}

func (s *swappablePolicies) Policies() []PolicySpec { s.mu.Lock(); defer s.mu.Unlock(); return s.specs }

func TestPolicyProviderIsConsultedPerCall(t *testing.T) {
	prov := &swappablePolicies{}
	e := newTestEnforcer(t, Config{Policies: []PolicySpec{verdictPolicy("static", Allow, nil)}, PolicyProvider: prov})
	mustAccount(t, e, AccountSpec{ID: "a"})
	ctx := context.Background()
	if d, _ := e.Check(ctx, Call{Account: "a", Tool: "Read"}); d.Verdict != Allow || len(d.Policies) != 1 {
		t.Fatalf("before: %+v", d)
	}
	prov.mu.Lock()
	prov.specs = []PolicySpec{verdictPolicy("dropped-in", Deny, nil)}
	prov.mu.Unlock()
	d, _ := e.Check(ctx, Call{Account: "a", Tool: "Read"})
	if d.Verdict != Deny || d.Policy != "dropped-in" || len(d.Policies) != 2 || d.Policies[0].Policy != "static" {
		t.Fatalf("after the provider changed: %+v", d)
	}
}

func TestReserveRetryReturnsTheFirstOutcome(t *testing.T) {
	ctx := context.Background()
	e := newRetryEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("0.01")})
	call := Call{Account: "a", Tool: "Bash"}
	d1, r1, err := e.Reserve(ctx, call, ReserveOptions{ID: "x"})
	if err != nil || !d1.Allowed() {
		t.Fatal(d1, err)
	}
	// The first hold fills the budget; a retry must not be judged against it.
	d2, r2, err := e.Reserve(ctx, call, ReserveOptions{ID: "x"})
	if err != nil || !d2.Allowed() || r2.ID != r1.ID || r2.State != StatePending {
		t.Fatalf("retry: %+v %+v %v", d2, r2, err)
	}
	if snap, _ := e.Ledger().Snapshot(ctx, "a"); snap.Pending != MustParseUSD("0.01") {
		t.Errorf("retry held twice: pending %s", snap.Pending)
	}
	if _, _, err := e.Reserve(ctx, Call{Account: "a", Tool: "Read"}, ReserveOptions{ID: "x"}); !errors.Is(err, ErrReservationConflict) {
		t.Errorf("same id, other tool: %v", err)
	}
	if _, err := e.Ledger().Release(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	ran := 0
	run := func(context.Context) (any, error) { ran++; return nil, nil }
	if _, err := e.Execute(ctx, "a", "Bash", nil, run, WithReservationID("y")); err != nil || ran != 1 {
		t.Fatalf("execute under a fresh id: %v ran=%d", err, ran)
	}
	res, err := e.Execute(ctx, "a", "Bash", nil, run, WithReservationID("y"))
	if !errors.Is(err, ErrReservationSettled) || ran != 1 || res.Reservation.State != StateCommitted {
		t.Errorf("a retried Execute of a finished call must not run the tool again: %v ran=%d %+v", err, ran, res.Reservation)
	}
}

func TestApprovalIsBoundToParamsAndState(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{Policies: []PolicySpec{askPolicy()}})
	mustAccount(t, e, AccountSpec{ID: "a"})
	ls := Call{Account: "a", Tool: "Bash", Params: map[string]any{"command": "ls"}}
	d, _, _ := e.Reserve(ctx, ls, ReserveOptions{})
	if _, _, err := e.Reserve(ctx, ls, ReserveOptions{ApprovalID: d.ApprovalID}); !errors.Is(err, ErrApprovalPending) {
		t.Errorf("pending approval: %v", err)
	}
	if _, err := e.Approvals().Approve(d.ApprovalID, ""); err != nil {
		t.Fatal(err)
	}
	rm := Call{Account: "a", Tool: "Bash", Params: map[string]any{"command": "rm -rf /"}}
	if _, _, err := e.Reserve(ctx, rm, ReserveOptions{ApprovalID: d.ApprovalID}); !errors.Is(err, ErrApprovalMismatch) {
		t.Errorf("approval for `ls` let `rm -rf /` through: %v", err)
	}
	if d2, _, err := e.Reserve(ctx, ls, ReserveOptions{ApprovalID: d.ApprovalID}); err != nil || !d2.Allowed() {
		t.Errorf("the approved call itself: %+v %v", d2, err)
	}
	if _, _, err := e.Reserve(ctx, ls, ReserveOptions{ApprovalID: d.ApprovalID}); !errors.Is(err, ErrApprovalUsed) {
		t.Errorf("second use: %v", err)
	}
}

func TestAliasOnlyLLMRuleKeepsDefaults(t *testing.T) {
	e := newTestEnforcer(t, Config{LLM: LLMRule{Tools: []string{"chat"}}})
	est, err := e.Estimate(context.Background(), Call{Tool: "chat", Params: map[string]any{"prompt": "hi"}})
	if err != nil || est.Nanos != MustParseUSD("0.0001") {
		t.Errorf("alias-only rule: %s %v; want the $0.0001 minimum", est.Nanos, err)
	}
}

// A fail-open policy is skipped when it breaks, but a policy that refuses
// the caller's params has not broken: junk params must not bypass it.
func TestFailOpenPolicyRefusingParamsDenies(t *testing.T) {
	refuse := verdictPolicy("strict-open", Allow, &InvalidParamsError{Param: "command", Reason: "not a string"})
	refuse.FailOpen = true
	e := newTestEnforcer(t, Config{Policies: []PolicySpec{refuse}})
	mustAccount(t, e, AccountSpec{ID: "a"})
	d, err := e.Check(context.Background(), Call{Account: "a", Tool: "Bash"})
	if err != nil || d.Verdict != Deny || d.Policy != "strict-open" || !strings.Contains(d.Reason, "param command") {
		t.Fatalf("got %v by %q (%q), %v; want a deny by strict-open naming the param", d.Verdict, d.Policy, d.Reason, err)
	}
}
