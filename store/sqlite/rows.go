package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// acctRow is the part of an account row budget decisions need.
type acctRow struct {
	id, parent string
	limit      *enforcer.Nanos // nil: unlimited
	committed  enforcer.Nanos
	pending    enforcer.Nanos
	allocate   bool
}

func scanAcct(rows *sql.Rows) (acctRow, error) {
	var a acctRow
	var lim sql.NullInt64
	if err := rows.Scan(&a.id, &a.parent, &lim, &a.committed, &a.pending, &a.allocate); err != nil {
		return a, err
	}
	if lim.Valid {
		n := enforcer.Nanos(lim.Int64)
		a.limit = &n
	}
	return a, nil
}

// scanPath reads selectPath's rows: the account first, then its ancestors.
// An empty result means the account does not exist.
func scanPath(rows *sql.Rows, err error) ([]acctRow, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []acctRow
	for rows.Next() {
		a, err := scanAcct(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// readOverdue sums the overdue holds under each account (selectOverdue);
// it returns nil, after one index probe, when nothing is overdue.
func readOverdue(ctx context.Context, q querier, now int64) (map[string]enforcer.Nanos, error) {
	err := q.QueryRowContext(ctx, probeOverdue, now).Scan(new(int))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, selectOverdue, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]enforcer.Nanos)
	for rows.Next() {
		var id string
		var sum enforcer.Nanos
		if err := rows.Scan(&id, &sum); err != nil {
			return nil, err
		}
		out[id] = sum
	}
	return out, rows.Err()
}

// resRow is a reservation row as stored.
type resRow struct {
	id, account, tool string
	estimate          enforcer.Nanos
	ttl               time.Duration
	state             enforcer.ReservationState
	created, expires  int64
	settled           sql.NullInt64
	charged           enforcer.Nanos
	source            enforcer.CostSource
	late              bool
	fingerprint       string
	extended          enforcer.Nanos
	extensions        int
	baseEstimate      enforcer.Nanos
	calibrationKey    string
	usage             *enforcer.TokenUsage // nil: committed without usage (or not committed)
	priceSource       string
}

// held is what the reservation holds while pending.
func (r resRow) held() enforcer.Nanos { return r.estimate + r.extended }

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanRes reads one row of resColumns; found is false when there is none.
func scanRes(row scanner) (r resRow, found bool, err error) {
	var model sql.NullString
	var tok [5]sql.NullInt64
	err = row.Scan(&r.id, &r.account, &r.tool, &r.estimate, &r.ttl, &r.state, &r.created, &r.expires,
		&r.settled, &r.charged, &r.source, &r.late, &r.fingerprint, &r.extended, &r.extensions, &r.baseEstimate,
		&r.calibrationKey, &model, &tok[0], &tok[1], &tok[2], &tok[3], &tok[4], &r.priceSource)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err == nil && model.Valid {
		r.usage = &enforcer.TokenUsage{Model: model.String, InputTokens: tok[0].Int64, OutputTokens: tok[1].Int64,
			CacheReadTokens: tok[2].Int64, CacheWriteTokens: tok[3].Int64, CacheWrite1hTokens: tok[4].Int64}
	}
	return r, err == nil, err
}

// usageArgs are settleRes's usage columns: all NULL without usage.
func usageArgs(u *enforcer.TokenUsage) [6]any {
	if u == nil {
		return [6]any{}
	}
	return [6]any{u.Model, u.InputTokens, u.OutputTokens, u.CacheReadTokens, u.CacheWriteTokens, u.CacheWrite1hTokens}
}

// view is the reservation as callers see it at now: a hold past its expiry
// reads as expired even before a sweep marked it.
// replay is view for the answer to a repeated commit, release or
// extension: nothing changed now, and the answer says so.
func (r resRow) replay(now int64) enforcer.Reservation {
	v := r.view(now)
	v.Replayed = true
	return v
}

func (r resRow) view(now int64) enforcer.Reservation {
	settled := r.settled
	if r.state == enforcer.StatePending && r.expires <= now {
		r.state, settled = enforcer.StateExpired, sql.NullInt64{Int64: r.expires, Valid: true}
	}
	out := enforcer.Reservation{
		ID: r.id, Account: r.account, Tool: r.tool, Estimate: r.estimate, State: r.state,
		CreatedAt: fromNanos(r.created), ExpiresAt: fromNanos(r.expires),
		Charged: r.charged, CostSource: r.source, Late: r.late, Fingerprint: r.fingerprint,
		Extended: r.extended, BaseEstimate: r.baseEstimate, CalibrationKey: r.calibrationKey, PriceSource: r.priceSource,
	}
	if r.usage != nil {
		u := *r.usage // the caller's copy: a later view never shares it
		out.Usage = &u
	}
	if settled.Valid {
		out.SettledAt = fromNanos(settled.Int64)
	}
	return out
}

// readSnapshots reads accounts (all when id is "") with their tool stats,
// discounting overdue holds (nil when there are none), sorted by id.
func readSnapshots(ctx context.Context, q querier, id string, overdue map[string]enforcer.Nanos) ([]enforcer.Snapshot, error) {
	accts, tools, args := selectSnapshotAll, selectToolsAll, []any{}
	if id != "" {
		accts, tools, args = selectSnapshotOne, selectToolsOne, []any{id}
	}
	rows, err := q.QueryContext(ctx, accts, args...)
	if err != nil {
		return nil, err
	}
	var out []enforcer.Snapshot
	index := map[string]int{}
	for rows.Next() {
		s, err := scanSnapshot(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		s.Pending -= overdue[s.ID]
		index[s.ID] = len(out)
		out = append(out, s)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, readTools(ctx, q, tools, args, out, index)
}

func scanSnapshot(rows *sql.Rows) (enforcer.Snapshot, error) {
	var s enforcer.Snapshot
	var lim sql.NullInt64
	var labels string
	if err := rows.Scan(&s.ID, &s.Parent, &lim, &s.Committed, &s.Pending, &s.AllocateChildren, &labels); err != nil {
		return s, err
	}
	if lim.Valid {
		n := enforcer.Nanos(lim.Int64)
		s.Limit = &n
	}
	s.Overdrawn = s.Limit != nil && s.Committed > *s.Limit
	if err := json.Unmarshal([]byte(labels), &s.Labels); err != nil {
		return s, fmt.Errorf("account %q: labels: %w", s.ID, err)
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Tools = map[string]enforcer.ToolStats{}
	return s, nil
}

func readTools(ctx context.Context, q querier, query string, args []any, out []enforcer.Snapshot, index map[string]int) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var acct, tool string
		var st enforcer.ToolStats
		if err := rows.Scan(&acct, &tool, &st.Calls, &st.Spent); err != nil {
			return err
		}
		if i, ok := index[acct]; ok {
			out[i].Tools[tool] = st
		}
	}
	return rows.Err()
}

func encodeLabels(labels map[string]string) (string, error) {
	if labels == nil {
		labels = map[string]string{}
	}
	b, err := json.Marshal(labels) // sorted keys: the same labels store the same text
	return string(b), err
}
