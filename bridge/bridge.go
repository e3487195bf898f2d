// Package bridge makes Wasm plugins loaded by the host usable by the
// enforcer: estimator plugins become an enforcer.Estimator and policy
// plugins an enforcer.PolicyProvider. It is the only package that imports
// both host/ and enforcer/; the two never import each other.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
)

// Estimator routes each call to the registry's estimator plugin for the
// tool; tools without one get enforcer.ErrNotHandled, so the enforcer
// falls back to its table without recording an error. Register it under
// "*" in enforcer.Config.Estimators.
type Estimator struct{ reg *host.Registry }

// NewEstimator wraps reg.
func NewEstimator(reg *host.Registry) *Estimator { return &Estimator{reg: reg} }

// Estimate asks the plugin; its errors (timeouts, traps, unhealthy) make
// the enforcer fall back with the error recorded.
func (e *Estimator) Estimate(ctx context.Context, call enforcer.Call) (enforcer.Quote, error) {
	p := e.reg.Estimator(call.Tool)
	if p == nil {
		return enforcer.Quote{}, enforcer.ErrNotHandled
	}
	req, err := EstimateRequest(call)
	if err != nil {
		return enforcer.Quote{Source: p.SourceLabel()}, err
	}
	res, info, err := p.Estimate(ctx, req)
	q := enforcer.Quote{Source: info.Source, Fuel: info.Fuel}
	var ce *host.CallError
	if errors.As(err, &ce) && ce.Code == uint32(abi.CodeUnsupported) {
		return q, fmt.Errorf("%w: %w", enforcer.ErrNotHandled, err)
	}
	if err != nil {
		return q, err
	}
	q.Nanos = enforcer.Nanos(res.Nanos)
	return q, nil
}

// Policies is an enforcer.PolicyProvider over the registry's policy
// plugins, in their configured order. The slice is rebuilt only when the
// registry's set of policies changes.
type Policies struct {
	reg   *host.Registry
	cache atomic.Pointer[policySet]
}

type policySet struct {
	plugins []*host.Plugin
	specs   []enforcer.PolicySpec
}

// NewPolicies wraps reg.
func NewPolicies(reg *host.Registry) *Policies { return &Policies{reg: reg} }

// Policies returns the current policy chain.
func (p *Policies) Policies() []enforcer.PolicySpec {
	cur := p.reg.Policies()
	if set := p.cache.Load(); set != nil && samePlugins(set.plugins, cur) {
		return set.specs
	}
	set := &policySet{plugins: cur, specs: make([]enforcer.PolicySpec, len(cur))}
	for i, pl := range cur {
		set.specs[i] = enforcer.PolicySpec{Policy: policy{pl}, FailOpen: pl.FailMode() == host.FailOpen}
	}
	p.cache.Store(set)
	return set.specs
}

func samePlugins(a, b []*host.Plugin) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// policy adapts one policy plugin. A *host.Plugin survives reloads, so the
// adapter always calls the current version.
type policy struct{ p *host.Plugin }

// Name is the plugin's source label, "plugin:<name>@<digest12>", so
// decisions and the decision log name the exact module that decided.
func (a policy) Name() string { return a.p.SourceLabel() }

func (a policy) Evaluate(ctx context.Context, in enforcer.PolicyInput) (enforcer.PolicyResult, error) {
	req, err := AdmitRequest(in)
	if err != nil {
		return enforcer.PolicyResult{}, err
	}
	res, info, err := a.p.Admit(ctx, req)
	if err != nil {
		return enforcer.PolicyResult{}, err
	}
	switch res.Verdict {
	case abi.Allow:
		return enforcer.PolicyResult{Verdict: enforcer.Allow, Reason: res.Reason, Fuel: info.Fuel}, nil
	case abi.Ask:
		return enforcer.PolicyResult{Verdict: enforcer.Ask, Reason: res.Reason, Fuel: info.Fuel}, nil
	case abi.Deny:
		return enforcer.PolicyResult{Verdict: enforcer.Deny, Reason: res.Reason, Fuel: info.Fuel}, nil
	}
	return enforcer.PolicyResult{}, fmt.Errorf("policy %s: verdict %d is not allow, ask or deny", a.Name(), res.Verdict)
}

// EstimateRequest encodes a call the way estimator plugins see it.
func EstimateRequest(call enforcer.Call) (abi.EstimateRequest, error) {
	c, err := abiCall(call, nil)
	return abi.EstimateRequest{Call: c}, err
}

// AdmitRequest encodes a policy input the way policy plugins see it.
func AdmitRequest(in enforcer.PolicyInput) (abi.AdmitRequest, error) {
	c, err := abiCall(in.Call, &in.Budget)
	return abi.AdmitRequest{Call: c, EstimateNanos: int64(in.Estimate.Nanos),
		EstimateSource: sourceCode(in.Estimate.Source), EstimateSourceLabel: in.Estimate.Source}, err
}

func sourceCode(label string) abi.Source {
	switch {
	case strings.HasPrefix(label, "plugin:"):
		return abi.SourcePlugin
	case label == enforcer.SourceTable:
		return abi.SourceTable
	case label == enforcer.SourceLLM:
		return abi.SourceLLM
	case label == enforcer.SourceUnknown:
		return abi.SourceUnknown
	}
	return abi.SourceNone
}

// abiCall precomputes the fields guests read without JSON (model, prompt
// characters, max_tokens; host.CallFromParams) and, for policies, adds the
// budget and labels.
func abiCall(call enforcer.Call, budget *enforcer.Snapshot) (abi.Call, error) {
	c, err := host.CallFromParams(call.Tool, call.Account, call.Params)
	if err != nil {
		return c, err
	}
	if budget != nil {
		c.Budget, c.Labels = abiBudget(*budget), host.LabelsFrom(budget.Labels)
	}
	return c, nil
}

func abiBudget(s enforcer.Snapshot) abi.Budget {
	if s.Limit == nil {
		b := abi.Unlimited(int64(s.Committed), int64(s.Pending))
		b.Overdrawn = s.Overdrawn
		return b
	}
	return abi.Budget{LimitNanos: int64(*s.Limit), CommittedNanos: int64(s.Committed), PendingNanos: int64(s.Pending),
		// The ABI's remaining is signed (negative when overdrawn), unlike Snapshot.Remaining.
		RemainingNanos: int64(enforcer.RemainingOf(*s.Limit, s.Committed, s.Pending)), Overdrawn: s.Overdrawn}
}
