package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/purser-dev/purser/enforcer"
)

var _ enforcer.CalibrationStore = (*Ledger)(nil)

// Calibration statements run on the connection unprepared: a merge is
// periodic, not per call.
const (
	countCalib = `SELECT COUNT(*) FROM calibration`
	getCalib   = `SELECT value FROM calibration WHERE key = ?1`
	putCalib   = `INSERT INTO calibration (key, value, updated_at) VALUES (?1, ?2, ?3)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
	selectCalib = `SELECT key, value FROM calibration`
)

// MergeCalibration folds deltas into the calibration table in one write
// transaction (so every key's read-merge-write is atomic, against this
// ledger's other writers and, through BEGIN IMMEDIATE, against another
// process on the file), then returns every stored value, read from the
// read pool. merge runs on the writer goroutine: it must be quick and must
// not call the ledger. A merge error or an oversized value fails the whole
// call and stores nothing.
func (l *Ledger) MergeCalibration(ctx context.Context, deltas map[string][]byte,
	merge func(old, delta []byte) ([]byte, error)) (map[string][]byte, error) {
	keys, err := enforcer.CalibrationBatch(deltas, merge)
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		err := l.w.do(ctx, func(tx *wtx) error { return l.mergeCalibration(tx, keys, deltas, merge) })
		if err != nil {
			return nil, err
		}
	}
	return l.readCalibration(ctx)
}

// mergeCalibration merges keys (sorted, so which new keys fit the bound
// does not depend on map order) inside the write transaction.
func (l *Ledger) mergeCalibration(tx *wtx, keys []string, deltas map[string][]byte,
	merge func(old, delta []byte) ([]byte, error)) error {
	var stored int
	if err := tx.conn.QueryRowContext(tx.ctx, countCalib).Scan(&stored); err != nil {
		return l.dbErr("count calibration keys", err)
	}
	now := l.now()
	for _, key := range keys {
		var old []byte
		err := tx.conn.QueryRowContext(tx.ctx, getCalib, key).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows) && stored >= enforcer.MaxCalibrationKeys:
			continue // full: a new key's delta is dropped
		case errors.Is(err, sql.ErrNoRows):
			stored++
			old = nil
		case err != nil:
			return l.dbErr(fmt.Sprintf("read calibration %q", key), err)
		}
		v, err := merge(old, deltas[key])
		if v, err = enforcer.MergedCalibrationValue(key, v, err); err != nil {
			return err
		}
		if v == nil {
			v = []byte{} // NOT NULL: an empty value is still a value
		}
		if _, err := tx.conn.ExecContext(tx.ctx, putCalib, key, v, now); err != nil {
			return l.dbErr(fmt.Sprintf("write calibration %q", key), err)
		}
	}
	return nil
}

// readCalibration returns every stored key's value as last committed.
func (l *Ledger) readCalibration(ctx context.Context) (map[string][]byte, error) {
	rows, err := l.read.QueryContext(ctx, selectCalib)
	if err != nil {
		return nil, l.dbErr("read calibration", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var key string
		var v []byte
		if err := rows.Scan(&key, &v); err != nil {
			return nil, l.dbErr("read calibration", err)
		}
		if v == nil {
			v = []byte{}
		}
		out[key] = v
	}
	if err := rows.Err(); err != nil {
		return nil, l.dbErr("read calibration", err)
	}
	return out, nil
}
