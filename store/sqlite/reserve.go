package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// expire marks every hold overdue at now as expired and takes it off the
// totals on its path. The probe makes the common case (nothing overdue)
// one index lookup.
func (l *Ledger) expire(tx *wtx, now int64) error {
	_, err := l.expireCount(tx, now)
	return err
}

func (l *Ledger) expireCount(tx *wtx, now int64) (int, error) {
	err := tx.st.probeOverdue.QueryRowContext(tx.ctx, now).Scan(new(int))
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, l.dbErr("find expired holds", err)
	}
	if _, err := tx.st.expireTotals.ExecContext(tx.ctx, now); err != nil {
		return 0, l.dbErr("release expired holds", err)
	}
	res, err := tx.st.expireHolds.ExecContext(tx.ctx, now)
	if err != nil {
		return 0, l.dbErr("mark expired holds", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, l.dbErr("count expired holds", err)
	}
	return int(n), nil
}

// Check reports whether estimate fits the account and all its ancestors.
func (l *Ledger) Check(ctx context.Context, account string, estimate enforcer.Nanos) (enforcer.BudgetCheck, error) {
	if estimate < 0 {
		return enforcer.BudgetCheck{}, fmt.Errorf("check %q: %w: negative estimate %s", account, enforcer.ErrInvalidAmount, estimate)
	}
	var bc enforcer.BudgetCheck
	err := l.readTx(ctx, func(tx readTx) error {
		now := l.now()
		path, err := scanPath(tx.QueryContext(ctx, selectPath, account))
		if err != nil {
			return err
		}
		if len(path) == 0 {
			return fmt.Errorf("check: account %q: %w", account, enforcer.ErrAccountNotFound)
		}
		overdue, err := readOverdue(ctx, tx, now)
		if err != nil {
			return err
		}
		for i := range path {
			path[i].pending -= overdue[path[i].id]
		}
		bc = check(path, estimate)
		return nil
	})
	if err != nil {
		return enforcer.BudgetCheck{}, l.sqlErr(err, "check %q", account)
	}
	return bc, nil
}

// check folds the account's path into enforcer.PathCheck.
func check(path []acctRow, est enforcer.Nanos) enforcer.BudgetCheck {
	c := enforcer.NewPathCheck(path[0].id)
	for _, x := range path {
		c.Add(x.id, x.limit, x.committed, x.pending)
	}
	return c.Result(est)
}

// Reserve holds the estimate on the account and every ancestor.
func (l *Ledger) Reserve(ctx context.Context, req enforcer.ReserveRequest) (enforcer.Reservation, error) {
	if err := req.Validate(); err != nil {
		return enforcer.Reservation{}, err
	}
	var out enforcer.Reservation
	err := l.w.do(ctx, func(tx *wtx) error {
		var err error
		out, err = l.reserve(tx, req)
		return l.sqlErr(err, "reserve %q on account %q", req.ID, req.Account)
	})
	return out, err
}

func (l *Ledger) reserve(tx *wtx, req enforcer.ReserveRequest) (enforcer.Reservation, error) {
	now := l.now()
	if err := l.expire(tx, now); err != nil {
		return enforcer.Reservation{}, err
	}
	path, err := scanPath(tx.st.path.QueryContext(tx.ctx, req.Account))
	if err != nil {
		return enforcer.Reservation{}, err
	}
	if len(path) == 0 {
		return enforcer.Reservation{}, fmt.Errorf("reserve %q: account %q: %w", req.ID, req.Account, enforcer.ErrAccountNotFound)
	}
	prev, found, err := scanRes(tx.st.getRes.QueryRowContext(tx.ctx, req.ID))
	if err != nil {
		return enforcer.Reservation{}, err
	}
	if found {
		first := enforcer.Reservation{Account: prev.account, Tool: prev.tool, Estimate: prev.estimate, Fingerprint: prev.fingerprint}
		if err := enforcer.SameRequest(first, prev.ttl, req); err != nil {
			return enforcer.Reservation{}, err
		}
		return prev.view(now), nil
	}
	if err := admit(path, req.Estimate); err != nil {
		if _, ok := err.(*enforcer.InsufficientBudgetError); !ok {
			err = fmt.Errorf("reserve %q on account %q: %w", req.ID, req.Account, err)
		}
		return enforcer.Reservation{}, err
	}
	r := resRow{id: req.ID, account: req.Account, tool: req.Tool, estimate: req.Estimate, ttl: req.TTL,
		state: enforcer.StatePending, created: now, expires: now + int64(req.TTL), fingerprint: req.Fingerprint,
		baseEstimate: req.BaseEstimate, calibrationKey: req.CalibrationKey}
	if _, err := tx.st.insertRes.ExecContext(tx.ctx, r.id, r.account, r.tool, int64(r.estimate), int64(r.ttl),
		r.created, r.expires, r.fingerprint, int64(r.baseEstimate), r.calibrationKey); err != nil {
		return enforcer.Reservation{}, err
	}
	if _, err := tx.st.addPending.ExecContext(tx.ctx, req.Account, int64(req.Estimate)); err != nil {
		return enforcer.Reservation{}, err
	}
	return r.view(now), nil
}

// admit refuses to hold est more (a reservation or an extension) if it
// does not fit, or if a pending total would overflow. The deny is to be
// returned bare: its text is the user-facing deny reason.
func admit(path []acctRow, est enforcer.Nanos) error {
	bc := check(path, est)
	if !bc.OK {
		return &enforcer.InsufficientBudgetError{Account: bc.Account, Estimate: est, Remaining: bc.Remaining, Overdrawn: bc.Overdrawn}
	}
	for _, x := range path {
		if _, err := x.pending.Add(est); err != nil {
			return fmt.Errorf("pending on %q: %w", x.id, err)
		}
	}
	return nil
}

// Commit charges a reservation and releases the rest of its hold.
func (l *Ledger) Commit(ctx context.Context, id string, actual *enforcer.Nanos, source enforcer.CostSource) (enforcer.Reservation, error) {
	return l.CommitWith(ctx, enforcer.CommitRequest{ID: id, Actual: actual, Source: source})
}

// CommitWith is Commit recording what the charge was priced from.
func (l *Ledger) CommitWith(ctx context.Context, req enforcer.CommitRequest) (enforcer.Reservation, error) {
	source, err := enforcer.CommitSource(req.ID, req.Actual, req.Source)
	if err != nil {
		return enforcer.Reservation{}, err
	}
	if err := req.Validate(); err != nil {
		return enforcer.Reservation{}, err
	}
	req.Source = source
	var out enforcer.Reservation
	var alerts []enforcer.Alert
	err = l.w.do(ctx, func(tx *wtx) error {
		var err error
		out, alerts, err = l.commit(tx, req)
		return l.sqlErr(err, "commit %q", req.ID)
	})
	if err != nil {
		return enforcer.Reservation{}, err
	}
	l.notify(alerts)
	return out, nil
}

func (l *Ledger) commit(tx *wtx, req enforcer.CommitRequest) (enforcer.Reservation, []enforcer.Alert, error) {
	id, source := req.ID, req.Source
	now := l.clock.Now()
	nowN := now.UnixNano()
	if err := l.expire(tx, nowN); err != nil {
		return enforcer.Reservation{}, nil, err
	}
	r, found, err := scanRes(tx.st.getRes.QueryRowContext(tx.ctx, id))
	if err != nil {
		return enforcer.Reservation{}, nil, err
	}
	if !found {
		return enforcer.Reservation{}, nil, fmt.Errorf("commit %q: %w", id, enforcer.ErrReservationNotFound)
	}
	charge := r.held()
	if req.Actual != nil {
		charge = *req.Actual
	}
	switch r.state {
	case enforcer.StateCommitted:
		if r.charged == charge && r.source == source {
			return r.replay(nowN), nil, nil // an idempotent repeat
		}
		return enforcer.Reservation{}, nil, fmt.Errorf("commit %q: %w: committed %s (%s) before", id, enforcer.ErrReservationSettled, r.charged, r.source)
	case enforcer.StateReleased:
		return enforcer.Reservation{}, nil, fmt.Errorf("commit %q: %w: released before", id, enforcer.ErrReservationSettled)
	}
	path, err := scanPath(tx.st.path.QueryContext(tx.ctx, r.account))
	if err != nil {
		return enforcer.Reservation{}, nil, err
	}
	for _, x := range path {
		if _, err := x.committed.Add(charge); err != nil {
			return enforcer.Reservation{}, nil, fmt.Errorf("commit %q: committed on %q: %w", id, x.id, err)
		}
	}
	r.usage, r.priceSource = req.Usage, req.PriceSource
	return l.charge(tx, r, path, charge, source, now)
}

// charge records the commit of r (pending, or expired: late; r.usage and
// r.priceSource already the commit's) and returns the alerts it raises
// along path.
func (l *Ledger) charge(tx *wtx, r resRow, path []acctRow, charge enforcer.Nanos, source enforcer.CostSource,
	now time.Time) (enforcer.Reservation, []enforcer.Alert, error) {
	nowN := now.UnixNano()
	wasPending := r.state == enforcer.StatePending
	released := enforcer.Nanos(0)
	if wasPending {
		released = r.held()
	}
	r.state, r.charged, r.source, r.late = enforcer.StateCommitted, charge, source, !wasPending
	r.settled = sql.NullInt64{Int64: nowN, Valid: true}
	u := usageArgs(r.usage)
	if _, err := tx.st.settleRes.ExecContext(tx.ctx, r.id, string(r.state), nowN, int64(charge), string(source), r.late,
		u[0], u[1], u[2], u[3], u[4], u[5], r.priceSource); err != nil {
		return enforcer.Reservation{}, nil, err
	}
	if _, err := tx.st.charge.ExecContext(tx.ctx, r.account, int64(charge), int64(released)); err != nil {
		return enforcer.Reservation{}, nil, err
	}
	if r.tool != "" {
		if _, err := tx.st.addTool.ExecContext(tx.ctx, r.account, r.tool, int64(charge)); err != nil {
			return enforcer.Reservation{}, nil, err
		}
	}
	var alerts []enforcer.Alert
	for _, x := range path {
		alerts = l.thresholds.Crossings(alerts, x.id, x.committed, x.limit, x.committed+charge, x.limit, now)
	}
	return r.view(nowN), alerts, nil
}

// Release ends a pending reservation at no cost.
func (l *Ledger) Release(ctx context.Context, id string) (enforcer.Reservation, error) {
	var out enforcer.Reservation
	err := l.w.do(ctx, func(tx *wtx) error {
		var err error
		out, err = l.release(tx, id)
		return l.sqlErr(err, "release %q", id)
	})
	return out, err
}

func (l *Ledger) release(tx *wtx, id string) (enforcer.Reservation, error) {
	now := l.now()
	if err := l.expire(tx, now); err != nil {
		return enforcer.Reservation{}, err
	}
	r, found, err := scanRes(tx.st.getRes.QueryRowContext(tx.ctx, id))
	switch {
	case err != nil:
		return enforcer.Reservation{}, err
	case !found:
		return enforcer.Reservation{}, fmt.Errorf("release %q: %w", id, enforcer.ErrReservationNotFound)
	case r.state == enforcer.StateReleased:
		return r.replay(now), nil // a retry after a lost reply
	case r.state != enforcer.StatePending:
		return enforcer.Reservation{}, fmt.Errorf("release %q: %w: %s", id, enforcer.ErrReservationSettled, r.state)
	}
	r.state, r.settled = enforcer.StateReleased, sql.NullInt64{Int64: now, Valid: true}
	if _, err := tx.st.settleRes.ExecContext(tx.ctx, r.id, string(r.state), now, 0, "", false,
		nil, nil, nil, nil, nil, nil, ""); err != nil {
		return enforcer.Reservation{}, err
	}
	if _, err := tx.st.addPending.ExecContext(tx.ctx, r.account, -int64(r.held())); err != nil {
		return enforcer.Reservation{}, err
	}
	return r.view(now), nil
}

// Reservation returns the current state of a reservation.
func (l *Ledger) Reservation(ctx context.Context, id string) (enforcer.Reservation, error) {
	r, found, err := scanRes(l.readStmts[selectRes].QueryRowContext(ctx, id))
	switch {
	case err != nil:
		return enforcer.Reservation{}, l.dbErr(fmt.Sprintf("reservation %q", id), err)
	case !found:
		return enforcer.Reservation{}, fmt.Errorf("reservation %q: %w", id, enforcer.ErrReservationNotFound)
	}
	return r.view(l.now()), nil
}

// Snapshot returns one account's totals.
func (l *Ledger) Snapshot(ctx context.Context, account string) (enforcer.Snapshot, error) {
	snaps, err := l.snapshots(ctx, account)
	if err != nil {
		return enforcer.Snapshot{}, l.sqlErr(err, "snapshot %q", account)
	}
	if len(snaps) == 0 {
		return enforcer.Snapshot{}, fmt.Errorf("snapshot: account %q: %w", account, enforcer.ErrAccountNotFound)
	}
	return snaps[0], nil
}

// Accounts returns every account's totals, sorted by id.
func (l *Ledger) Accounts(ctx context.Context) ([]enforcer.Snapshot, error) {
	snaps, err := l.snapshots(ctx, "")
	if err != nil {
		return nil, l.sqlErr(err, "accounts")
	}
	return snaps, nil
}

// snapshots reads one account (or all) in one read transaction, so the
// totals and the overdue holds discounted from them are consistent.
func (l *Ledger) snapshots(ctx context.Context, account string) ([]enforcer.Snapshot, error) {
	var out []enforcer.Snapshot
	err := l.readTx(ctx, func(tx readTx) error {
		overdue, err := readOverdue(ctx, tx, l.now())
		if err != nil {
			return err
		}
		out, err = readSnapshots(ctx, tx, account, overdue)
		return err
	})
	return out, err
}

// readTx runs fn in a read transaction on the read pool.
func (l *Ledger) readTx(ctx context.Context, fn func(tx readTx) error) error {
	tx, err := l.read.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	err = fn(readTx{tx: tx, stmts: l.readStmts})
	return errors.Join(err, tx.Rollback()) // read-only: nothing to commit
}

// Sweep marks overdue holds expired and forgets reservations settled
// longer than RetainSettled ago.
func (l *Ledger) Sweep(ctx context.Context) (int, error) {
	var n int
	err := l.w.do(ctx, func(tx *wtx) error {
		now := l.now()
		var err error
		if n, err = l.expireCount(tx, now); err != nil {
			return err
		}
		cutoff := now - int64(l.retain)
		if now < math.MinInt64+int64(l.retain) {
			cutoff = math.MinInt64
		}
		if _, err := tx.st.pruneExt.ExecContext(tx.ctx, cutoff); err != nil {
			return l.dbErr("forget extensions of settled reservations", err)
		}
		if _, err := tx.st.pruneSettled.ExecContext(tx.ctx, cutoff); err != nil {
			return l.dbErr("forget settled reservations", err)
		}
		return nil
	})
	return n, err
}
