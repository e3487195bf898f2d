// Package bridge makes Wasm plugins loaded by the host usable by the
// enforcer: estimator plugins become an enforcer.Estimator and policy
// plugins an enforcer.PolicyProvider. It is the only package that imports
// both host/ and enforcer/; the two never import each other.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
type Estimator struct {
	reg *host.Registry
	cfg EstimatorConfig
}

// EstimatorConfig bounds the quotes plugins may give, so that one plugin
// cannot poison an account tree: a quote refused here falls back to the
// built-in estimate with the error recorded, like any plugin failure.
type EstimatorConfig struct {
	// EstimatePerCallMaxNanos refuses a plugin estimate above it (an
	// estimate near 2^63-1 on an unlimited account made every later commit
	// there overflow). 0 means DefaultEstimatePerCallMaxNanos.
	EstimatePerCallMaxNanos enforcer.Nanos
}

// DefaultEstimatePerCallMaxNanos is $1,000.
const DefaultEstimatePerCallMaxNanos enforcer.Nanos = 1_000 * 1_000_000_000

// Quote refusals; each is a *QuoteError wrapping one of them.
var (
	ErrEstimateAboveMax = errors.New("plugin estimate above the per-call maximum")
	// ErrZeroWildcardEstimate: a "*" estimator priced a tool it does not
	// name in its manifest at $0, which would make every such call free.
	ErrZeroWildcardEstimate = errors.New(`"*" estimator priced a tool it does not name at $0`)
)

// QuoteError is a plugin estimate the bridge refused.
type QuoteError struct {
	Source string // plugin:<name>@<digest12>
	Tool   string
	Nanos  enforcer.Nanos
	Max    enforcer.Nanos // for ErrEstimateAboveMax
	Err    error
}

func (e *QuoteError) Error() string {
	if errors.Is(e.Err, ErrEstimateAboveMax) {
		return fmt.Sprintf("%s: %v: %s for %s, maximum %s (plugins.estimate_per_call_max_usd)", e.Source, e.Err, e.Nanos, e.Tool, e.Max)
	}
	return fmt.Sprintf("%s: %v (%s); name it in the manifest's tools to price it at $0", e.Source, e.Err, e.Tool)
}

// Unwrap returns the sentinel.
func (e *QuoteError) Unwrap() error { return e.Err }

// NewEstimator wraps reg with the default EstimatorConfig.
func NewEstimator(reg *host.Registry) *Estimator {
	return NewEstimatorWithConfig(reg, EstimatorConfig{})
}

// NewEstimatorWithConfig wraps reg; cfg's zero fields take the defaults.
func NewEstimatorWithConfig(reg *host.Registry, cfg EstimatorConfig) *Estimator {
	if cfg.EstimatePerCallMaxNanos <= 0 {
		cfg.EstimatePerCallMaxNanos = DefaultEstimatePerCallMaxNanos
	}
	return &Estimator{reg: reg, cfg: cfg}
}

// Estimate asks the plugin whose manifest lists the tool (or "*"). Its
// failures (timeouts, traps, unhealthy) and refused quotes (QuoteError)
// make the enforcer fall back with the error recorded; "unsupported" is
// enforcer.ErrNotHandled (a silent fallback); refused params are an
// *enforcer.InvalidParamsError, which the enforcer returns to the caller
// instead of falling back.
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
	if err != nil {
		return q, callError(err, info.Source)
	}
	if err := e.checkQuote(p, call.Tool, enforcer.Nanos(res.Nanos), info.Source); err != nil {
		return q, err
	}
	q.Nanos = enforcer.Nanos(res.Nanos)
	return q, nil
}

func (e *Estimator) checkQuote(p *host.Plugin, tool string, n enforcer.Nanos, source string) error {
	if n > e.cfg.EstimatePerCallMaxNanos {
		return &QuoteError{Source: source, Tool: tool, Nanos: n, Max: e.cfg.EstimatePerCallMaxNanos, Err: ErrEstimateAboveMax}
	}
	if n == 0 && !namesTool(p.Manifest().Tools, tool) {
		return &QuoteError{Source: source, Tool: tool, Err: ErrZeroWildcardEstimate}
	}
	return nil
}

// namesTool reports whether tools lists tool by name ("*" does not count).
func namesTool(tools []string, tool string) bool {
	for _, t := range tools {
		if t == tool {
			return true
		}
	}
	return false
}

// callError maps the host's answers that are not plugin failures onto the
// enforcer's sentinels: a declined call is ErrNotHandled, refused params
// an *enforcer.InvalidParamsError naming the param and the plugin.
func callError(err error, source string) error {
	var ce *host.CallError
	switch {
	case errors.Is(err, host.ErrUnsupported):
		return fmt.Errorf("%w: %w", enforcer.ErrNotHandled, err)
	case errors.Is(err, host.ErrInvalidParams) && errors.As(err, &ce):
		param, reason := ce.Param()
		return &enforcer.InvalidParamsError{Param: param, Reason: reason, Source: source}
	}
	return err
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
	// The manifest's tools decide which calls the policy judges; for the
	// others it is not called and is neutral (an allow never overrides
	// another policy's deny or ask).
	if m := a.p.Manifest(); !m.Handles(in.Call.Tool) {
		return enforcer.PolicyResult{Verdict: enforcer.Allow, Reason: "not consulted: its manifest does not list " + strconv.Quote(in.Call.Tool)}, nil
	}
	req, err := AdmitRequest(in)
	if err != nil {
		return enforcer.PolicyResult{}, err
	}
	res, info, err := a.p.Admit(ctx, req)
	if err != nil {
		return enforcer.PolicyResult{}, callError(err, info.Source)
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
// characters, max_tokens; host.CallFromParams), hands over the enforcer's
// LLM context (so a plugin prices with the host's table, ABI 1.1) and, for
// policies, adds the budget and labels.
func abiCall(call enforcer.Call, budget *enforcer.Snapshot) (abi.Call, error) {
	c, err := host.CallFromParams(call.Tool, call.Account, call.Params)
	if err != nil {
		return c, err
	}
	if call.LLM != nil {
		c.LLM, c.LLMPriceSource = abiLLM(call.LLM), call.LLM.Price.Source
	}
	if budget != nil {
		c.Budget, c.Labels = abiBudget(*budget), host.LabelsFrom(budget.Labels)
	}
	return c, nil
}

func abiLLM(l *enforcer.LLMContext) *abi.LLMContext {
	p := &l.Price.Price
	return &abi.LLMContext{
		Price: abi.LLMPrice{
			Input: int64(p.Input), Output: int64(p.Output), CacheRead: int64(p.CacheRead),
			CacheWrite: int64(p.CacheWrite), CacheWrite1h: int64(p.CacheWrite1h),
			TierAboveTokens: p.TierAboveTokens, InputAbove: int64(p.InputAbove), OutputAbove: int64(p.OutputAbove),
			CacheReadAbove: int64(p.CacheReadAbove), CacheWriteAbove: int64(p.CacheWriteAbove),
		},
		PriceFallback:        l.Price.Fallback,
		ExpectedOutputTokens: l.ExpectedOutputTokens,
		CacheReadTokens:      l.CacheReadTokens,
	}
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
