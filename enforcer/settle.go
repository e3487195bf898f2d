package enforcer

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Commit settles a reservation through the ledger. Token usage, when
// given, is validated and priced with the LLM rule's Pricer (the same
// prices estimates use); without req.Actual that price is the charge
// (CostActual), beside it the usage is only recorded. A model the table
// does not know is priced by the Pricer's fallback and the recorded
// PriceSource says so (IsFallbackPriceSource). A successful commit (not a
// Replayed repeat) teaches calibration how the actual compared with the
// hold's base estimate.
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
	if !r.Replayed { // a repeat taught calibration the first time
		e.learn(r)
	}
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

// ErrPolicyDenied: a policy refused an extension (a *PolicyDeniedError).
var ErrPolicyDenied = errors.New("policy denied the extension")

// PolicyDeniedError is an extension the policy layer refused. Like the
// budget deny (*InsufficientBudgetError) it is a deny, not a failure:
// nothing was added, and a streaming call stops there.
type PolicyDeniedError struct {
	Decision Decision // Verdict Deny, Layer LayerPolicy, Policy and Reason
}

func (e *PolicyDeniedError) Error() string { return e.Decision.Reason }

func (e *PolicyDeniedError) Unwrap() error { return ErrPolicyDenied }

// Extend grows a pending hold (see Ledger.Extend) after the policy layer
// admits the grown hold: policies see an extension as a call of the
// reservation's tool on its account, with no params, estimated at the
// hold it would become (Held() + Add), so a per-call cap cannot be passed
// by reserving little and extending much. A policy deny, or an ask (a
// running call cannot wait for a human), is a *PolicyDeniedError; a
// failing policy follows its fail mode.
func (e *Enforcer) Extend(ctx context.Context, req ExtendRequest) (Reservation, error) {
	if err := e.admitExtension(ctx, req); err != nil {
		return Reservation{}, err
	}
	return e.ledger.Extend(ctx, req)
}

// ExtensionLookup is implemented by ledgers that can say whether an
// extension id is already recorded on a reservation (and what it added).
// Enforcer.Extend leaves such a retry to the ledger rather than run the
// policies again on a hold that already includes it.
type ExtensionLookup interface {
	ExtensionAdded(ctx context.Context, id, extensionID string) (add Nanos, known bool, err error)
}

// knownExtension reports whether req retries a recorded extension. A
// failed lookup counts as unknown: the policies then run, which is safe.
func (e *Enforcer) knownExtension(ctx context.Context, req ExtendRequest) bool {
	lk, ok := e.ledger.(ExtensionLookup)
	if !ok {
		return false
	}
	_, known, err := lk.ExtensionAdded(ctx, req.ID, req.ExtensionID)
	return err == nil && known
}

// SourceExtension is the estimate source policies see for an extension.
const SourceExtension = "extension"

// admitExtension runs the policies on the hold req would grow. A hold
// that is not pending, or whose growth overflows, is left to the ledger,
// which refuses it (or answers a retry) in its own words.
func (e *Enforcer) admitExtension(ctx context.Context, req ExtendRequest) error {
	policies := e.currentPolicies()
	if len(policies) == 0 || req.Add <= 0 {
		return nil
	}
	if e.knownExtension(ctx, req) {
		return nil // a retry: admitted the first time, the ledger answers it
	}
	r, err := e.ledger.Reservation(ctx, req.ID)
	if err != nil {
		return fmt.Errorf("extend %q: %w", req.ID, err)
	}
	grown, err := r.Held().Add(req.Add)
	if r.State != StatePending || err != nil {
		return nil
	}
	call := Call{Account: r.Account, Tool: r.Tool}
	var snap Snapshot
	if needsBudget(policies) {
		if snap, err = e.ledger.Snapshot(ctx, r.Account); err != nil {
			return fmt.Errorf("extend %q on account %q: %w", req.ID, r.Account, err)
		}
	}
	d := Decision{Estimate: Estimate{Nanos: grown, Source: SourceExtension}}
	e.runPolicies(ctx, &d, policies, PolicyInput{Call: call, Estimate: d.Estimate, Budget: snap}, false)
	if err := ctx.Err(); err != nil {
		return err
	}
	switch d.Verdict {
	case Deny:
		return &PolicyDeniedError{Decision: d}
	case Ask:
		d.Verdict, d.Reason = Deny, fmt.Sprintf("%s: an extension cannot wait for a human approval (the call is running); reserve again with an approval", d.Reason)
		return &PolicyDeniedError{Decision: d}
	}
	return nil
}
