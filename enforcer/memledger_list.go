package enforcer

import (
	"context"
	"errors"
)

// Reservations is a scaffold (issue 11, item 19); replaced by the real scan.
func (l *MemoryLedger) Reservations(ctx context.Context, f ReservationFilter) ([]Reservation, error) {
	return nil, errors.ErrUnsupported
}
