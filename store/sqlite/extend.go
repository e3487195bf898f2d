package sqlite

import (
	"context"
	"errors"

	"github.com/purser-dev/purser/enforcer"
)

// CommitWith: placeholder until the store records usage.
func (l *Ledger) CommitWith(ctx context.Context, req enforcer.CommitRequest) (enforcer.Reservation, error) {
	return l.Commit(ctx, req.ID, req.Actual, req.Source)
}

// Extend: placeholder.
func (l *Ledger) Extend(context.Context, enforcer.ExtendRequest) (enforcer.Reservation, error) {
	return enforcer.Reservation{}, errors.New("sqlite: Extend not implemented yet")
}
