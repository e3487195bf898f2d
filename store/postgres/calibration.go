package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"

	"github.com/purser-dev/purser/enforcer"
)

var _ enforcer.CalibrationStore = (*Ledger)(nil)

// MergeCalibration folds deltas into the calibration table shared by every
// host on this database, in one transaction: the existing rows of the
// delta's keys are locked (SELECT ... FOR UPDATE, in key order, so two
// hosts cannot deadlock on them), merged and written back; new keys are
// inserted with ON CONFLICT DO NOTHING, and a key another host inserted
// meanwhile is merged onto that host's value in a second round. So two
// hosts merging the same key at once each see the other's value: nothing
// is lost. New keys are inserted under a transaction-scoped advisory lock,
// so the MaxCalibrationKeys bound holds across hosts. A merge error or an
// oversized value stores nothing (the caller keeps its deltas). It returns
// every stored key's value after the merge.
func (l *Ledger) MergeCalibration(ctx context.Context, deltas map[string][]byte,
	merge func(old, delta []byte) ([]byte, error)) (map[string][]byte, error) {
	keys, err := calibrationKeys(deltas, merge)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.w.cfg.opTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		var out map[string][]byte
		err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
			if err := mergeKeys(ctx, tx, keys, deltas, merge); err != nil {
				return err
			}
			var err error
			out, err = readCalibration(ctx, tx)
			return err
		})
		if err == nil {
			return out, nil
		}
		if !isConflict(err) || attempt >= l.w.cfg.retries || ctx.Err() != nil {
			return nil, l.calibrationErr(err)
		}
		backoff(attempt)
	}
}

// calibrationKeys checks the deltas and returns their keys sorted (the
// lock order).
func calibrationKeys(deltas map[string][]byte, merge func(old, delta []byte) ([]byte, error)) ([]string, error) {
	return enforcer.CalibrationBatch(deltas, merge)
}

// mergeError is a failure of the caller's merge (or of its value's size):
// not the store's, so it must not read as unavailable.
type mergeError struct{ err error }

func (e mergeError) Error() string { return e.err.Error() }
func (e mergeError) Unwrap() error { return e.err }

// calibrationErr: the merge's own failures pass as they are; any store
// failure wraps enforcer.ErrLedgerUnavailable (and ErrUnavailable when the
// database could not be reached, which is what FailOpen calls an outage).
func (l *Ledger) calibrationErr(err error) error {
	if merr := (mergeError{}); errors.As(err, &merr) {
		return merr.err
	}
	err = l.dbErr("merge calibration", err)
	if !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		err = fmt.Errorf("%w: %w", enforcer.ErrLedgerUnavailable, err)
	}
	return err
}

// mergeKeys merges the deltas of keys (sorted) under row locks.
func mergeKeys(ctx context.Context, tx pgx.Tx, keys []string, deltas map[string][]byte,
	merge func(old, delta []byte) ([]byte, error)) error {
	for round := 0; len(keys) > 0; round++ {
		if round > 1 {
			// A key inserted by another host is locked in the next round;
			// one more round means the store is not behaving.
			return fmt.Errorf("keys %q inserted concurrently twice", keys)
		}
		old, err := lockCalibration(ctx, tx, keys)
		if err != nil {
			return err
		}
		var updK, newK []string
		var updV, newV [][]byte
		for _, k := range keys {
			prev, ok := old[k]
			v, err := merge(prev, deltas[k])
			v, err = enforcer.MergedCalibrationValue(k, v, err)
			switch {
			case err != nil:
				return mergeError{err}
			case ok:
				updK, updV = append(updK, k), append(updV, v)
			default:
				newK, newV = append(newK, k), append(newV, v)
			}
		}
		if len(updK) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE calibration c SET value = u.v, updated_at = now()
				FROM unnest($1::text[], $2::bytea[]) AS u(k, v) WHERE c.key = u.k`, updK, updV); err != nil {
				return err
			}
		}
		if keys, err = insertCalibration(ctx, tx, newK, newV); err != nil {
			return err
		}
	}
	return nil
}

// lockCalibration locks the existing rows of keys, in key order, and
// returns their values.
func lockCalibration(ctx context.Context, tx pgx.Tx, keys []string) (map[string][]byte, error) {
	rows, err := tx.Query(ctx, `SELECT key, value FROM calibration WHERE key = ANY($1) ORDER BY key FOR UPDATE`, keys)
	if err != nil {
		return nil, err
	}
	return collectCalibration(rows)
}

func collectCalibration(rows pgx.Rows) (map[string][]byte, error) {
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// calibrationLockKey is the advisory lock under which new keys are
// counted and inserted.
func calibrationLockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("purser.calibration.insert"))
	return int64(h.Sum64())
}

// insertCalibration inserts new keys while the table has room for them
// (the rest are dropped, as the CalibrationStore contract says) and
// returns those another host inserted first, to merge onto in a new round.
func insertCalibration(ctx context.Context, tx pgx.Tx, keys []string, values [][]byte) ([]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	// Two statements: under READ COMMITTED the count's snapshot must be
	// taken after the lock is held, so it sees the last holder's keys.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, calibrationLockKey()); err != nil {
		return nil, err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM calibration`).Scan(&n); err != nil {
		return nil, err
	}
	room := max(enforcer.MaxCalibrationKeys-n, 0)
	keys, values = keys[:min(room, len(keys))], values[:min(room, len(values))]
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `INSERT INTO calibration (key, value) SELECT * FROM unnest($1::text[], $2::bytea[])
		ON CONFLICT (key) DO NOTHING RETURNING key`, keys, values)
	if err != nil {
		return nil, err
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if len(inserted) == len(keys) {
		return nil, nil
	}
	done := make(map[string]bool, len(inserted))
	for _, k := range inserted {
		done[k] = true
	}
	var lost []string
	for _, k := range keys {
		if !done[k] {
			lost = append(lost, k)
		}
	}
	return lost, nil
}

// readCalibration returns every stored key's value.
func readCalibration(ctx context.Context, tx pgx.Tx) (map[string][]byte, error) {
	rows, err := tx.Query(ctx, `SELECT key, value FROM calibration`)
	if err != nil {
		return nil, err
	}
	return collectCalibration(rows)
}
