package purser

import (
	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/usd"
)

// LLM is the host's LLM context (ABI 1.1): the model's prices from the
// host's price table (nano-USD per million tokens) and what the host
// expects of the call. A plugin that prices with it gives the host's
// answer for the model, from the one table purser also bills usage with.
type LLM = abi.LLMContext

// LLM returns the host's LLM context; ok is false when the request has
// none (the host did not treat the tool as an LLM call, or it is older
// than ABI 1.1).
func (r *Request) LLM() (c LLM, ok bool) { return r.v.LLM() }

// LLMPriceSource names where the LLM prices came from, e.g.
// "litellm:claude-opus-4-5" or "fallback:dearest-anthropic:...": empty
// without an LLM context.
func (r *Request) LLMPriceSource() []byte { return r.v.LLMPriceSource() }

// LLMBaseCost is the host's base formula (enforcer.LLMContext.BaseCost):
// of promptTokens, c.CacheReadTokens (clamped to 0..promptTokens) at the
// cache-read price and the rest at the dearer of input and cache-write (a
// model with a cache-write price bills new prompt tokens as writes), plus
// c.ExpectedOutputTokens (negative = 0) at the output price, each part
// rounded up to a whole nano; a prompt above the long-context tier pays the
// tier's prices. ok is false when the sum does not fit an int64.
func LLMBaseCost(c LLM, promptTokens int64) (nanos int64, ok bool) {
	promptTokens = max(promptTokens, 0)
	cached := min(max(c.CacheReadTokens, 0), promptTokens)
	eff := effectivePrice(c.Price, promptTokens)
	fresh := eff.Input
	if c.Price.CacheWrite > 0 && eff.CacheWrite > fresh {
		fresh = eff.CacheWrite
	}
	var total int64
	for _, part := range [...][2]int64{{promptTokens - cached, fresh}, {cached, eff.CacheRead}, {max(c.ExpectedOutputTokens, 0), eff.Output}} {
		cost, ok := usd.TokenCost(part[0], part[1])
		if !ok {
			return 0, false
		}
		if total, ok = usd.Add(total, cost); !ok {
			return 0, false
		}
	}
	return total, true
}

// effectivePrice applies the long-context tier and the "zero cache price
// means input" rule, as the host's ModelPrice does.
func effectivePrice(p abi.LLMPrice, promptTokens int64) abi.LLMPrice {
	e := p
	if p.TierAboveTokens > 0 && promptTokens > p.TierAboveTokens {
		pick := func(base, above int64) int64 {
			if above > 0 {
				return above
			}
			return base
		}
		e.Input, e.Output = pick(p.Input, p.InputAbove), pick(p.Output, p.OutputAbove)
		e.CacheRead, e.CacheWrite = pick(p.CacheRead, p.CacheReadAbove), pick(p.CacheWrite, p.CacheWriteAbove)
	}
	if e.CacheRead == 0 {
		e.CacheRead = e.Input
	}
	if e.CacheWrite == 0 {
		e.CacheWrite = e.Input
	}
	return e
}
