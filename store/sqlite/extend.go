package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/purser-dev/purser/enforcer"
)

// Extend grows a pending hold on the account and every ancestor, in one
// write like Reserve (same batch, same check on the path's totals).
func (l *Ledger) Extend(ctx context.Context, req enforcer.ExtendRequest) (enforcer.Reservation, error) {
	if err := req.Validate(); err != nil {
		return enforcer.Reservation{}, err
	}
	var out enforcer.Reservation
	err := l.w.do(ctx, func(tx *wtx) error {
		var err error
		out, err = l.extend(tx, req)
		return l.sqlErr(err, "extend %q by %s (extension %q)", req.ID, req.Add, req.ExtensionID)
	})
	return out, err
}

func (l *Ledger) extend(tx *wtx, req enforcer.ExtendRequest) (enforcer.Reservation, error) {
	now := l.now()
	if err := l.expire(tx, now); err != nil {
		return enforcer.Reservation{}, err
	}
	r, found, err := scanRes(tx.st.getRes.QueryRowContext(tx.ctx, req.ID))
	switch {
	case err != nil:
		return enforcer.Reservation{}, err
	case !found:
		return enforcer.Reservation{}, fmt.Errorf("extend %q: %w", req.ID, enforcer.ErrReservationNotFound)
	}
	// A known extension id is a retry whatever the state is now.
	if prev, known, err := priorExtension(tx, req); err != nil || known {
		if err == nil {
			err = enforcer.SameExtension(req, prev)
		}
		if err != nil {
			return enforcer.Reservation{}, err
		}
		return r.replay(now), nil
	}
	if err := enforcer.ExtendAllowed(r.view(now), r.extensions, req.Add); err != nil {
		return enforcer.Reservation{}, err
	}
	if err := l.admitExtension(tx, r, req); err != nil {
		return enforcer.Reservation{}, err
	}
	if err := recordExtension(tx, r.account, req, now); err != nil {
		return enforcer.Reservation{}, err
	}
	r.extended += req.Add
	r.extensions++
	return r.view(now), nil
}

var _ enforcer.ExtensionLookup = (*Ledger)(nil)

// ExtensionAdded says what extension extensionID added to reservation id,
// if it is recorded (read from the read pool).
func (l *Ledger) ExtensionAdded(ctx context.Context, id, extensionID string) (enforcer.Nanos, bool, error) {
	var add int64
	err := l.read.QueryRowContext(ctx, `SELECT add_nanos FROM reservation_extensions WHERE reservation_id = ?1 AND extension_id = ?2`,
		id, extensionID).Scan(&add)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, l.dbErr(fmt.Sprintf("extension %q of %q", extensionID, id), err)
	}
	return enforcer.Nanos(add), true, nil
}

// priorExtension is what extension req.ExtensionID of the reservation
// added, if it exists.
func priorExtension(tx *wtx, req enforcer.ExtendRequest) (enforcer.Nanos, bool, error) {
	var prev int64
	err := tx.st.findExt.QueryRowContext(tx.ctx, req.ID, req.ExtensionID).Scan(&prev)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return enforcer.Nanos(prev), err == nil, err
}

// recordExtension writes an admitted extension: its row, the hold and
// the pending totals of the account's path.
func recordExtension(tx *wtx, account string, req enforcer.ExtendRequest, now int64) error {
	if _, err := tx.st.insertExt.ExecContext(tx.ctx, req.ID, req.ExtensionID, int64(req.Add), now); err != nil {
		return err
	}
	if _, err := tx.st.extendRes.ExecContext(tx.ctx, req.ID, int64(req.Add)); err != nil {
		return err
	}
	_, err := tx.st.addPending.ExecContext(tx.ctx, account, int64(req.Add))
	return err
}

// admitExtension applies Reserve's rule to the added amount: it must fit
// every account on the path, and no pending total may overflow.
func (l *Ledger) admitExtension(tx *wtx, r resRow, req enforcer.ExtendRequest) error {
	path, err := scanPath(tx.st.path.QueryContext(tx.ctx, r.account))
	if err != nil {
		return err
	}
	if len(path) == 0 { // accounts are never deleted; a hold's account exists
		return fmt.Errorf("extend %q: account %q: %w", req.ID, r.account, enforcer.ErrAccountNotFound)
	}
	if err := admit(path, req.Add); err != nil {
		if _, ok := err.(*enforcer.InsufficientBudgetError); ok {
			return err
		}
		return fmt.Errorf("extend %q on account %q: %w", req.ID, r.account, err)
	}
	return nil
}
