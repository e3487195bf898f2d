package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SQL shared by the writer and the readers. Placeholders are numbered so
// the statements read the same in a PostgreSQL port ($1 for ?1).
const (
	// pathCTE lists an account (?1) and its ancestors with their depth.
	pathCTE = `WITH RECURSIVE path(id, depth) AS (
		SELECT ?1, 0
		UNION ALL
		SELECT a.parent_id, p.depth + 1 FROM accounts a JOIN path p ON a.id = p.id WHERE a.parent_id IS NOT NULL
	) `

	// overdueCTE rolls the hold (estimate plus extensions) of every
	// reservation past its expiry (?1 is now) up to each account on its path.
	overdueCTE = `WITH RECURSIVE overdue(id, est) AS (
		SELECT account_id, estimate_nanos + extended_nanos FROM reservations WHERE state = 'pending' AND expires_at <= ?1
		UNION ALL
		SELECT a.parent_id, o.est FROM overdue o JOIN accounts a ON a.id = o.id WHERE a.parent_id IS NOT NULL
	) `

	selectPath = pathCTE + `SELECT a.id, COALESCE(a.parent_id, ''), a.limit_nanos, a.committed_nanos, a.pending_nanos, a.allocate_children
		FROM path p JOIN accounts a ON a.id = p.id ORDER BY p.depth`

	selectOverdue = overdueCTE + `SELECT id, SUM(est) FROM overdue GROUP BY id`

	resColumns = `id, account_id, tool, estimate_nanos, ttl_nanos, state, created_at, expires_at, settled_at,
		charged_nanos, cost_source, late, fingerprint, extended_nanos, extensions, base_estimate_nanos, calibration_key,
		usage_model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, price_source`

	selectRes = `SELECT ` + resColumns + ` FROM reservations WHERE id = ?1`

	// selectAccountRes lists one account's (?1) reservations in one state
	// (?2, '' for all) as seen at ?3 (an overdue hold is expired), oldest
	// first, at most ?4; the reservations_account index serves the order.
	selectAccountRes = `SELECT ` + resColumns + ` FROM reservations WHERE account_id = ?1
		AND (?2 = '' OR CASE WHEN state = 'pending' AND expires_at <= ?3 THEN 'expired' ELSE state END = ?2)
		ORDER BY created_at, id LIMIT ?4`

	probeOverdue = `SELECT 1 FROM reservations WHERE state = 'pending' AND expires_at <= ?1 LIMIT 1`

	snapshotColumns = `SELECT id, COALESCE(parent_id, ''), limit_nanos, committed_nanos, pending_nanos, allocate_children, labels
		FROM accounts`
	selectSnapshotAll = snapshotColumns + ` ORDER BY id`
	selectSnapshotOne = snapshotColumns + ` WHERE id = ?1`
	selectToolsAll    = `SELECT account_id, tool, calls, spent_nanos FROM account_tools`
	selectToolsOne    = selectToolsAll + ` WHERE account_id = ?1`
)

// readQueries are prepared once on the read pool (database/sql then
// prepares each on a connection the first time it runs there): parsing
// the recursive queries costs more than running them.
var readQueries = [...]string{selectPath, selectOverdue, probeOverdue, selectRes, selectAccountRes,
	selectSnapshotAll, selectSnapshotOne, selectToolsAll, selectToolsOne}

func prepareReads(ctx context.Context, db *sql.DB) (map[string]*sql.Stmt, error) {
	out := make(map[string]*sql.Stmt, len(readQueries))
	for _, q := range readQueries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range out {
				st.Close()
			}
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		out[q] = st
	}
	return out, nil
}

// readTx runs the read pool's prepared statements inside one transaction.
type readTx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (r readTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st, ok := r.stmts[q]; ok {
		return r.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return r.tx.QueryContext(ctx, q, args...)
}

func (r readTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st, ok := r.stmts[q]; ok {
		return r.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return r.tx.QueryRowContext(ctx, q, args...)
}

// stmts are the write connection's prepared statements for the hot path.
type stmts struct {
	probeOverdue  *sql.Stmt
	expireTotals  *sql.Stmt
	expireHolds   *sql.Stmt
	pruneSettled  *sql.Stmt
	pruneExt      *sql.Stmt
	path          *sql.Stmt
	getRes        *sql.Stmt
	insertRes     *sql.Stmt
	settleRes     *sql.Stmt
	findExt       *sql.Stmt
	insertExt     *sql.Stmt
	extendRes     *sql.Stmt
	addPending    *sql.Stmt
	charge        *sql.Stmt
	addTool       *sql.Stmt
	accountExists *sql.Stmt
	childLimits   *sql.Stmt
	all           []*sql.Stmt
}

func prepare(ctx context.Context, conn *sql.Conn) (*stmts, error) {
	s := &stmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&s.probeOverdue, probeOverdue},
		{&s.expireTotals, overdueCTE + `UPDATE accounts SET pending_nanos = pending_nanos - d.total
			FROM (SELECT id, SUM(est) AS total FROM overdue GROUP BY id) AS d WHERE accounts.id = d.id`},
		{&s.expireHolds, `UPDATE reservations SET state = 'expired', settled_at = expires_at
			WHERE state = 'pending' AND expires_at <= ?1`},
		{&s.pruneSettled, `DELETE FROM reservations WHERE state <> 'pending' AND settled_at <= ?1`},
		// Run before pruneSettled: a reservation's extensions go with it.
		{&s.pruneExt, `DELETE FROM reservation_extensions WHERE reservation_id IN
			(SELECT id FROM reservations WHERE state <> 'pending' AND settled_at <= ?1)`},
		{&s.path, selectPath},
		{&s.getRes, selectRes},
		{&s.insertRes, `INSERT INTO reservations (id, account_id, tool, estimate_nanos, ttl_nanos, state, created_at, expires_at,
			fingerprint, base_estimate_nanos, calibration_key)
			VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8, ?9, ?10)`},
		{&s.settleRes, `UPDATE reservations SET state = ?2, settled_at = ?3, charged_nanos = ?4, cost_source = ?5, late = ?6,
			usage_model = ?7, input_tokens = ?8, output_tokens = ?9, cache_read_tokens = ?10, cache_write_tokens = ?11,
			cache_write_1h_tokens = ?12, price_source = ?13
			WHERE id = ?1`},
		{&s.findExt, `SELECT add_nanos FROM reservation_extensions WHERE reservation_id = ?1 AND extension_id = ?2`},
		{&s.insertExt, `INSERT INTO reservation_extensions (reservation_id, extension_id, add_nanos, created_at)
			VALUES (?1, ?2, ?3, ?4)`},
		{&s.extendRes, `UPDATE reservations SET extended_nanos = extended_nanos + ?2, extensions = extensions + 1 WHERE id = ?1`},
		{&s.addPending, pathCTE + `UPDATE accounts SET pending_nanos = pending_nanos + ?2 WHERE id IN (SELECT id FROM path)`},
		{&s.charge, pathCTE + `UPDATE accounts SET committed_nanos = committed_nanos + ?2, pending_nanos = pending_nanos - ?3
			WHERE id IN (SELECT id FROM path)`},
		// WHERE true keeps SQLite from parsing ON CONFLICT as a join clause.
		{&s.addTool, pathCTE + `INSERT INTO account_tools (account_id, tool, calls, spent_nanos)
			SELECT id, ?2, 1, ?3 FROM path WHERE true
			ON CONFLICT (account_id, tool) DO UPDATE SET calls = calls + 1, spent_nanos = spent_nanos + excluded.spent_nanos`},
		{&s.accountExists, `SELECT 1 FROM accounts WHERE id = ?1`},
		{&s.childLimits, `SELECT id, limit_nanos FROM accounts WHERE parent_id = ?1`},
	} {
		st, err := conn.PrepareContext(ctx, p.sql)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.dst = st
		s.all = append(s.all, st)
	}
	return s, nil
}

func (s *stmts) close() error {
	var errs []error
	for _, st := range s.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// querier is what both the write connection and a read transaction offer,
// so snapshots are read the same way on either.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
