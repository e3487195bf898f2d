package enforcer

import (
	"context"
	"fmt"
)

// SyncCalibration merges what this enforcer learned since the last sync
// into Config.CalibrationStore and adopts the merged state of every key,
// so hosts sharing a store converge and a restarted host starts from what
// was learned before. Call it periodically (`purser serve` does, every
// calibration.sync_interval): between syncs a host does not see the others'
// samples, so calibration is at most one interval stale. Without a store
// it does nothing. On a store error the deltas are kept for the next sync.
func (e *Enforcer) SyncCalibration(ctx context.Context) error {
	return e.calib.sync(ctx)
}

func (c *calibrator) sync(ctx context.Context) error {
	if c.store == nil {
		return nil
	}
	c.mu.Lock()
	sent := c.deltas
	c.deltas = map[string]*calibStats{}
	c.mu.Unlock()
	enc := make(map[string][]byte, len(sent))
	for k, d := range sent {
		enc[k] = d.encode()
	}
	merged, err := c.store.MergeCalibration(ctx, enc, c.mergeEncoded)
	if err != nil {
		c.restore(sent)
		return fmt.Errorf("calibration sync: %w", err)
	}
	decoded := make(map[string]*calibStats, len(merged))
	for k, v := range merged {
		s, err := decodeCalibStats(v)
		if err != nil {
			return fmt.Errorf("calibration sync: key %q: %w", k, err)
		}
		decoded[k] = s
	}
	c.adopt(decoded)
	return nil
}

// mergeEncoded is the store's merge: old + delta, halved past the cap.
func (c *calibrator) mergeEncoded(old, delta []byte) ([]byte, error) {
	d, err := decodeCalibStats(delta)
	if err != nil {
		return nil, err
	}
	s := &calibStats{}
	if old != nil {
		if s, err = decodeCalibStats(old); err != nil {
			return nil, err
		}
	}
	s.merge(d, c.cfg.CountCap)
	return s.encode(), nil
}

// restore puts unsent deltas back in front of what was learned meanwhile.
func (c *calibrator) restore(sent map[string]*calibStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, d := range sent {
		if later := c.deltas[k]; later != nil {
			d.merge(later, c.cfg.CountCap)
		}
		c.deltas[k] = d
	}
}

// adopt replaces each stored key's local view with the store's value plus
// what was learned here while the sync ran (not yet in the store).
func (c *calibrator) adopt(stored map[string]*calibStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range stored {
		if _, ok := c.keys[k]; !ok && len(c.keys) >= MaxCalibrationKeys {
			continue
		}
		if d := c.deltas[k]; d != nil {
			s.merge(d, c.cfg.CountCap)
		}
		c.keys[k] = s
	}
}
