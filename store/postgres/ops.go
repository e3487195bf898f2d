package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/purser-dev/purser/enforcer"
)

// resRow is a reservation row as stored.
type resRow struct {
	id, account, tool string
	estimate, ttl     int64
	state             string
	created, expires  int64
	settled           pgtype.Int8
	charged           int64
	source            string
	late              bool
	fp                string
	extended, base    int64
	calKey, price     string
	umodel            pgtype.Text // NULL: the commit carried no usage
	usage             []int64     // input, output, cache read, cache write, cache write 1h
}

const resColumns = `id, account_id, tool, estimate_nanos, ttl_nanos, state, created_at, expires_at, settled_at,
	charged_nanos, cost_source, late, fingerprint, extended_nanos, base_estimate_nanos, calibration_key, price_source,
	usage_model, ` + usageArray

// usageArray is a row's usage as purser_apply returns it (r_usage).
const usageArray = `CASE WHEN usage_model IS NOT NULL THEN ARRAY[usage_input_tokens, usage_output_tokens,
	usage_cache_read_tokens, usage_cache_write_tokens, usage_cache_write_1h_tokens] END`

func (r *resRow) scanDest() []any {
	return []any{&r.id, &r.account, &r.tool, &r.estimate, &r.ttl, &r.state, &r.created, &r.expires,
		&r.settled, &r.charged, &r.source, &r.late, &r.fp, &r.extended, &r.base, &r.calKey, &r.price, &r.umodel, &r.usage}
}

// replay is view for the answer to a repeated commit, release or
// extension: nothing changed now, and the answer says so.
func (r resRow) replay(now int64) enforcer.Reservation {
	v := r.view(now)
	v.Replayed = true
	return v
}

// view is the reservation as callers see it at now: a hold past its expiry
// reads as expired even before a write to its tree marked it.
func (r resRow) view(now int64) enforcer.Reservation {
	settled := r.settled
	if r.state == string(enforcer.StatePending) && r.expires <= now {
		r.state, settled = string(enforcer.StateExpired), pgtype.Int8{Int64: r.expires, Valid: true}
	}
	out := enforcer.Reservation{
		ID: r.id, Account: r.account, Tool: r.tool, Estimate: enforcer.Nanos(r.estimate),
		State: enforcer.ReservationState(r.state), CreatedAt: fromNanos(r.created), ExpiresAt: fromNanos(r.expires),
		Charged: enforcer.Nanos(r.charged), CostSource: enforcer.CostSource(r.source), Late: r.late, Fingerprint: r.fp,
		Extended: enforcer.Nanos(r.extended), BaseEstimate: enforcer.Nanos(r.base), CalibrationKey: r.calKey, PriceSource: r.price,
	}
	if settled.Valid {
		out.SettledAt = fromNanos(settled.Int64)
	}
	if r.umodel.Valid && len(r.usage) == 5 {
		out.Usage = &enforcer.TokenUsage{Model: r.umodel.String, InputTokens: r.usage[0], OutputTokens: r.usage[1],
			CacheReadTokens: r.usage[2], CacheWriteTokens: r.usage[3], CacheWrite1hTokens: r.usage[4]}
	}
	return out
}

// Reserve holds the estimate on the account and every ancestor.
func (l *Ledger) Reserve(ctx context.Context, req enforcer.ReserveRequest) (enforcer.Reservation, error) {
	if err := req.Validate(); err != nil {
		return enforcer.Reservation{}, err
	}
	est := int64(req.Estimate)
	o := &op{ctx: ctx, kind: "reserve", id: req.ID, account: req.Account, tool: req.Tool, amount: &est, ttl: int64(req.TTL), fp: req.Fingerprint,
		base: int64(req.BaseEstimate), calKey: req.CalibrationKey}
	if err := l.w.do(o); err != nil {
		if unknown := (*OutcomeUnknownError)(nil); errors.As(err, &unknown) {
			return l.resolveReserve(ctx, req, err)
		}
		return enforcer.Reservation{}, l.sqlErr(err, "reserve %q on account %q", req.ID, req.Account)
	}
	res := o.res
	switch res.status {
	case "ok":
		l.w.routes.learnTree(req.ID, req.Account, res.root)
		return res.r.view(res.now), nil
	case "exists":
		if err := enforcer.SameRequest(res.r.view(res.now), time.Duration(res.r.ttl), req); err != nil {
			return enforcer.Reservation{}, err
		}
		return res.r.view(res.now), nil
	case "account_not_found":
		return enforcer.Reservation{}, fmt.Errorf("reserve %q: account %q: %w", req.ID, req.Account, enforcer.ErrAccountNotFound)
	case "denied":
		// Returned bare: its text is the user-facing deny reason.
		return enforcer.Reservation{}, &enforcer.InsufficientBudgetError{Account: res.dAccount, Estimate: req.Estimate,
			Remaining: enforcer.Nanos(res.dRemaining), Overdrawn: res.dOverdrawn}
	case "overflow":
		return enforcer.Reservation{}, fmt.Errorf("reserve %q on account %q: pending on %q: %w: adding %s overflows",
			req.ID, req.Account, res.dAccount, enforcer.ErrInvalidAmount, req.Estimate)
	}
	return enforcer.Reservation{}, l.dbErr(fmt.Sprintf("reserve %q", req.ID), fmt.Errorf("unexpected status %q", res.status))
}

// resolveReserve settles a reserve whose answer was lost after it was
// sent by looking the id up (within the caller's deadline): the hold found
// with the request's fields is the answer; no hold means nothing is held;
// a failed lookup leaves the outcome unknown (an *OutcomeUnknownError,
// which wraps ErrUnavailable): the hold may exist, and a retry with the
// same id or a lookup resolves it later.
func (l *Ledger) resolveReserve(ctx context.Context, req enforcer.ReserveRequest, sendErr error) (enforcer.Reservation, error) {
	what := fmt.Sprintf("reserve %q on account %q", req.ID, req.Account)
	if ctx.Err() != nil {
		return enforcer.Reservation{}, l.dbErr(what, sendErr)
	}
	r, err := l.Reservation(ctx, req.ID)
	switch {
	case err == nil:
		if err := enforcer.SameRequest(r, r.ExpiresAt.Sub(r.CreatedAt), req); err != nil {
			return enforcer.Reservation{}, err
		}
		l.w.routes.learnRes(req.ID, req.Account)
		return r, nil
	case errors.Is(err, enforcer.ErrReservationNotFound):
		return enforcer.Reservation{}, fmt.Errorf("postgres ledger %s is %w (failing closed): %s: the answer was lost and "+
			"a lookup found no hold, so nothing is held: %w", l.where, ErrUnavailable, what, errors.Unwrap(sendErr))
	}
	return enforcer.Reservation{}, l.dbErr(what, sendErr)
}

// Commit charges a reservation and releases the rest of its hold.
func (l *Ledger) Commit(ctx context.Context, id string, actual *enforcer.Nanos, source enforcer.CostSource) (enforcer.Reservation, error) {
	return l.CommitWith(ctx, enforcer.CommitRequest{ID: id, Actual: actual, Source: source})
}

// CommitWith charges a reservation (its whole hold, Estimate + Extended,
// when req.Actual is nil), releases the rest of its hold, and records the
// usage and price source the charge was priced from.
func (l *Ledger) CommitWith(ctx context.Context, req enforcer.CommitRequest) (enforcer.Reservation, error) {
	id, actual := req.ID, req.Actual
	source, err := checkCommit(req)
	if err != nil {
		return enforcer.Reservation{}, err
	}
	o := &op{ctx: ctx, kind: "commit", id: id, source: string(source), price: req.PriceSource, usage: req.Usage}
	if actual != nil {
		a := int64(*actual)
		o.amount = &a
	}
	if err := l.w.do(o); err != nil {
		return enforcer.Reservation{}, l.sqlErr(err, "commit %q", id)
	}
	res := o.res
	switch res.status {
	case "ok":
		l.w.routes.learnRes(id, "")
		l.notify(l.commitAlerts(res))
		return res.r.view(res.now), nil
	case "not_found":
		return enforcer.Reservation{}, fmt.Errorf("commit %q: %w", id, enforcer.ErrReservationNotFound)
	case "overflow":
		return enforcer.Reservation{}, fmt.Errorf("commit %q: committed on %q: %w: adding the charge overflows",
			id, res.dAccount, enforcer.ErrInvalidAmount)
	case "settled":
		r := res.r
		charge := r.estimate + r.extended
		if actual != nil {
			charge = int64(*actual)
		}
		if r.state == string(enforcer.StateCommitted) {
			if r.charged == charge && r.source == string(source) {
				return r.replay(res.now), nil // an idempotent repeat
			}
			return enforcer.Reservation{}, fmt.Errorf("commit %q: %w: committed %s (%s) before",
				id, enforcer.ErrReservationSettled, enforcer.Nanos(r.charged), r.source)
		}
		return enforcer.Reservation{}, fmt.Errorf("commit %q: %w: released before", id, enforcer.ErrReservationSettled)
	}
	return enforcer.Reservation{}, l.dbErr(fmt.Sprintf("commit %q", id), fmt.Errorf("unexpected status %q", res.status))
}

// commitAlerts derives the threshold and overdraft alerts of a commit from
// the accounts it charged: their committed totals went from new-charge to
// new under the tree lock, so each crossing is reported by exactly one
// commit, whichever host made it.
func (l *Ledger) commitAlerts(res opResult) []enforcer.Alert {
	var alerts []enforcer.Alert
	charge := enforcer.Nanos(res.r.charged)
	at := fromNanos(res.now)
	for i := range res.aIDs { // the charged account first, then up to the root
		lim := int8Ptr(res.aLimits[i])
		c := enforcer.Nanos(res.aCommitted[i])
		alerts = l.thresholds.Crossings(alerts, res.aIDs[i], c-charge, lim, c, lim, at)
	}
	return alerts
}

func int8Ptr(v pgtype.Int8) *enforcer.Nanos {
	if !v.Valid {
		return nil
	}
	n := enforcer.Nanos(v.Int64)
	return &n
}

// Release ends a pending reservation at no cost. Releasing a released
// one again returns it unchanged (a retry after a lost reply); a
// committed or expired one is settled otherwise and refused.
func (l *Ledger) Release(ctx context.Context, id string) (enforcer.Reservation, error) {
	o := &op{ctx: ctx, kind: "release", id: id}
	if err := l.w.do(o); err != nil {
		return enforcer.Reservation{}, l.sqlErr(err, "release %q", id)
	}
	res := o.res
	switch res.status {
	case "ok":
		l.w.routes.learnRes(id, "")
		return res.r.view(res.now), nil
	case "not_found":
		return enforcer.Reservation{}, fmt.Errorf("release %q: %w", id, enforcer.ErrReservationNotFound)
	case "settled":
		if res.r.state == string(enforcer.StateReleased) {
			return res.r.replay(res.now), nil // a retry after a lost reply
		}
		return enforcer.Reservation{}, fmt.Errorf("release %q: %w: %s", id, enforcer.ErrReservationSettled, res.r.state)
	}
	return enforcer.Reservation{}, l.dbErr(fmt.Sprintf("release %q", id), fmt.Errorf("unexpected status %q", res.status))
}

// ChargeRequest is a cost incurred without a hold in this ledger: a call
// admitted in memory while the database was unreachable (FailOpen).
type ChargeRequest struct {
	ID, Account, Tool string
	Charged           enforcer.Nanos
	Source            enforcer.CostSource // "" means actual
	// The hold's estimate, TTL (0: 1ns) and fingerprint, so the row is the
	// reservation the client made and a retry of its reserve is a retry.
	Estimate    enforcer.Nanos
	TTL         time.Duration
	Fingerprint string
	// Recorded only, as Reserve, Extend and CommitWith record them.
	Extended       enforcer.Nanos
	BaseEstimate   enforcer.Nanos
	CalibrationKey string
	Usage          *enforcer.TokenUsage
	PriceSource    string
}

// ChargeConflictError: the id of a Charge exists in the ledger and is not
// that same charge; Existing is the reservation stored under it (FailOpen
// decides whether it is its own hold).
type ChargeConflictError struct {
	ID       string
	Existing enforcer.Reservation
}

func (e *ChargeConflictError) Error() string {
	return fmt.Sprintf("charge %q: %s: the ledger holds a %s reservation on %q charged %s", e.ID,
		enforcer.ErrReservationConflict, e.Existing.State, e.Existing.Account, e.Existing.Charged)
}

func (e *ChargeConflictError) Unwrap() error { return enforcer.ErrReservationConflict }

// Charge records c as a committed reservation with the caller's id,
// charged in full without a budget check (the money was spent) and raising
// alerts like a commit. Repeating it returns the reservation; an id stored
// otherwise is a *ChargeConflictError.
func (l *Ledger) Charge(ctx context.Context, c ChargeRequest) (enforcer.Reservation, error) {
	switch {
	case c.ID == "" || c.Account == "":
		return enforcer.Reservation{}, fmt.Errorf("charge %q on account %q: %w: empty id or account", c.ID, c.Account, enforcer.ErrInvalidReservation)
	case c.Charged < 0:
		return enforcer.Reservation{}, fmt.Errorf("charge %q: %w: negative cost %s", c.ID, enforcer.ErrInvalidAmount, c.Charged)
	case c.Estimate < 0 || c.Extended < 0 || c.TTL < 0 || c.TTL > enforcer.MaxReservationTTL:
		return enforcer.Reservation{}, fmt.Errorf("charge %q: %w: estimate %s, extended %s, ttl %s", c.ID, enforcer.ErrInvalidReservation,
			c.Estimate, c.Extended, c.TTL)
	case c.Source == "":
		c.Source = enforcer.CostActual
	}
	amount, est := int64(c.Charged), int64(c.Estimate)
	o := &op{ctx: ctx, kind: "charge", id: c.ID, account: c.Account, tool: c.Tool, amount: &amount, estimate: &est,
		ttl: max(int64(c.TTL), 1), source: string(c.Source), fp: c.Fingerprint, extended: int64(c.Extended), base: int64(c.BaseEstimate),
		calKey: c.CalibrationKey, price: c.PriceSource, usage: c.Usage}
	if err := l.w.do(o); err != nil {
		return enforcer.Reservation{}, l.sqlErr(err, "charge %q on account %q", c.ID, c.Account)
	}
	res := o.res
	switch res.status {
	case "ok":
		l.notify(l.commitAlerts(res))
		return res.r.view(res.now), nil
	case "exists":
		r := res.r
		if r.account == c.Account && r.tool == c.Tool && r.state == string(enforcer.StateCommitted) && r.charged == amount && r.source == string(c.Source) {
			return r.view(res.now), nil
		}
		return enforcer.Reservation{}, &ChargeConflictError{ID: c.ID, Existing: r.view(res.now)}
	case "account_not_found":
		return enforcer.Reservation{}, fmt.Errorf("charge %q: account %q: %w", c.ID, c.Account, enforcer.ErrAccountNotFound)
	case "overflow":
		return enforcer.Reservation{}, fmt.Errorf("charge %q: committed on %q: %w: adding %s overflows", c.ID, res.dAccount, enforcer.ErrInvalidAmount, c.Charged)
	}
	return enforcer.Reservation{}, l.dbErr(fmt.Sprintf("charge %q", c.ID), fmt.Errorf("unexpected status %q", res.status))
}
