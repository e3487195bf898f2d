package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/bits"

	"github.com/purser-dev/purser/enforcer"
)

// CreateAccount adds an account; the parent must exist.
func (l *Ledger) CreateAccount(ctx context.Context, spec enforcer.AccountSpec) (enforcer.Snapshot, error) {
	if err := spec.Validate(); err != nil {
		return enforcer.Snapshot{}, fmt.Errorf("create account %q: %w", spec.ID, err)
	}
	labels, err := encodeLabels(spec.Labels)
	if err != nil {
		return enforcer.Snapshot{}, fmt.Errorf("create account %q: labels: %w", spec.ID, err)
	}
	snap := enforcer.Snapshot{ID: spec.ID, Parent: spec.Parent, Limit: clonePtr(spec.Limit),
		AllocateChildren: spec.AllocateChildren, Labels: maps.Clone(spec.Labels), Tools: map[string]enforcer.ToolStats{}}
	if snap.Labels == nil {
		snap.Labels = map[string]string{}
	}
	err = l.w.do(ctx, func(tx *wtx) error {
		if err := tx.create(spec, &snap); err != nil {
			return l.sqlErr(err, "create account %q", spec.ID)
		}
		_, err := tx.conn.ExecContext(tx.ctx, `INSERT INTO accounts (id, parent_id, limit_nanos, allocate_children, labels, created_at)
			VALUES (?1, NULLIF(?2, ''), ?3, ?4, ?5, ?6)`, spec.ID, spec.Parent, nullable(snap.Limit), spec.AllocateChildren, labels, l.now())
		return l.sqlErr(err, "create account %q", spec.ID)
	})
	if err != nil {
		return enforcer.Snapshot{}, err
	}
	return snap, nil
}

// create checks that spec can be added and fixes a percentage child's
// limit in snap.
func (tx *wtx) create(spec enforcer.AccountSpec, snap *enforcer.Snapshot) error {
	err := tx.st.accountExists.QueryRowContext(tx.ctx, spec.ID).Scan(new(int))
	switch {
	case err == nil:
		return fmt.Errorf("create account %q: %w", spec.ID, enforcer.ErrAccountExists)
	case !errors.Is(err, sql.ErrNoRows):
		return err
	case spec.Parent == "":
		return nil
	}
	path, err := scanPath(tx.st.path.QueryContext(tx.ctx, spec.Parent))
	if err != nil {
		return err
	}
	if len(path) == 0 {
		return fmt.Errorf("create account %q: parent: account %q: %w", spec.ID, spec.Parent, enforcer.ErrAccountNotFound)
	}
	p := path[0]
	if spec.PercentOfParent > 0 {
		if p.limit == nil {
			return fmt.Errorf("create account %q: %w: %d%% of parent %q, which has no limit",
				spec.ID, enforcer.ErrInvalidAccount, spec.PercentOfParent, p.id)
		}
		hi, lo := bits.Mul64(uint64(*p.limit), uint64(spec.PercentOfParent))
		q, _ := bits.Div64(hi, lo, 100) // hi < 100 since the percentage is <= 100
		n := enforcer.Nanos(q)
		snap.Limit = &n
	}
	return tx.allocate(p, spec.ID, snap.Limit)
}

// allocate checks that supervisor p can give child a fixed limit (nil
// counts as 0) besides what its other children hold.
func (tx *wtx) allocate(p acctRow, child string, limit *enforcer.Nanos) error {
	if !p.allocate {
		return nil
	}
	others, err := tx.allocated(p.id, child)
	if err != nil {
		return err
	}
	want := enforcer.Nanos(0)
	if limit != nil {
		want = *limit
	}
	total, err := others.Add(want)
	if err != nil || (p.limit != nil && total > *p.limit) {
		return &enforcer.SupervisorBudgetError{Supervisor: p.id, Account: child, Requested: want, Allocated: others, Limit: deref(p.limit)}
	}
	return nil
}

// allocated sums the fixed limits of supervisor's children except skip.
// Summing on demand instead of keeping a column means there is nothing to
// get out of step; supervisors change rarely.
func (tx *wtx) allocated(supervisor, skip string) (enforcer.Nanos, error) {
	rows, err := tx.st.childLimits.QueryContext(tx.ctx, supervisor)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var sum enforcer.Nanos
	for rows.Next() {
		var id string
		var lim sql.NullInt64
		if err := rows.Scan(&id, &lim); err != nil {
			return 0, err
		}
		if id == skip || !lim.Valid {
			continue
		}
		if sum, err = sum.Add(enforcer.Nanos(lim.Int64)); err != nil {
			return 0, fmt.Errorf("children of %q: %w", supervisor, err)
		}
	}
	return sum, rows.Err()
}

// SetLimit changes an account's limit; committed spend is untouched.
func (l *Ledger) SetLimit(ctx context.Context, account string, limit *enforcer.Nanos) (enforcer.Snapshot, error) {
	var snap enforcer.Snapshot
	var alerts []enforcer.Alert
	err := l.w.do(ctx, func(tx *wtx) error {
		now := l.clock.Now()
		if err := l.expire(tx, now.UnixNano()); err != nil {
			return err
		}
		path, err := scanPath(tx.st.path.QueryContext(tx.ctx, account))
		if err != nil {
			return l.sqlErr(err, "set limit on %q", account)
		}
		if len(path) == 0 {
			return fmt.Errorf("set limit: account %q: %w", account, enforcer.ErrAccountNotFound)
		}
		if limit != nil && *limit < 0 {
			return fmt.Errorf("set limit on %q: %w: negative limit %s", account, enforcer.ErrInvalidAccount, *limit)
		}
		if err := tx.checkLimit(path, limit); err != nil {
			return l.sqlErr(err, "set limit on %q", account)
		}
		if _, err := tx.conn.ExecContext(tx.ctx, `UPDATE accounts SET limit_nanos = ?2 WHERE id = ?1`, account, nullable(limit)); err != nil {
			return l.sqlErr(err, "set limit on %q", account)
		}
		a := path[0]
		alerts = l.thresholds.Crossings(nil, a.id, a.committed, a.limit, a.committed, limit, now)
		snap, err = l.writeSnapshot(tx, account)
		return err
	})
	if err != nil {
		return enforcer.Snapshot{}, err
	}
	l.notify(alerts)
	return snap, nil
}

// checkLimit refuses a limit below what a supervisor has given its
// children, or a child limit its supervisor parent cannot fit.
func (tx *wtx) checkLimit(path []acctRow, limit *enforcer.Nanos) error {
	a := path[0]
	if a.allocate && limit != nil {
		given, err := tx.allocated(a.id, "")
		if err != nil {
			return err
		}
		if *limit < given {
			return &enforcer.SupervisorBudgetError{Supervisor: a.id, Requested: *limit, Allocated: given, Limit: deref(a.limit)}
		}
	}
	if len(path) > 1 {
		return tx.allocate(path[1], a.id, limit)
	}
	return nil
}

// SetLabels replaces an account's labels.
func (l *Ledger) SetLabels(ctx context.Context, account string, labels map[string]string) (enforcer.Snapshot, error) {
	text, err := encodeLabels(labels)
	if err != nil {
		return enforcer.Snapshot{}, fmt.Errorf("set labels on %q: %w", account, err)
	}
	var snap enforcer.Snapshot
	err = l.w.do(ctx, func(tx *wtx) error {
		res, err := tx.conn.ExecContext(tx.ctx, `UPDATE accounts SET labels = ?2 WHERE id = ?1`, account, text)
		if err != nil {
			return l.sqlErr(err, "set labels on %q", account)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(fmt.Errorf("set labels: account %q: %w", account, enforcer.ErrAccountNotFound), err)
		}
		if err := l.expire(tx, l.now()); err != nil {
			return err
		}
		snap, err = l.writeSnapshot(tx, account)
		return err
	})
	return snap, err
}

// writeSnapshot reads an account inside a write, after its sweep (so no
// hold is overdue).
func (l *Ledger) writeSnapshot(tx *wtx, account string) (enforcer.Snapshot, error) {
	snaps, err := readSnapshots(tx.ctx, tx.conn, account, nil)
	if err != nil || len(snaps) == 0 {
		return enforcer.Snapshot{}, l.sqlErr(errors.Join(err, errors.New("account vanished")), "snapshot %q", account)
	}
	return snaps[0], nil
}

// sqlErr wraps a database error with what was being done and the file;
// domain errors (which wrap an enforcer sentinel or are typed) pass as is.
func (l *Ledger) sqlErr(err error, format string, args ...any) error {
	if err == nil || isDomain(err) || errors.Is(err, enforcer.ErrLedgerUnavailable) {
		return err
	}
	return l.dbErr(fmt.Sprintf(format, args...), err)
}

func isDomain(err error) bool {
	for _, s := range []error{enforcer.ErrAccountNotFound, enforcer.ErrAccountExists, enforcer.ErrReservationNotFound,
		enforcer.ErrReservationConflict, enforcer.ErrReservationSettled, enforcer.ErrInsufficientBudget,
		enforcer.ErrInvalidAccount, enforcer.ErrSupervisorBudget, enforcer.ErrInvalidReservation, enforcer.ErrInvalidAmount} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func nullable(n *enforcer.Nanos) any {
	if n == nil {
		return nil
	}
	return int64(*n)
}

func clonePtr(n *enforcer.Nanos) *enforcer.Nanos {
	if n == nil {
		return nil
	}
	v := *n
	return &v
}

func deref(n *enforcer.Nanos) enforcer.Nanos {
	if n == nil {
		return 0
	}
	return *n
}
