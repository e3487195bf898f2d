package enforcer

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// AccountOptions describe an account in terms of the seed's strategies.
// At most one of Limit, Tier and PercentOfParent may be set.
type AccountOptions struct {
	ID     string
	Parent string
	Limit  *Nanos
	// Tier names a limit from Config.Tiers (e.g. "LOW"); it is also
	// recorded as the "tier" label.
	Tier string
	// PercentOfParent creates a hierarchical child with that share of the
	// parent's limit, fixed at creation.
	PercentOfParent int
	// Supervisor caps the sum of the children's fixed limits at this
	// account's own limit.
	Supervisor bool
	Labels     map[string]string
}

// ErrUnknownTier is returned for a tier name that is not configured.
var ErrUnknownTier = errors.New("unknown tier")

// CreateAccount resolves tiers and creates the account in the ledger. An
// id of the form "P/x" must be created under P or an account inside P
// (CheckAccountName): scopes follow names and budgets follow parents, so a
// name may not claim a parent it does not have.
func (e *Enforcer) CreateAccount(ctx context.Context, o AccountOptions) (Snapshot, error) {
	if err := CheckAccountName(o.ID, o.Parent); err != nil {
		return Snapshot{}, err
	}
	set := 0
	for _, b := range []bool{o.Limit != nil, o.Tier != "", o.PercentOfParent != 0} {
		if b {
			set++
		}
	}
	if set > 1 {
		return Snapshot{}, fmt.Errorf("account %q: set only one of limit, tier and percent_of_parent: %w", o.ID, ErrInvalidAccount)
	}
	labels := make(map[string]string, len(o.Labels)+1)
	for k, v := range o.Labels {
		labels[k] = v
	}
	limit := o.Limit
	if o.Tier != "" {
		l, ok := e.cfg.Tiers[o.Tier]
		if !ok {
			return Snapshot{}, fmt.Errorf("account %q: tier %q (known: %v): %w", o.ID, o.Tier, sortedKeys(e.cfg.Tiers), ErrUnknownTier)
		}
		limit, labels["tier"] = &l, o.Tier
	}
	return e.ledger.CreateAccount(ctx, AccountSpec{ID: o.ID, Parent: o.Parent, Limit: limit,
		PercentOfParent: o.PercentOfParent, AllocateChildren: o.Supervisor, Labels: labels})
}

// SessionAccount returns the per-session account "<parent>/<session>",
// creating it (with limit, nil for drawing on the parent only) on first use.
// A session may not contain '/', so ("team", "alice/s1") and
// ("team/alice", "s1") cannot name one account; an existing account is
// returned only if it is the parent's own child.
func (e *Enforcer) SessionAccount(ctx context.Context, parent, session string, limit *Nanos) (string, error) {
	if parent == "" || session == "" {
		return "", fmt.Errorf("session account: parent and session must be non-empty: %w", ErrInvalidAccount)
	}
	if strings.Contains(session, "/") {
		return "", fmt.Errorf("session %q of %q: %w: a session may not contain '/'", session, parent, ErrInvalidAccount)
	}
	id := parent + "/" + session
	_, err := e.ledger.CreateAccount(ctx, AccountSpec{ID: id, Parent: parent, Limit: limit, Labels: map[string]string{"session": session}})
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, ErrAccountExists) {
		return "", err
	}
	snap, err := e.ledger.Snapshot(ctx, id)
	if err != nil {
		return "", fmt.Errorf("session account %q: %w", id, err)
	}
	if snap.Parent != parent {
		return "", fmt.Errorf("session account %q: %w: it exists under %q, not %q", id, ErrInvalidAccount, snap.Parent, parent)
	}
	return id, nil
}
