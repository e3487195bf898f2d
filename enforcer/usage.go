package enforcer

import (
	"fmt"
)

// MaxUsageTokens bounds each token count of a TokenUsage: no single call
// reads or writes a billion tokens, so a larger count is a caller's bug.
const MaxUsageTokens = 1_000_000_000

// TokenUsage is what a provider reported for one LLM call. InputTokens
// excludes the cache classes: the prompt is InputTokens + CacheReadTokens
// + CacheWriteTokens + CacheWrite1hTokens.
type TokenUsage struct {
	Model              string
	InputTokens        int64
	OutputTokens       int64
	CacheReadTokens    int64
	CacheWriteTokens   int64 // written to a 5-minute cache (the default)
	CacheWrite1hTokens int64 // written to a 1-hour cache
}

// UsageError names the field of a TokenUsage that is wrong.
type UsageError struct {
	Field  string // e.g. "usage.output_tokens"
	Reason string
}

func (e *UsageError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Unwrap makes a UsageError an invalid-params error: the caller's input.
func (e *UsageError) Unwrap() error { return ErrInvalidParams }

// PromptTokens is the whole prompt: input plus every cache class.
func (u TokenUsage) PromptTokens() int64 {
	return u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens + u.CacheWrite1hTokens
}

// Validate refuses negative and absurd counts (above MaxUsageTokens),
// naming the field as it is spelled over HTTP, and a call whose tokens
// (prompt + output) sum past MaxUsageTokens, naming "usage".
func (u TokenUsage) Validate() error {
	for _, f := range [...]struct {
		name string
		n    int64
	}{
		{"usage.input_tokens", u.InputTokens}, {"usage.output_tokens", u.OutputTokens},
		{"usage.cache_read_tokens", u.CacheReadTokens}, {"usage.cache_write_tokens", u.CacheWriteTokens},
		{"usage.cache_write_1h_tokens", u.CacheWrite1hTokens},
	} {
		if f.n < 0 {
			return &UsageError{Field: f.name, Reason: fmt.Sprintf("must be >= 0, got %d", f.n)}
		}
		if f.n > MaxUsageTokens {
			return &UsageError{Field: f.name, Reason: fmt.Sprintf("%d tokens is above the limit of %d per call", f.n, MaxUsageTokens)}
		}
	}
	// Each count is at most 10^9, so the sum of five cannot overflow.
	if total := u.PromptTokens() + u.OutputTokens; total > MaxUsageTokens {
		return &UsageError{Field: "usage", Reason: fmt.Sprintf("%d tokens in all is above the limit of %d per call", total, MaxUsageTokens)}
	}
	return nil
}

// Cost prices u exactly: each token class at its own price, each class
// rounded up to a whole nano-USD separately (providers bill per class, so
// this reproduces billed amounts). A cache price the model lacks is its
// input price; the 1-hour write price defaults to the 5-minute one. When
// the prompt passes TierAboveTokens, the *Above prices that are set apply
// to the whole call (LiteLLM's "_above_200k_tokens" rule). Overflow is an
// error, never a wrapped amount.
func (p ModelPrice) Cost(u TokenUsage) (Nanos, error) {
	if err := u.Validate(); err != nil {
		return 0, err
	}
	eff := p.effective(u.PromptTokens())
	var total Nanos
	for _, c := range [...]struct {
		n     int64
		price PerMTok
	}{
		{u.InputTokens, eff.Input}, {u.CacheReadTokens, eff.CacheRead}, {u.CacheWriteTokens, eff.CacheWrite},
		{u.CacheWrite1hTokens, eff.CacheWrite1h}, {u.OutputTokens, eff.Output},
	} {
		cost, err := c.price.Cost(c.n)
		if err != nil {
			return 0, fmt.Errorf("cost of %s usage: %w", u.Model, err)
		}
		if total, err = total.Add(cost); err != nil {
			return 0, fmt.Errorf("cost of %s usage: %w", u.Model, err)
		}
	}
	return total, nil
}

// effective returns the flat prices that apply to a call with the given
// prompt size: tier prices above the threshold, cache prices defaulted.
func (p ModelPrice) effective(promptTokens int64) ModelPrice {
	e := p
	if p.TierAboveTokens > 0 && promptTokens > p.TierAboveTokens {
		pick := func(base, above PerMTok) PerMTok {
			if above > 0 {
				return above
			}
			return base
		}
		e.Input, e.Output = pick(p.Input, p.InputAbove), pick(p.Output, p.OutputAbove)
		e.CacheRead, e.CacheWrite = pick(p.CacheRead, p.CacheReadAbove), pick(p.CacheWrite, p.CacheWriteAbove)
		e.CacheWrite1h = pick(p.CacheWrite1h, p.CacheWrite1hAbove)
	}
	if e.CacheRead == 0 {
		e.CacheRead = e.Input
	}
	if e.CacheWrite == 0 {
		e.CacheWrite = e.Input
	}
	if e.CacheWrite1h == 0 {
		e.CacheWrite1h = e.CacheWrite
	}
	return e
}
