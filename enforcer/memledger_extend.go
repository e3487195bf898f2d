package enforcer

import (
	"context"
	"errors"
)

// CommitWith: placeholder until the memory ledger records usage.
func (l *MemoryLedger) CommitWith(ctx context.Context, req CommitRequest) (Reservation, error) {
	return l.Commit(ctx, req.ID, req.Actual, req.Source)
}

// Extend: placeholder.
func (l *MemoryLedger) Extend(context.Context, ExtendRequest) (Reservation, error) {
	return Reservation{}, errors.New("memory ledger: Extend not implemented yet")
}
