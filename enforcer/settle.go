package enforcer

import (
	"context"
	"fmt"
	"strings"
)

// Commit settles a reservation through the ledger. Token usage, when
// given, is validated and priced with the LLM rule's Pricer (the same
// prices estimates use); without req.Actual that price is the charge
// (CostActual), beside it the usage is only recorded. A model the table
// does not know is priced by the Pricer's fallback and the recorded
// PriceSource says so (IsFallbackPriceSource). A successful commit teaches
// calibration how the actual compared with the hold's base estimate.
func (e *Enforcer) Commit(ctx context.Context, req CommitRequest) (Reservation, error) {
	if req.Usage != nil {
		if err := e.priceUsage(&req); err != nil {
			return Reservation{}, err
		}
	}
	r, err := e.ledger.CommitWith(ctx, req)
	if err != nil {
		return r, err
	}
	e.learn(r)
	return r, nil
}

func (e *Enforcer) priceUsage(req *CommitRequest) error {
	u := *req.Usage
	if err := u.Validate(); err != nil {
		return err
	}
	if u.Model == "" {
		return &UsageError{Field: "usage.model", Reason: "is required to price token usage"}
	}
	q := e.cfg.LLM.Prices.PriceOf(u.Model)
	cost, err := q.Price.Cost(u)
	if err != nil {
		return &UsageError{Field: "usage", Reason: fmt.Sprintf("priced as %s: %v", q.Source, err)}
	}
	req.Usage, req.PriceSource = &u, q.Source
	if req.Actual == nil {
		req.Actual, req.Source = &cost, CostActual
	}
	return nil
}

// IsFallbackPriceSource reports whether a price source names a fallback
// rule (the model was not in the price table).
func IsFallbackPriceSource(s string) bool { return strings.HasPrefix(s, "fallback:") }

// Extend grows a pending hold (see Ledger.Extend).
func (e *Enforcer) Extend(ctx context.Context, req ExtendRequest) (Reservation, error) {
	return e.ledger.Extend(ctx, req)
}
