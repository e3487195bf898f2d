package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/purser-dev/purser/enforcer"
)

// selectReservations lists one account's reservations ($1), optionally in
// one state ($2, "" for all; a pending hold past its expiry is expired),
// oldest first, at most $3, at now ($4). It yields no row when the account
// does not exist and one row with a NULL id when it has no reservation.
var selectReservations = `SELECT n.now, ` + resColumnsR + `
	FROM (SELECT purser_now($4) AS now) n
	JOIN accounts a ON a.id = $1
	LEFT JOIN LATERAL (SELECT * FROM reservations r
		WHERE r.account_id = a.id AND (
			$2 = ''
			OR ($2 = 'pending' AND r.state = 'pending' AND r.expires_at > n.now)
			OR ($2 = 'expired' AND (r.state = 'expired' OR (r.state = 'pending' AND r.expires_at <= n.now)))
			OR ($2 NOT IN ('pending', 'expired') AND r.state = $2))
		ORDER BY r.created_at, r.id
		LIMIT $3) r ON true
	ORDER BY r.created_at, r.id`

// resColumnsR is resColumns through the outer join: NULL-free except
// r.id, which says whether there was a row.
var resColumnsR = `r.id, COALESCE(r.account_id, ''), COALESCE(r.tool, ''), COALESCE(r.estimate_nanos, 0), COALESCE(r.ttl_nanos, 0),
	COALESCE(r.state, ''), COALESCE(r.created_at, 0), COALESCE(r.expires_at, 0), r.settled_at, COALESCE(r.charged_nanos, 0),
	COALESCE(r.cost_source, ''), COALESCE(r.late, false), COALESCE(r.fingerprint, ''), COALESCE(r.extended_nanos, 0),
	COALESCE(r.base_estimate_nanos, 0), COALESCE(r.calibration_key, ''), COALESCE(r.price_source, ''), r.usage_model,
	` + strings.ReplaceAll(usageArray, "usage_", "r.usage_")

// Reservations lists the reservations still stored on one account
// (exactly that account), oldest first (created, then id).
func (l *Ledger) Reservations(ctx context.Context, f enforcer.ReservationFilter) ([]enforcer.Reservation, error) {
	f, err := f.Validate()
	if err != nil {
		return nil, err
	}
	var out []enforcer.Reservation
	var found bool
	err = l.r.query(ctx, selectReservations, []any{f.Account, string(f.State), f.Limit, l.nowArg()}, func(rows pgx.Rows) error {
		out, found = out[:0], false // set afresh: a failed pipeline runs this again
		for rows.Next() {
			found = true
			var now int64
			var id *string
			var r resRow
			dest := r.scanDest()
			dest[0] = &id // NULL when the account has no reservation
			if err := rows.Scan(append([]any{&now}, dest...)...); err != nil {
				return err
			}
			if id == nil {
				continue
			}
			r.id = *id
			out = append(out, r.view(now))
		}
		return rows.Err()
	})
	switch {
	case err != nil:
		return nil, l.dbErr(fmt.Sprintf("list reservations of %q", f.Account), err)
	case !found:
		return nil, fmt.Errorf("list reservations: account %q: %w", f.Account, enforcer.ErrAccountNotFound)
	}
	return out, nil
}
