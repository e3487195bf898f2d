package sqlite

import (
	"context"
	"fmt"

	"github.com/purser-dev/purser/enforcer"
)

// Reservations lists one account's remembered reservations, oldest first
// (the reservations_account index), on the read pool.
func (l *Ledger) Reservations(ctx context.Context, f enforcer.ReservationFilter) ([]enforcer.Reservation, error) {
	f, err := f.Validate()
	if err != nil {
		return nil, err
	}
	var out []enforcer.Reservation
	err = l.readTx(ctx, func(tx readTx) error {
		exists, err := tx.QueryContext(ctx, selectSnapshotOne, f.Account)
		if err != nil {
			return err
		}
		found := exists.Next()
		if err := exists.Close(); err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("list reservations: account %q: %w", f.Account, enforcer.ErrAccountNotFound)
		}
		now := l.now()
		rows, err := tx.QueryContext(ctx, selectAccountRes, f.Account, string(f.State), now, f.Limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, _, err := scanRes(rows)
			if err != nil {
				return err
			}
			out = append(out, r.view(now))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, l.sqlErr(err, "list reservations of %q", f.Account)
	}
	return out, nil
}
