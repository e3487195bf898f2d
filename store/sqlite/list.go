package sqlite

import (
	"context"
	"errors"

	"github.com/purser-dev/purser/enforcer"
)

// Reservations is a scaffold (issue 11, item 19); replaced by the real query.
func (l *Ledger) Reservations(ctx context.Context, f enforcer.ReservationFilter) ([]enforcer.Reservation, error) {
	return nil, errors.ErrUnsupported
}
