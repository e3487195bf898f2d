package postgres

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
	return enforcer.Reservation{}, errors.New("postgres: Extend not implemented yet")
}

// CommitWith: placeholder.
func (f *FailOpen) CommitWith(ctx context.Context, req enforcer.CommitRequest) (enforcer.Reservation, error) {
	return f.Commit(ctx, req.ID, req.Actual, req.Source)
}

// Extend: placeholder.
func (f *FailOpen) Extend(context.Context, enforcer.ExtendRequest) (enforcer.Reservation, error) {
	return enforcer.Reservation{}, errors.New("postgres fail-open: Extend not implemented yet")
}
