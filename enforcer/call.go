package enforcer

import (
	"context"
	"errors"
	"fmt"
)

// Call is one tool invocation an agent wants to make.
type Call struct {
	Account string
	Tool    string
	// Params are the tool's arguments as decoded JSON (objects are
	// map[string]any, arrays []any, numbers float64 or json.Number).
	Params map[string]any
	// LLM is filled by the enforcer for LLM tools (the rule's names) before
	// estimators run; nil for other tools and for callers' own Calls.
	LLM *LLMContext
}

// Estimate is what a call is expected to cost and where that figure came from.
type Estimate struct {
	Nanos Nanos
	// Source is "plugin:<name>@<sha256 prefix>", "table", "llm" or "unknown".
	Source string
	// FallbackErr is the error that made the chain skip a better source
	// (a failing plugin), nil when the first choice answered.
	FallbackErr error
	// Fuel is the metered work the estimator reported (Wasm fuel: about
	// one unit per instruction), 0 for built-in sources.
	Fuel int64
	// Explain is the arithmetic of a built-in LLM estimate (nil for other
	// sources); a hold records its Base and CalibrationKey.
	Explain *EstimateExplain
}

// Estimate sources other than plugins.
const (
	SourceTable   = "table"
	SourceLLM     = "llm"
	SourceUnknown = "unknown"
)

// Estimator prices a call. The Wasm host implements it for estimator
// plugins; any Go value can too. Implementations must be safe for
// concurrent use.
type Estimator interface {
	Estimate(ctx context.Context, call Call) (Quote, error)
}

// Quote is an Estimator's answer. On an error, Source and Fuel still
// describe the attempt.
type Quote struct {
	Nanos Nanos
	// Source labels the estimate (for plugins "plugin:<name>@<digest
	// prefix>"); it may change when a plugin reloads, so it comes with
	// each answer.
	Source string
	// Fuel is the metered work the answer took (Wasm fuel), 0 when the
	// estimator is not metered.
	Fuel int64
}

// Verdict is a policy's or the engine's answer.
type Verdict uint8

// Verdicts, ordered by precedence (deny beats ask beats allow).
const (
	Allow Verdict = iota
	Ask
	Deny
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Ask:
		return "ask"
	case Deny:
		return "deny"
	}
	return "invalid"
}

// PolicyInput is what a policy sees.
type PolicyInput struct {
	Call     Call
	Estimate Estimate
	// Budget is the account's snapshot before this call is held.
	Budget Snapshot
}

// PolicyResult is one policy's answer.
type PolicyResult struct {
	Verdict Verdict
	Reason  string
	// Fuel is the metered work the policy used (Wasm fuel), 0 when the
	// policy is not metered.
	Fuel int64
}

// Policy is an admission rule. The Wasm host implements it for policy
// plugins; built-in policies live in this package. A returned error is an
// operating failure (the policy could not decide), not a deny.
type Policy interface {
	Name() string
	Evaluate(ctx context.Context, in PolicyInput) (PolicyResult, error)
}

// ErrNotHandled is returned (possibly wrapped) by an Estimator or a Policy
// that has no opinion on a call, such as a plugin registry with no plugin
// for the tool or a plugin answering unsupported. The estimation chain
// moves on without recording a fallback error; a policy is skipped (its
// outcome records the skip), which is neither a failure nor a deny.
var ErrNotHandled = errors.New("estimator does not handle this call")

// ErrInvalidParams is returned (wrapped, usually in an *InvalidParamsError)
// when a call's params are wrong: the caller's mistake, not the
// estimator's, so it never counts against a plugin's health, the chain
// does not fall back, and a server answers 4xx naming the param.
var ErrInvalidParams = errors.New("invalid params")

// InvalidParamsError names the param that was wrong and why.
type InvalidParamsError struct {
	Param  string // a JSON path such as "usage.cache_read_tokens"; "" for the params as a whole
	Reason string
	Source string // who refused them, e.g. "plugin:llm-tokens@1a2b3c4d"
}

func (e *InvalidParamsError) Error() string {
	where := "params"
	if e.Param != "" {
		where = "param " + e.Param
	}
	if e.Source != "" {
		return fmt.Sprintf("%s: %s (refused by %s)", where, e.Reason, e.Source)
	}
	return where + ": " + e.Reason
}

func (e *InvalidParamsError) Unwrap() error { return ErrInvalidParams }

// PolicyProvider supplies policies that can change at run time (plugins
// reloaded from a folder). It is consulted on every admission, after the
// static Config.Policies, so it must be cheap (an atomic load).
type PolicyProvider interface {
	Policies() []PolicySpec
}

// ErrStrictUnknownTool is returned (wrapped) when strict mode meets a tool
// that neither an estimator nor the table knows.
var ErrStrictUnknownTool = errors.New("unknown tool in strict mode")

// LLMContext is what the enforcer knows about an LLM call before any
// estimator sees it: the model's price (from the same Pricer that prices
// usage at commit) and what calibration expects. The Wasm bridge hands it
// to plugins (abi/ABI.md), so a plugin never keeps its own price table.
type LLMContext struct {
	Price PriceQuote
	// ExpectedOutputTokens is the output the call is expected to write (0:
	// no expectation; params.max_tokens is the caller's own cap).
	ExpectedOutputTokens int64
	// CacheReadTokens is how many prompt tokens are expected to be read
	// from the provider's cache (params.cache_read_tokens when given, else
	// learned; 0 when none).
	CacheReadTokens int64
}

// BaseCost is the uncalibrated price of a call with promptTokens prompt
// tokens: the expected cache reads at the cache-read price, the rest of the
// prompt at the dearer of input and cache-write (a provider that caches
// explicitly bills the new part as a write), and the expected output at
// the output price, with long-context tiers applied. Every LLM estimator
// (the built-in rule and the llm-tokens plugin) uses this formula, so one
// price source gives one answer.
func (c *LLMContext) BaseCost(promptTokens int64) (Nanos, error) {
	if promptTokens < 0 {
		promptTokens = 0
	}
	cached := min(max(c.CacheReadTokens, 0), promptTokens)
	eff := c.Price.Price.effective(promptTokens)
	fresh := eff.Input
	if c.Price.Price.CacheWrite > 0 && eff.CacheWrite > fresh {
		fresh = eff.CacheWrite
	}
	var total Nanos
	for _, part := range [...]struct {
		n     int64
		price PerMTok
	}{{promptTokens - cached, fresh}, {cached, eff.CacheRead}, {max(c.ExpectedOutputTokens, 0), eff.Output}} {
		cost, err := part.price.Cost(part.n)
		if err != nil {
			return 0, err
		}
		if total, err = total.Add(cost); err != nil {
			return 0, err
		}
	}
	return total, nil
}
