package enforcer

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sync"
)

// Extend grows a pending hold on its account and every ancestor under
// the tree's lock, so the check and the hold are one step, as in Reserve.
func (l *MemoryLedger) Extend(_ context.Context, req ExtendRequest) (Reservation, error) {
	if err := req.Validate(); err != nil {
		return Reservation{}, err
	}
	rec, t, err := l.lockRes("extend", req.ID)
	if err != nil {
		return Reservation{}, err
	}
	now := l.clock.Now()
	l.expire(t, now)
	if was, ok := rec.extension(req.ExtensionID); ok {
		r := rec.view(now)
		t.mu.Unlock()
		if err := SameExtension(req, was); err != nil {
			return Reservation{}, err
		}
		r.Replayed = true
		return r, nil // a retry after a lost reply: the hold as it is now
	}
	if err := ExtendAllowed(rec.view(now), len(rec.exts), req.Add); err != nil {
		t.mu.Unlock()
		return Reservation{}, err
	}
	if err := rec.acct.admit(req.Add); err != nil {
		t.mu.Unlock()
		if _, ok := err.(*InsufficientBudgetError); ok {
			return Reservation{}, err // the deny sentence, as from Reserve
		}
		return Reservation{}, fmt.Errorf("extend %q on account %q: %w", req.ID, rec.r.Account, err)
	}
	for x := rec.acct; x != nil; x = x.parent {
		x.pending += req.Add
	}
	rec.r.Extended += req.Add
	rec.exts = append(rec.exts, memExt{id: req.ExtensionID, add: req.Add})
	r := rec.out()
	t.mu.Unlock()
	return r, nil
}

var _ ExtensionLookup = (*MemoryLedger)(nil)

// ExtensionAdded says what extension extensionID added to reservation id,
// if it is recorded.
func (l *MemoryLedger) ExtensionAdded(_ context.Context, id, extensionID string) (Nanos, bool, error) {
	rec, t, err := l.lockRes("extension", id)
	if err != nil {
		return 0, false, err
	}
	defer t.mu.Unlock()
	add, ok := rec.extension(extensionID)
	return add, ok, nil
}

// extension returns what the extension id added to rec, if it was seen.
// A linear scan: MaxExtensions bounds the list, and most holds have none.
func (rec *memRes) extension(id string) (Nanos, bool) {
	for _, e := range rec.exts {
		if e.id == id {
			return e.add, true
		}
	}
	return 0, false
}

// resetExts empties a forgotten record's extension list for reuse.
func resetExts(exts []memExt) []memExt {
	if cap(exts) > maxKeptExts {
		return nil
	}
	clear(exts)
	return exts[:0]
}

var _ CalibrationStore = (*MemoryLedger)(nil)

// memCalib is the memory ledger's calibration state: one mutex over the
// whole map, held for a whole batch (merges are periodic and small, so
// atomic per batch costs nothing and is atomic per key a fortiori).
type memCalib struct {
	mu sync.Mutex
	m  map[string][]byte
}

// MergeCalibration folds deltas into the stored values (see
// CalibrationStore). A merge error or an oversized result stores nothing
// of the batch.
func (l *MemoryLedger) MergeCalibration(_ context.Context, deltas map[string][]byte, merge func(old, delta []byte) ([]byte, error)) (map[string][]byte, error) {
	keys, err := CalibrationBatch(deltas, merge)
	if err != nil {
		return nil, err
	}
	c := &l.calib
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string][]byte)
	}
	merged := make(map[string][]byte, len(keys))
	added := 0
	for _, k := range keys {
		old, ok := c.m[k]
		if !ok && len(c.m)+added >= MaxCalibrationKeys {
			continue // full: a new key's delta is dropped
		}
		// A clone: a merge that writes into old and then fails must not
		// leave the stored value half merged.
		v, err := merge(bytes.Clone(old), deltas[k])
		if v, err = MergedCalibrationValue(k, v, err); err != nil {
			return nil, err
		}
		merged[k] = bytes.Clone(v) // merge may return the caller's delta
		if !ok {
			added++
		}
	}
	maps.Copy(c.m, merged)
	out := make(map[string][]byte, len(c.m))
	for k, v := range c.m {
		out[k] = bytes.Clone(v)
	}
	return out, nil
}
