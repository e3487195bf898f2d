package replay

import (
	"fmt"
	"os"
	"strings"

	"github.com/purser-dev/purser/enforcer"
)

// Prices prices reported token usage exactly. It wraps an
// enforcer.PriceTable and resolves the provider-prefixed model names that
// traces carry ("google/gemini-3-pro-preview", "@google/...") to the
// table's names.
type Prices struct{ Table enforcer.PriceTable }

// DefaultPrices uses the enforcer's built-in table.
func DefaultPrices() *Prices { return &Prices{Table: enforcer.DefaultPriceTable()} }

// LoadPricesFile reads a LiteLLM model_prices_and_context_window.json.
func LoadPricesFile(path string) (*Prices, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	defer f.Close()
	t, err := enforcer.LoadLiteLLM(f)
	if err != nil {
		return nil, fmt.Errorf("price table %s: %w", path, err)
	}
	return &Prices{Table: t}, nil
}

// Resolve returns the table's name for model and whether it is priced:
// the exact name first, then without a leading "@" and provider prefixes.
func (p *Prices) Resolve(model string) (string, bool) {
	if model == "" {
		return "", false
	}
	if _, ok := p.Table[model]; ok {
		return model, true
	}
	m := strings.TrimPrefix(model, "@")
	for {
		if _, ok := p.Table[m]; ok {
			return m, true
		}
		_, rest, found := strings.Cut(m, "/")
		if !found {
			return model, false
		}
		m = rest
	}
}

// Cost prices u: input, cache reads, cache writes and output tokens each
// at their own price, exactly, in nano-USD. A model without a cache price
// in the table pays the input price for that class. ok is false when the
// model is not in the table.
func (p *Prices) Cost(u Usage) (enforcer.Nanos, bool, error) {
	name, ok := p.Resolve(u.Model)
	if !ok {
		return 0, false, nil
	}
	mp := p.Table[name]
	read, write := mp.CacheRead, mp.CacheWrite
	if read == 0 {
		read = mp.Input
	}
	if write == 0 {
		write = mp.Input
	}
	var total enforcer.Nanos
	for _, tc := range [4]struct {
		n     int64
		price enforcer.PerMTok
	}{{u.Input, mp.Input}, {u.CacheRead, read}, {u.CacheWrite, write}, {u.Output, mp.Output}} {
		// Summing per-class costs rounds each class up separately; the
		// provider bills per class too, so this matches billed amounts.
		c, err := tc.price.Cost(tc.n)
		if err != nil {
			return 0, true, fmt.Errorf("cost of %s usage: %w", u.Model, err)
		}
		if total, err = total.Add(c); err != nil {
			return 0, true, err
		}
	}
	return total, true, nil
}
