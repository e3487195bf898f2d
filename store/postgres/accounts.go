package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/purser-dev/purser/enforcer"
)

// acctRow is the part of an account row budget decisions need.
type acctRow struct {
	id        string
	limit     *enforcer.Nanos // nil: unlimited
	committed enforcer.Nanos
	pending   enforcer.Nanos
	allocate  bool
}

// treeTx runs fn in a transaction holding the lock of the tree rooted at
// root, after the tree's overdue holds were expired at now (which fn
// receives); it returns how many holds that expired. Conflicts are retried
// like batches.
func (l *Ledger) treeTx(ctx context.Context, root string, fn func(tx pgx.Tx, now int64) error) (int, error) {
	for attempt := 0; ; attempt++ {
		var expired int32
		err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT purser_lock_trees($1)", []string{root}); err != nil {
				return err
			}
			var now int64
			if err := tx.QueryRow(ctx, "SELECT n, purser_expire_tree($1, n) FROM (SELECT purser_now($2) AS n) s",
				root, l.nowArg()).Scan(&now, &expired); err != nil {
				return err
			}
			return fn(tx, now)
		})
		if err == nil || !isConflict(err) || attempt >= l.w.cfg.retries {
			return int(expired), err
		}
		backoff(attempt)
	}
}

const selectTree = `SELECT root_id, path FROM accounts WHERE id = $1`

type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// tree returns an account's root and path (itself first), or found false.
func tree(ctx context.Context, q rowQuerier, id string) (root string, path []string, found bool, err error) {
	err = q.QueryRow(ctx, selectTree, id).Scan(&root, &path)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, false, nil
	}
	return root, path, err == nil, err
}

// pathRows reads the accounts of path in order; the tree lock is held.
func pathRows(ctx context.Context, tx pgx.Tx, path []string) ([]acctRow, error) {
	rows, err := tx.Query(ctx, `SELECT a.id, a.limit_nanos, a.committed_nanos, a.pending_nanos, a.allocate_children
		FROM unnest($1::text[]) WITH ORDINALITY AS p(id, ord) JOIN accounts a ON a.id = p.id ORDER BY p.ord`, path)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (acctRow, error) {
		var a acctRow
		var lim pgtype.Int8
		err := row.Scan(&a.id, &lim, &a.committed, &a.pending, &a.allocate)
		a.limit = int8Ptr(lim)
		return a, err
	})
}

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
	exists := fmt.Errorf("create account %q: %w", spec.ID, enforcer.ErrAccountExists)
	if _, _, found, err := tree(ctx, l.pool, spec.ID); err != nil || found {
		if err == nil {
			return enforcer.Snapshot{}, exists
		}
		return enforcer.Snapshot{}, l.dbErr(fmt.Sprintf("create account %q", spec.ID), err)
	}
	insert := func(tx pgx.Tx, root string, path []string, now int64) error {
		_, err := tx.Exec(ctx, `INSERT INTO accounts (id, parent_id, root_id, path, limit_nanos, allocate_children, labels, created_at)
			VALUES ($1, NULLIF($2, ''), $3, $4, $5, $6, $7, $8)`,
			spec.ID, spec.Parent, root, path, nullable(snap.Limit), spec.AllocateChildren, labels, now)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation: created meanwhile
			return exists
		}
		return err
	}
	if spec.Parent == "" {
		err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
			var now int64
			if err := tx.QueryRow(ctx, "SELECT purser_now($1)", l.nowArg()).Scan(&now); err != nil {
				return err
			}
			return insert(tx, spec.ID, []string{spec.ID}, now)
		})
		return l.snapOrErr(snap, err, "create account %q", spec.ID)
	}
	root, ppath, found, err := tree(ctx, l.pool, spec.Parent)
	if err != nil {
		return enforcer.Snapshot{}, l.dbErr(fmt.Sprintf("create account %q", spec.ID), err)
	}
	if !found {
		return enforcer.Snapshot{}, fmt.Errorf("create account %q: parent: account %q: %w", spec.ID, spec.Parent, enforcer.ErrAccountNotFound)
	}
	_, err = l.treeTx(ctx, root, func(tx pgx.Tx, now int64) error {
		path, err := pathRows(ctx, tx, ppath)
		if err != nil {
			return err
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
		if err := allocate(ctx, tx, p, spec.ID, snap.Limit); err != nil {
			return err
		}
		return insert(tx, root, append([]string{spec.ID}, ppath...), now)
	})
	return l.snapOrErr(snap, err, "create account %q", spec.ID)
}

func (l *Ledger) snapOrErr(snap enforcer.Snapshot, err error, format string, args ...any) (enforcer.Snapshot, error) {
	if err != nil {
		return enforcer.Snapshot{}, l.sqlErr(err, format, args...)
	}
	return snap, nil
}

// allocate checks that supervisor p can give child a fixed limit (nil
// counts as 0) besides what its other children hold.
func allocate(ctx context.Context, tx pgx.Tx, p acctRow, child string, limit *enforcer.Nanos) error {
	if !p.allocate {
		return nil
	}
	others, err := allocated(ctx, tx, p.id, child)
	if err != nil {
		return err
	}
	want := enforcer.Nanos(0)
	if limit != nil {
		want = *limit
	}
	total, err := others.Add(want)
	if err != nil || (p.limit != nil && total > *p.limit) {
		return &enforcer.SupervisorBudgetError{Supervisor: p.id, Account: child, Requested: want, Allocated: others, Limit: derefN(p.limit)}
	}
	return nil
}

// allocated sums the fixed limits of supervisor's children except skip.
func allocated(ctx context.Context, tx pgx.Tx, supervisor, skip string) (enforcer.Nanos, error) {
	rows, err := tx.Query(ctx, `SELECT limit_nanos FROM accounts WHERE parent_id = $1 AND id <> $2 AND limit_nanos IS NOT NULL`, supervisor, skip)
	if err != nil {
		return 0, err
	}
	lims, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	var sum enforcer.Nanos
	for _, n := range lims {
		if sum, err = sum.Add(enforcer.Nanos(n)); err != nil {
			return 0, fmt.Errorf("children of %q: %w", supervisor, err)
		}
	}
	return sum, nil
}

// rootOf finds an account's tree.
func (l *Ledger) rootOf(ctx context.Context, op, account string) (string, []string, error) {
	var root string
	var path []string
	err := l.pool.QueryRow(ctx, selectTree, account).Scan(&root, &path)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, fmt.Errorf("%s: account %q: %w", op, account, enforcer.ErrAccountNotFound)
	}
	if err != nil {
		return "", nil, l.dbErr(fmt.Sprintf("%s %q", op, account), err)
	}
	return root, path, nil
}

// SetLimit changes an account's limit; committed spend is untouched.
func (l *Ledger) SetLimit(ctx context.Context, account string, limit *enforcer.Nanos) (enforcer.Snapshot, error) {
	root, path, err := l.rootOf(ctx, "set limit", account)
	if err != nil {
		return enforcer.Snapshot{}, err
	}
	if limit != nil && *limit < 0 {
		return enforcer.Snapshot{}, fmt.Errorf("set limit on %q: %w: negative limit %s", account, enforcer.ErrInvalidAccount, *limit)
	}
	var snap enforcer.Snapshot
	var alerts []enforcer.Alert
	_, err = l.treeTx(ctx, root, func(tx pgx.Tx, now int64) error {
		alerts = nil
		rows, err := pathRows(ctx, tx, path[:min(2, len(path))])
		if err != nil {
			return err
		}
		a := rows[0]
		if a.allocate && limit != nil {
			given, err := allocated(ctx, tx, a.id, "")
			if err != nil {
				return err
			}
			if *limit < given {
				return &enforcer.SupervisorBudgetError{Supervisor: a.id, Requested: *limit, Allocated: given, Limit: derefN(a.limit)}
			}
		}
		if len(rows) > 1 {
			if err := allocate(ctx, tx, rows[1], a.id, limit); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET limit_nanos = $2 WHERE id = $1`, account, nullable(limit)); err != nil {
			return err
		}
		alerts = l.thresholds.Crossings(nil, a.id, a.committed, a.limit, a.committed, limit, fromNanos(now))
		snaps, err := readSnapshots(ctx, tx, account, &now)
		if err != nil || len(snaps) == 0 {
			return errors.Join(err, errors.New("account vanished"))
		}
		snap = snaps[0]
		return nil
	})
	if err != nil {
		return enforcer.Snapshot{}, l.sqlErr(err, "set limit on %q", account)
	}
	l.notify(alerts)
	return snap, nil
}

// SetLabels replaces an account's labels.
func (l *Ledger) SetLabels(ctx context.Context, account string, labels map[string]string) (enforcer.Snapshot, error) {
	text, err := encodeLabels(labels)
	if err != nil {
		return enforcer.Snapshot{}, fmt.Errorf("set labels on %q: %w", account, err)
	}
	tag, err := l.pool.Exec(ctx, `UPDATE accounts SET labels = $2 WHERE id = $1`, account, text)
	if err != nil {
		return enforcer.Snapshot{}, l.dbErr(fmt.Sprintf("set labels on %q", account), err)
	}
	if tag.RowsAffected() == 0 {
		return enforcer.Snapshot{}, fmt.Errorf("set labels: account %q: %w", account, enforcer.ErrAccountNotFound)
	}
	return l.Snapshot(ctx, account)
}

// Check reports whether estimate fits the account and all its ancestors.
// It reads without locking (one statement, one consistent snapshot),
// discounting holds already past their expiry.
func (l *Ledger) Check(ctx context.Context, account string, estimate enforcer.Nanos) (enforcer.BudgetCheck, error) {
	if estimate < 0 {
		return enforcer.BudgetCheck{}, fmt.Errorf("check %q: %w: negative estimate %s", account, enforcer.ErrInvalidAmount, estimate)
	}
	var path []acctRow
	err := l.r.query(ctx, selectCheck, []any{account, l.nowArg()}, func(rows pgx.Rows) error {
		var err error
		path, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (acctRow, error) {
			var a acctRow
			var lim pgtype.Int8
			err := row.Scan(&a.id, &lim, &a.committed, &a.pending)
			a.limit = int8Ptr(lim)
			return a, err
		})
		return err
	})
	if err != nil {
		return enforcer.BudgetCheck{}, l.dbErr(fmt.Sprintf("check %q", account), err)
	}
	if len(path) == 0 {
		return enforcer.BudgetCheck{}, fmt.Errorf("check: account %q: %w", account, enforcer.ErrAccountNotFound)
	}
	l.w.routes.learnAccount(account, path[len(path)-1].id)
	return check(path, estimate), nil
}

// overdueOf is the whole hold (estimate and extensions) of a's tree's
// holds past their expiry (n.now) whose path includes a: still in
// a.pending_nanos until a write expires them.
const overdueOf = `COALESCE((SELECT sum(r.estimate_nanos + r.extended_nanos) FROM reservations r
		WHERE r.root_id = a.root_id AND r.state = 'pending' AND r.expires_at <= n.now AND a.id = ANY(r.path)), 0)::BIGINT`

const selectCheck = `SELECT a.id, a.limit_nanos, a.committed_nanos, a.pending_nanos - ` + overdueOf + `
	FROM (SELECT purser_now($2) AS now) n
	CROSS JOIN unnest((SELECT path FROM accounts WHERE id = $1)) WITH ORDINALITY AS p(id, ord)
	JOIN accounts a ON a.id = p.id
	ORDER BY p.ord`

// check folds the account's path into enforcer.PathCheck.
func check(path []acctRow, est enforcer.Nanos) enforcer.BudgetCheck {
	c := enforcer.NewPathCheck(path[0].id)
	for _, x := range path {
		c.Add(x.id, x.limit, x.committed, x.pending)
	}
	return c.Result(est)
}

// Reservation returns the current state of a reservation.
func (l *Ledger) Reservation(ctx context.Context, id string) (enforcer.Reservation, error) {
	var r resRow
	var now int64
	var found bool
	err := l.r.query(ctx, `SELECT `+resColumns+`, purser_now($2) FROM reservations WHERE id = $1`, []any{id, l.nowArg()},
		func(rows pgx.Rows) error {
			found = rows.Next() // (set afresh: a failed pipeline runs this again)
			if !found {
				return nil
			}
			return rows.Scan(append(r.scanDest(), &now)...)
		})
	switch {
	case err == nil && !found:
		return enforcer.Reservation{}, fmt.Errorf("reservation %q: %w", id, enforcer.ErrReservationNotFound)
	case err != nil:
		return enforcer.Reservation{}, l.dbErr(fmt.Sprintf("reservation %q", id), err)
	}
	if r.state == string(enforcer.StatePending) {
		l.w.routes.learnRes(id, r.account) // a commit or release is likely next
	}
	return r.view(now), nil
}

// Snapshot returns one account's totals.
func (l *Ledger) Snapshot(ctx context.Context, account string) (enforcer.Snapshot, error) {
	var snaps []enforcer.Snapshot
	err := l.r.query(ctx, selectSnapshots, []any{account, l.nowArg()}, func(rows pgx.Rows) error {
		var err error
		snaps, err = scanSnapshots(rows)
		return err
	})
	if err != nil {
		return enforcer.Snapshot{}, l.dbErr(fmt.Sprintf("snapshot %q", account), err)
	}
	if len(snaps) == 0 {
		return enforcer.Snapshot{}, fmt.Errorf("snapshot: account %q: %w", account, enforcer.ErrAccountNotFound)
	}
	return snaps[0], nil
}

// Accounts returns every account's totals, sorted by id.
func (l *Ledger) Accounts(ctx context.Context) ([]enforcer.Snapshot, error) {
	snaps, err := readSnapshots(ctx, l.pool, "", l.nowArg())
	if err != nil {
		return nil, l.dbErr("accounts", err)
	}
	return snaps, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const selectSnapshots = `SELECT a.id, COALESCE(a.parent_id, ''), a.limit_nanos, a.committed_nanos,
		a.pending_nanos - ` + overdueOf + `, a.allocate_children, a.labels, t.tools, t.calls, t.spent
	FROM (SELECT purser_now($2) AS now) n
	CROSS JOIN accounts a
	LEFT JOIN LATERAL (SELECT array_agg(tool) AS tools, array_agg(calls) AS calls, array_agg(spent_nanos) AS spent
		FROM account_tools WHERE account_id = a.id) t ON true
	WHERE a.id = $1`

// selectAllSnapshots is selectSnapshots for every account ($1 unused).
var selectAllSnapshots = strings.Replace(selectSnapshots, "WHERE a.id = $1", "WHERE $1::text IS NOT NULL ORDER BY a.id", 1)

// readSnapshots reads one account (or all when id is ""), discounting
// overdue holds, in one statement so everything is one consistent
// snapshot. now is the instant to measure at (nil: the database's clock).
func readSnapshots(ctx context.Context, q querier, id string, now *int64) ([]enforcer.Snapshot, error) {
	query := selectSnapshots
	if id == "" {
		query = selectAllSnapshots
	}
	rows, err := q.Query(ctx, query, id, now)
	if err != nil {
		return nil, err
	}
	return scanSnapshots(rows)
}

func scanSnapshots(rows pgx.Rows) ([]enforcer.Snapshot, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (enforcer.Snapshot, error) {
		var s enforcer.Snapshot
		var lim pgtype.Int8
		var labels string
		var tools []string
		var calls, spent []int64
		if err := row.Scan(&s.ID, &s.Parent, &lim, &s.Committed, &s.Pending, &s.AllocateChildren, &labels,
			&tools, &calls, &spent); err != nil {
			return s, err
		}
		s.Limit = int8Ptr(lim)
		s.Overdrawn = s.Limit != nil && s.Committed > *s.Limit
		if err := json.Unmarshal([]byte(labels), &s.Labels); err != nil {
			return s, fmt.Errorf("account %q: labels: %w", s.ID, err)
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Tools = make(map[string]enforcer.ToolStats, len(tools))
		for i, t := range tools {
			s.Tools[t] = enforcer.ToolStats{Calls: calls[i], Spent: enforcer.Nanos(spent[i])}
		}
		return s, nil
	})
}

// Sweep expires overdue holds in every tree and forgets reservations
// settled longer than RetainSettled ago. Several hosts may sweep at once.
func (l *Ledger) Sweep(ctx context.Context) (int, error) {
	var now int64
	if err := l.pool.QueryRow(ctx, "SELECT purser_now($1)", l.nowArg()).Scan(&now); err != nil {
		return 0, l.dbErr("sweep", err)
	}
	rows, err := l.pool.Query(ctx, `SELECT DISTINCT root_id FROM reservations WHERE state = 'pending' AND expires_at <= $1`, now)
	if err != nil {
		return 0, l.dbErr("sweep: find overdue holds", err)
	}
	roots, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, l.dbErr("sweep: find overdue holds", err)
	}
	n := 0
	for _, root := range roots {
		k, err := l.treeTx(ctx, root, func(pgx.Tx, int64) error { return nil })
		if err != nil {
			return n, l.dbErr(fmt.Sprintf("sweep: expire holds of tree %q", root), err)
		}
		n += k
	}
	cutoff := now - int64(l.retain)
	if now < math.MinInt64+int64(l.retain) {
		cutoff = math.MinInt64
	}
	// SKIP LOCKED: a row a batch is settling (a late commit of an expired
	// hold) is left for the next sweep instead of waited for, so the sweep
	// never takes part in a deadlock; chunks keep each transaction short.
	for {
		tag, err := l.pool.Exec(ctx, `DELETE FROM reservations WHERE id IN (
			SELECT id FROM reservations WHERE state <> 'pending' AND settled_at <= $1 LIMIT 5000 FOR UPDATE SKIP LOCKED)`, cutoff)
		if err != nil {
			return n, l.dbErr("sweep: forget settled reservations", err)
		}
		if tag.RowsAffected() < 5000 {
			return n, nil
		}
	}
}

func encodeLabels(labels map[string]string) (string, error) {
	if labels == nil {
		labels = map[string]string{}
	}
	b, err := json.Marshal(labels) // sorted keys: the same labels store the same text
	return string(b), err
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

func derefN(n *enforcer.Nanos) enforcer.Nanos {
	if n == nil {
		return 0
	}
	return *n
}
