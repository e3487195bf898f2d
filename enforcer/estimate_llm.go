package enforcer

import (
	"errors"
	"fmt"
	"strings"
)

// EstimateExplain is the arithmetic behind an LLM estimate, for
// `purser estimate --explain` and for the hold's calibration record.
type EstimateExplain struct {
	Model       string // params.model ("" when none)
	PriceSource string // the price table entry or rule
	PromptChars int64
	// PromptTokens is PromptChars/4, the prompt the base cost counts.
	PromptTokens int64
	// CacheReadTokens of the prompt are priced at the cache-read price;
	// CacheSource says where the number came from: params, the session's
	// previous prompt (SessionPromptTokens x CacheSharePPM / 1e6, when at
	// least MinCacheableTokens), or none.
	CacheReadTokens     int64
	CacheSource         string
	SessionPromptTokens int64
	CacheSharePPM       int64
	MinCacheableTokens  int64
	// ExpectedOutputTokens are priced at the output price.
	ExpectedOutputTokens int64
	OutputSource         string
	// BaseCost is LLMContext.BaseCost of the prompt; Base is that, at
	// least Minimum: the uncalibrated estimate, recorded on the hold as its
	// BaseEstimate.
	BaseCost Nanos
	Base     Nanos
	Minimum  Nanos
	// CalibrationKey is what the hold learns under ("" when calibration is
	// off or the call is priced by the seed's rule without history).
	CalibrationKey string
	// Scale is the learned actual/base ratio at Quantile (from Samples
	// settled calls, or the prior when Prior); 0 when not calibrated.
	Scale    float64
	Quantile float64
	Samples  int64
	Prior    bool
	// Family: nothing is learned for this model yet, so the ratios of the
	// account's other models for the tool are used (Samples are theirs).
	Family bool
	// Hold is the estimate: Base x Scale, at least Minimum; or, when
	// Trimmed, the remaining budget (an extendable call, see
	// ReserveOptions.Extendable).
	Hold    Nanos
	Trimmed bool
	// Tail is Base x the ratio at the 99th percentile: what the call may
	// cost at worst. A call that cannot extend its hold is admitted only
	// if its Tail fits the remaining budget (see Enforcer.Reserve), so an
	// under-estimate near the limit does not overdraw it.
	Tail Nanos
}

// Lines renders the arithmetic, one step a line.
func (x *EstimateExplain) Lines() []string {
	model := x.Model
	if model == "" {
		model = "(none)"
	}
	out := []string{
		fmt.Sprintf("model %s, priced by %s", model, x.PriceSource),
		fmt.Sprintf("prompt: %d characters / 4 = %d tokens", x.PromptChars, x.PromptTokens),
		fmt.Sprintf("cache reads: %d tokens (%s)", x.CacheReadTokens, x.cacheWhy()),
		fmt.Sprintf("expected output: %d tokens (%s)", x.ExpectedOutputTokens, x.OutputSource),
		fmt.Sprintf("base = max(BaseCost(%d prompt tokens) = %s, minimum %s) = %s", x.PromptTokens, x.BaseCost, x.Minimum, x.Base),
	}
	switch {
	case x.Scale == 0:
		out = append(out, fmt.Sprintf("not calibrated: estimate = base = %s", x.Hold))
	case x.Prior:
		out = append(out, fmt.Sprintf("calibration %s: no settled calls yet, prior x%.2f: estimate = %s", x.CalibrationKey, x.Scale, x.Hold))
	case x.Family:
		out = append(out, fmt.Sprintf("calibration %s: no settled calls for this model yet; the account's other models for this tool: p%s of actual/base over %d settled calls = x%.2f: estimate = %s",
			x.CalibrationKey, quantileLabel(x.Quantile), x.Samples, x.Scale, x.Hold))
	default:
		out = append(out, fmt.Sprintf("calibration %s: p%s of actual/base over %d settled calls = x%.2f: estimate = %s",
			x.CalibrationKey, quantileLabel(x.Quantile), x.Samples, x.Scale, x.Hold))
	}
	if x.Tail > x.Hold {
		out = append(out, fmt.Sprintf("tail (p99 of actual/base): %s; a call that cannot extend its hold must fit the budget with it", x.Tail))
	}
	if x.Trimmed {
		out = append(out, fmt.Sprintf("extendable call: held at the remaining budget %s (at least the base), extended while it runs", x.Hold))
	}
	return out
}

func (x *EstimateExplain) cacheWhy() string {
	switch x.CacheSource {
	case cacheFromSession:
		return fmt.Sprintf("session: %.0f%% of the previous prompt's %d tokens", float64(x.CacheSharePPM)/1e4, x.SessionPromptTokens)
	case cacheTooShort:
		return fmt.Sprintf("none: the previous prompt's %d tokens are below the %d a provider caches", x.SessionPromptTokens, x.MinCacheableTokens)
	}
	return x.CacheSource
}

func (x *EstimateExplain) String() string { return strings.Join(x.Lines(), "\n") }

// quantileLabel prints 0.95 as "95" and 0.975 as "97.5".
func quantileLabel(q float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", q*100), "0"), ".")
}

// llmPlan is an LLM call's context and calibration, worked out once.
type llmPlan struct {
	ctx     LLMContext
	explain EstimateExplain
	plan    calibPlan
	// paramErr is a bad token-count param: refused by the built-in rule,
	// after a plugin has had its say.
	paramErr error
}

// planLLM fills what an LLM estimator needs to know: the model's price,
// the expected cache reads (params.cache_read_tokens wins) and output
// (capped by params.max_tokens), and the calibration that applies.
func (c *estimationChain) planLLM(call Call) *llmPlan {
	model, _ := call.Params["model"].(string)
	given, err1 := paramTokens(call.Params, "cache_read_tokens")
	maxOut, err2 := paramTokens(call.Params, "max_tokens")
	chars := int64(PromptChars(call.Params))
	p := &llmPlan{plan: c.calib.plan(call.Account, call.Tool, model, given), paramErr: errors.Join(err1, err2)}
	p.ctx.Price = c.llm.Quote(model)
	p.explain = EstimateExplain{Model: model, PriceSource: p.ctx.Price.Source, PromptChars: chars, PromptTokens: chars / 4,
		Minimum: c.llm.Minimum, Quantile: p.plan.quantile}
	if model == "" {
		// The seed's rule: every prompt token at DefaultPrice, no output.
		p.explain.CacheSource, p.explain.OutputSource = "not priced apart without a model", "not counted without a model"
		return p
	}
	cn := p.plan.cache
	p.ctx.CacheReadTokens, p.explain.CacheSource = cn.tokens, cn.source
	p.explain.SessionPromptTokens, p.explain.CacheSharePPM, p.explain.MinCacheableTokens = cn.prevPrompt, cn.sharePPM, cn.minCacheable
	p.ctx.ExpectedOutputTokens, p.explain.OutputSource = p.plan.outTokens, p.plan.outSource
	if p.plan.outSource == "" {
		p.explain.OutputSource = "nothing learned yet"
	}
	if maxOut >= 0 && maxOut < p.ctx.ExpectedOutputTokens {
		p.ctx.ExpectedOutputTokens, p.explain.OutputSource = maxOut, "params.max_tokens"
	}
	p.explain.CacheReadTokens, p.explain.ExpectedOutputTokens = p.ctx.CacheReadTokens, p.ctx.ExpectedOutputTokens
	return p
}

// llmEstimate is the built-in LLM rule: the base cost scaled by the
// calibration, at least the minimum.
func (c *estimationChain) llmEstimate(p *llmPlan) (Estimate, error) {
	if p.paramErr != nil {
		return Estimate{Source: SourceLLM}, p.paramErr
	}
	x := &p.explain
	base, err := p.ctx.BaseCost(x.PromptTokens)
	if err != nil {
		return Estimate{Source: SourceLLM}, fmt.Errorf("llm estimate for model %q: %w", x.Model, err)
	}
	x.BaseCost, x.Base = base, max(base, c.llm.Minimum)
	x.Hold = x.Base
	source := SourceLLM
	if p.plan.scalePPM > 0 {
		hold, err := MulRatioCeil(x.Base, p.plan.scalePPM, 1_000_000)
		if err != nil {
			return Estimate{Source: SourceLLM}, fmt.Errorf("llm estimate for model %q: calibrated hold: %w", x.Model, err)
		}
		x.Hold = max(hold, c.llm.Minimum)
		if x.Tail, err = MulRatioCeil(x.Base, max(p.plan.tailPPM, p.plan.scalePPM), 1_000_000); err != nil {
			x.Tail = x.Hold
		}
		x.Scale, x.Samples, x.Prior, x.Family = float64(p.plan.scalePPM)/1e6, p.plan.samples, p.plan.prior, p.plan.family
		source = p.plan.source
	}
	x.CalibrationKey = p.plan.key
	return Estimate{Nanos: x.Hold, Source: source, Explain: x}, nil
}

// calibSource names the calibration in an estimate's source, e.g.
// "llm+calib(p95 x1.42, n=318)" or "llm+calib(prior x2.00, n=0)".
func calibSource(p *calibPlan) string {
	scale := float64(p.scalePPM) / 1e6
	if p.prior {
		return fmt.Sprintf("%s+calib(prior x%.2f, n=0)", SourceLLM, scale)
	}
	if p.family {
		return fmt.Sprintf("%s+calib(other models p%s x%.2f, n=%d)", SourceLLM, quantileLabel(p.quantile), scale, p.samples)
	}
	return fmt.Sprintf("%s+calib(p%s x%.2f, n=%d)", SourceLLM, quantileLabel(p.quantile), scale, p.samples)
}

// trimToBudget is the budget-aware hold of an extendable LLM call: a budget
// deny whose remaining room still covers the base estimate becomes a hold
// of that room (ok false otherwise).
func trimToBudget(est Estimate, d Decision) (Estimate, bool) {
	x := est.Explain
	if x == nil || d.Verdict != Deny || d.Layer != LayerBudget || d.Remaining < x.Base || d.Remaining <= 0 || d.Remaining >= est.Nanos {
		return est, false
	}
	t := *x
	t.Hold, t.Trimmed = d.Remaining, true
	est.Nanos, est.Explain = d.Remaining, &t
	est.Source += "+trimmed(remaining budget)"
	return est, true
}

// tailEstimate is the estimate a non-extendable LLM call must fit the
// budget with: its Tail (ok false when that is not above the hold).
func tailEstimate(est Estimate) (Estimate, bool) {
	x := est.Explain
	if x == nil || x.Tail <= est.Nanos {
		return est, false
	}
	est.Nanos = x.Tail
	est.Source += "+tail(p99)"
	return est, true
}
