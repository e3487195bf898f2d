package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/purser-dev/purser/enforcer"
)

// checkCommit settles a commit's cost source and refuses usage or a price
// source the ledger would not record (the error names the field).
func checkCommit(req enforcer.CommitRequest) (enforcer.CostSource, error) {
	source, err := enforcer.CommitSource(req.ID, req.Actual, req.Source)
	if err != nil {
		return "", err
	}
	return source, req.Validate()
}

// Extend grows a pending hold by req.Add on its account and every
// ancestor, in one transaction under the tree's lock (taken in the same
// order as Reserve's, and batched with them): all or nothing, with the
// database's clock deciding expiry. It is idempotent under
// req.ExtensionID (see enforcer.Ledger).
func (l *Ledger) Extend(ctx context.Context, req enforcer.ExtendRequest) (enforcer.Reservation, error) {
	if err := req.Validate(); err != nil {
		return enforcer.Reservation{}, err
	}
	add := int64(req.Add)
	o := &op{ctx: ctx, kind: "extend", id: req.ID, amount: &add, extID: req.ExtensionID}
	if err := l.w.do(o); err != nil {
		if unknown := (*OutcomeUnknownError)(nil); errors.As(err, &unknown) {
			return l.resolveExtend(ctx, req, err)
		}
		return enforcer.Reservation{}, l.sqlErr(err, "extend %q by %s (extension %q)", req.ID, req.Add, req.ExtensionID)
	}
	res := o.res
	switch res.status {
	case "ok":
		l.w.routes.learnTree(req.ID, res.r.account, res.root)
		return res.r.view(res.now), nil
	case "ext_exists":
		return sameExtension(req, res.r.view(res.now), enforcer.Nanos(res.eAmount))
	case "not_found":
		return enforcer.Reservation{}, fmt.Errorf("extend %q: %w", req.ID, enforcer.ErrReservationNotFound)
	case "settled":
		return enforcer.Reservation{}, fmt.Errorf("extend %q: %w: %s", req.ID, enforcer.ErrReservationSettled, res.r.view(res.now).State)
	case "too_many":
		return enforcer.Reservation{}, fmt.Errorf("extend %q: %w: it has %d extensions, the maximum", req.ID,
			enforcer.ErrInvalidReservation, enforcer.MaxExtensions)
	case "denied":
		// Returned bare, as Reserve's: its text is the user-facing deny reason.
		return enforcer.Reservation{}, &enforcer.InsufficientBudgetError{Account: res.dAccount, Estimate: req.Add,
			Remaining: enforcer.Nanos(res.dRemaining), Overdrawn: res.dOverdrawn}
	case "overflow":
		return enforcer.Reservation{}, fmt.Errorf("extend %q: pending on %q: %w: adding %s overflows",
			req.ID, res.dAccount, enforcer.ErrInvalidAmount, req.Add)
	}
	return enforcer.Reservation{}, l.dbErr(fmt.Sprintf("extend %q", req.ID), fmt.Errorf("unexpected status %q", res.status))
}

// sameExtension answers a repeated extension id: the reservation as it is
// now (Replayed) when the amount is the same, a conflict otherwise.
func sameExtension(req enforcer.ExtendRequest, r enforcer.Reservation, stored enforcer.Nanos) (enforcer.Reservation, error) {
	if err := enforcer.SameExtension(req, stored); err != nil {
		return enforcer.Reservation{}, err
	}
	r.Replayed = true
	return r, nil
}

var _ enforcer.ExtensionLookup = (*Ledger)(nil)

// ExtensionAdded says what extension extensionID added to reservation id,
// if it is recorded.
func (l *Ledger) ExtensionAdded(ctx context.Context, id, extensionID string) (enforcer.Nanos, bool, error) {
	var add int64
	var found bool
	err := l.r.query(ctx, `SELECT add_nanos FROM reservation_extensions WHERE reservation_id = $1 AND extension_id = $2`,
		[]any{id, extensionID}, func(rows pgx.Rows) error {
			found = rows.Next() // (set afresh: a failed pipeline runs this again)
			if !found {
				return rows.Err()
			}
			return rows.Scan(&add)
		})
	if err != nil {
		return 0, false, l.dbErr(fmt.Sprintf("extension %q of %q", extensionID, id), err)
	}
	return enforcer.Nanos(add), found, nil
}

// selectExtension reads a reservation ($1) with the amount of one of its
// extensions ($2; NULL when there is none), at now ($3).
const selectExtension = `SELECT ` + resColumns + `, purser_now($3),
	(SELECT add_nanos FROM reservation_extensions WHERE reservation_id = $1 AND extension_id = $2)
	FROM reservations WHERE id = $1`

// resolveExtend settles an extension whose answer was lost after it was
// sent by looking its id up (within the caller's deadline), as
// resolveReserve does: the extension found is the answer; none found
// means nothing was added (the transaction that would have added it is
// the one that records it); a failed lookup leaves the outcome unknown.
func (l *Ledger) resolveExtend(ctx context.Context, req enforcer.ExtendRequest, sendErr error) (enforcer.Reservation, error) {
	what := fmt.Sprintf("extend %q by %s (extension %q)", req.ID, req.Add, req.ExtensionID)
	if ctx.Err() != nil {
		return enforcer.Reservation{}, l.dbErr(what, sendErr)
	}
	var r resRow
	var now int64
	var stored pgtype.Int8
	var found bool
	err := l.r.query(ctx, selectExtension, []any{req.ID, req.ExtensionID, l.nowArg()}, func(rows pgx.Rows) error {
		found = rows.Next()
		if !found {
			return rows.Err()
		}
		return rows.Scan(append(r.scanDest(), &now, &stored)...)
	})
	switch {
	case err != nil:
		return enforcer.Reservation{}, l.dbErr(what, sendErr)
	case found && stored.Valid:
		// Most likely this very send added it (its answer was lost), so
		// it is not called a repeat: counted once, not never.
		res, err := sameExtension(req, r.view(now), enforcer.Nanos(stored.Int64))
		res.Replayed = false
		return res, err
	}
	return enforcer.Reservation{}, fmt.Errorf("postgres ledger %s is %w (failing closed): %s: the answer was lost and "+
		"a lookup found no such extension, so nothing was added: %w", l.where, ErrUnavailable, what, errors.Unwrap(sendErr))
}
