package enforcer

import (
	"context"
	"errors"
	"fmt"
)

// Decision layers: which part of admission decided.
const (
	LayerBudget   = "budget"
	LayerEstimate = "estimate"
	LayerPolicy   = "policy"
	LayerApproval = "approval"
	LayerNone     = "" // allowed with nothing to object
)

// Decision is admission's answer. A deny is a Decision, never an error.
type Decision struct {
	Verdict Verdict
	Reason  string
	// Layer is the part of admission that decided (LayerBudget, ...).
	Layer string
	// Policy names the policy that decided, when Layer is LayerPolicy.
	Policy   string
	Estimate Estimate
	// Budget is the tightest account on the path (own or ancestor) and
	// what it had left before this call.
	BudgetAccount string
	Remaining     Nanos
	Policies      []PolicyOutcome
	// ApprovalID is set when Verdict is Ask (the pending request), or when
	// an approval let the call through.
	ApprovalID string
}

// Allowed reports whether the call may run.
func (d Decision) Allowed() bool { return d.Verdict == Allow }

// PolicyOutcome is one policy's contribution to a decision.
type PolicyOutcome struct {
	Policy  string
	Verdict Verdict
	Reason  string
	// Err is the policy's failure, if it failed; FailOpen says whether it
	// was then skipped (true) or counted as a deny (false).
	Err      error
	FailOpen bool
	// Fuel is the metered work the policy reported (PolicyResult.Fuel).
	Fuel int64
}

// PolicySpec places a policy in the admission chain.
type PolicySpec struct {
	Policy Policy
	// FailOpen skips the policy when it fails; the default denies.
	FailOpen bool
}

// admit runs the budget layer then the policies. approved turns a policy
// ask into allow (a human already said yes); a deny still wins.
func (e *Enforcer) admit(ctx context.Context, call Call, est Estimate, approved bool) (Decision, error) {
	d := Decision{Estimate: est}
	bc, err := e.ledger.Check(ctx, call.Account, est.Nanos)
	if err != nil {
		return d, fmt.Errorf("admission of %s on account %q: %w", call.Tool, call.Account, err)
	}
	d.BudgetAccount, d.Remaining = bc.Account, bc.Remaining
	if !bc.OK {
		ibe := &InsufficientBudgetError{Account: bc.Account, Estimate: est.Nanos, Remaining: bc.Remaining, Overdrawn: bc.Overdrawn}
		d.Verdict, d.Layer, d.Reason = Deny, LayerBudget, ibe.Error()
		return d, nil
	}
	policies := e.currentPolicies()
	if len(policies) == 0 {
		return d, nil
	}
	var snap Snapshot
	if needsBudget(policies) {
		if snap, err = e.ledger.Snapshot(ctx, call.Account); err != nil {
			return d, fmt.Errorf("admission of %s on account %q: %w", call.Tool, call.Account, err)
		}
	}
	e.runPolicies(ctx, &d, policies, PolicyInput{Call: call, Estimate: est, Budget: snap}, approved)
	return d, ctx.Err()
}

// currentPolicies is the static chain followed by the provider's.
func (e *Enforcer) currentPolicies() []PolicySpec {
	if e.cfg.PolicyProvider == nil {
		return e.policies
	}
	dyn := e.cfg.PolicyProvider.Policies()
	if len(e.policies) == 0 {
		return dyn
	}
	return append(e.policies[:len(e.policies):len(e.policies)], dyn...)
}

// BudgetBlind is implemented by policies that never read
// PolicyInput.Budget; when every policy in the chain is blind, admission
// skips the ledger snapshot (a copy of labels and per-tool stats).
type BudgetBlind interface{ BudgetBlind() bool }

func needsBudget(policies []PolicySpec) bool {
	for _, p := range policies {
		if b, ok := p.Policy.(BudgetBlind); !ok || !b.BudgetBlind() {
			return true
		}
	}
	return false
}

func (e *Enforcer) runPolicies(ctx context.Context, d *Decision, policies []PolicySpec, in PolicyInput, approved bool) {
	d.Policies = make([]PolicyOutcome, 0, len(policies))
	var ask *PolicyOutcome
	for _, spec := range policies {
		o := evaluatePolicy(ctx, spec, in)
		d.Policies = append(d.Policies, o)
		switch {
		case o.Verdict == Deny:
			d.Verdict, d.Layer, d.Policy, d.Reason = Deny, LayerPolicy, o.Policy, o.Reason
			return
		case o.Verdict == Ask && ask == nil:
			ask = &d.Policies[len(d.Policies)-1]
		}
	}
	if ask != nil && !approved {
		d.Verdict, d.Layer, d.Policy, d.Reason = Ask, LayerPolicy, ask.Policy, ask.Reason
	}
}

func evaluatePolicy(ctx context.Context, spec PolicySpec, in PolicyInput) PolicyOutcome {
	name := spec.Policy.Name()
	res, err := spec.Policy.Evaluate(ctx, in)
	if err == nil && res.Verdict > Deny {
		err = fmt.Errorf("invalid verdict %d", res.Verdict)
	}
	if err == nil {
		return PolicyOutcome{Policy: name, Verdict: res.Verdict, Reason: res.Reason, Fuel: res.Fuel}
	}
	if errors.Is(err, ErrNotHandled) {
		// "Not mine" (a plugin's unsupported) is an answer, not a failure:
		// skipped and recorded, whatever the fail mode (abi/ABI.md section 4).
		return PolicyOutcome{Policy: name, Verdict: Allow, Reason: fmt.Sprintf("policy %s does not handle this call: skipped", name), Fuel: res.Fuel}
	}
	o := PolicyOutcome{Policy: name, Err: err, FailOpen: spec.FailOpen}
	if errors.Is(err, ErrInvalidParams) {
		// The caller's params, not the policy, are at fault: skipping the
		// policy (fail-open) would let junk params bypass it.
		o.FailOpen, o.Verdict = false, Deny
		o.Reason = fmt.Sprintf("policy %s refused the call's params: %v", name, err)
		return o
	}
	if spec.FailOpen {
		o.Verdict, o.Reason = Allow, fmt.Sprintf("policy %s failed and was skipped (fail-open): %v", name, err)
	} else {
		o.Verdict, o.Reason = Deny, fmt.Sprintf("policy %s failed (fail-closed): %v", name, err)
	}
	return o
}

func strictDeny(est Estimate, err error) (Decision, bool) {
	if !errors.Is(err, ErrStrictUnknownTool) {
		return Decision{}, false
	}
	return Decision{Verdict: Deny, Layer: LayerEstimate, Reason: err.Error(), Estimate: est}, true
}

// MaxCostPerCall is the built-in per-operation maximum: it denies any call
// whose estimate exceeds Limit.
type MaxCostPerCall struct{ Limit Nanos }

// Name is "max-cost-per-call".
func (MaxCostPerCall) Name() string { return "max-cost-per-call" }

// BudgetBlind: the per-operation maximum looks only at the estimate.
func (MaxCostPerCall) BudgetBlind() bool { return true }

// Evaluate denies with "Operation cost $0.15 exceeds limit $0.10".
func (p MaxCostPerCall) Evaluate(_ context.Context, in PolicyInput) (PolicyResult, error) {
	if in.Estimate.Nanos > p.Limit {
		return PolicyResult{Verdict: Deny, Reason: fmt.Sprintf("Operation cost %s exceeds limit %s", in.Estimate.Nanos, p.Limit)}, nil
	}
	return PolicyResult{Verdict: Allow}, nil
}

// PolicyFunc adapts a function to Policy.
type PolicyFunc struct {
	PolicyName string
	Fn         func(ctx context.Context, in PolicyInput) (PolicyResult, error)
}

// Name returns PolicyName.
func (p PolicyFunc) Name() string { return p.PolicyName }

// Evaluate calls Fn.
func (p PolicyFunc) Evaluate(ctx context.Context, in PolicyInput) (PolicyResult, error) {
	return p.Fn(ctx, in)
}
