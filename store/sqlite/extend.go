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
	if err := validateExtend(req); err != nil {
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
	var prev int64
	err = tx.st.findExt.QueryRowContext(tx.ctx, req.ID, req.ExtensionID).Scan(&prev)
	switch {
	case err == nil && enforcer.Nanos(prev) == req.Add:
		return r.view(now), nil
	case err == nil:
		return enforcer.Reservation{}, fmt.Errorf("extend %q: %w: extension %q added %s, now %s",
			req.ID, enforcer.ErrReservationConflict, req.ExtensionID, enforcer.Nanos(prev), req.Add)
	case !errors.Is(err, sql.ErrNoRows):
		return enforcer.Reservation{}, err
	case r.state != enforcer.StatePending:
		return enforcer.Reservation{}, fmt.Errorf("extend %q: %w: %s", req.ID, enforcer.ErrReservationSettled, r.state)
	case r.extensions >= enforcer.MaxExtensions:
		return enforcer.Reservation{}, fmt.Errorf("extend %q: %w: it has the maximum of %d extensions",
			req.ID, enforcer.ErrInvalidReservation, enforcer.MaxExtensions)
	}
	if err := l.admitExtension(tx, r, req); err != nil {
		return enforcer.Reservation{}, err
	}
	if _, err := tx.st.insertExt.ExecContext(tx.ctx, req.ID, req.ExtensionID, int64(req.Add), now); err != nil {
		return enforcer.Reservation{}, err
	}
	if _, err := tx.st.extendRes.ExecContext(tx.ctx, req.ID, int64(req.Add)); err != nil {
		return enforcer.Reservation{}, err
	}
	if _, err := tx.st.addPending.ExecContext(tx.ctx, r.account, int64(req.Add)); err != nil {
		return enforcer.Reservation{}, err
	}
	r.extended += req.Add
	r.extensions++
	return r.view(now), nil
}

// admitExtension applies Reserve's rule to the added amount: it must fit
// every account on the path, and neither a pending total nor the hold may
// overflow.
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
	if _, err := r.held().Add(req.Add); err != nil {
		return fmt.Errorf("extend %q: hold %s: %w", req.ID, r.held(), err)
	}
	return nil
}

// validateExtend checks an extension's own fields; the error wraps
// ErrInvalidReservation and names the field.
func validateExtend(req enforcer.ExtendRequest) error {
	var why string
	switch {
	case req.ID == "":
		why = "empty reservation id"
	case req.ExtensionID == "":
		why = "extension_id is required"
	case len(req.ExtensionID) > enforcer.MaxExtensionIDLen:
		why = fmt.Sprintf("extension_id of %d bytes is above the maximum %d", len(req.ExtensionID), enforcer.MaxExtensionIDLen)
	case req.Add <= 0:
		why = fmt.Sprintf("add %s is not positive", req.Add)
	default:
		return nil
	}
	return fmt.Errorf("extend %q: %w: %s", req.ID, enforcer.ErrInvalidReservation, why)
}

// validateCommit checks what a commit records beside the charge.
func validateCommit(req enforcer.CommitRequest) error {
	if len(req.PriceSource) > enforcer.MaxPriceSourceLen {
		return fmt.Errorf("commit %q: %w: price_source of %d bytes is above the maximum %d",
			req.ID, enforcer.ErrInvalidReservation, len(req.PriceSource), enforcer.MaxPriceSourceLen)
	}
	if req.Usage != nil {
		if err := req.Usage.Validate(); err != nil {
			return fmt.Errorf("commit %q: %w", req.ID, err)
		}
	}
	return nil
}

// validateReserve is ReserveRequest.Validate plus the bounds on what a
// reservation records for calibration.
func validateReserve(req enforcer.ReserveRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	var why string
	switch {
	case req.BaseEstimate < 0:
		why = "negative base estimate " + req.BaseEstimate.String()
	case len(req.CalibrationKey) > enforcer.MaxCalibrationKeyLen:
		why = fmt.Sprintf("calibration key of %d bytes is above the maximum %d", len(req.CalibrationKey), enforcer.MaxCalibrationKeyLen)
	default:
		return nil
	}
	return fmt.Errorf("reserve %q on account %q: %w: %s", req.ID, req.Account, enforcer.ErrInvalidReservation, why)
}
