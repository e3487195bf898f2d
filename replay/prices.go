package replay

import (
	"fmt"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/pricing"
)

// DefaultPrices is the price table the engine uses by default: the
// embedded LiteLLM snapshot (package pricing).
func DefaultPrices() enforcer.Pricer {
	t, err := pricing.Embedded(pricing.Options{})
	if err != nil {
		panic(err) // the embedded snapshot is compiled in and tested to load
	}
	return t
}

// LoadPricesFile reads a LiteLLM model_prices_and_context_window.json; it
// replaces the snapshot.
func LoadPricesFile(path string) (enforcer.Pricer, error) {
	t, err := pricing.LoadFile(path, pricing.Options{})
	if err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	return t, nil
}

// Resolve returns the table entry model resolves to (provider prefixes,
// dated versions: see package pricing) and whether the table prices it;
// a model priced only by the fallback rule is returned as given, false.
func Resolve(p enforcer.Pricer, model string) (string, bool) {
	if model == "" {
		return "", false
	}
	q := p.PriceOf(model)
	if q.Fallback {
		return model, false
	}
	return q.Model, true
}

// TokenUsage is u in the enforcer's terms.
func (u Usage) TokenUsage() enforcer.TokenUsage {
	return enforcer.TokenUsage{Model: u.Model, InputTokens: u.Input, OutputTokens: u.Output, CacheReadTokens: u.CacheRead,
		CacheWriteTokens: u.CacheWrite, CacheWrite1hTokens: u.CacheWrite1h}
}

// PriceUsage prices u exactly with enforcer.ModelPrice.Cost: each token class
// at its own price, rounded up per class as providers bill. ok is false
// when the table does not know the model: a fallback price is a guess,
// not an actual cost, so the step keeps no actual.
func PriceUsage(p enforcer.Pricer, u Usage) (enforcer.Nanos, bool, error) {
	if u.Model == "" {
		return 0, false, nil
	}
	q := p.PriceOf(u.Model)
	if q.Fallback {
		return 0, false, nil
	}
	c, err := q.Price.Cost(u.TokenUsage())
	if err != nil {
		return 0, true, err
	}
	return c, true, nil
}
