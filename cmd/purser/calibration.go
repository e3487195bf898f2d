package main

import (
	"context"
	"maps"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// CalibrationConfig is the `calibration` section: how LLM holds learn from
// settled spend (ACCURACY.md) and how often what was learned is merged
// through the store (SQLite, PostgreSQL: shared by every host on it).
type CalibrationConfig struct {
	Disabled bool `koanf:"disabled"`
	// Quantile of actual/base a hold is placed at (0.95: about 5% of holds
	// end below the actual).
	Quantile           float64       `koanf:"quantile"`
	PriorRatio         float64       `koanf:"prior_ratio"`
	PriorWeight        int           `koanf:"prior_weight"`
	CountCap           int           `koanf:"count_cap"`
	CacheLifetime      time.Duration `koanf:"cache_lifetime"`
	MinCacheableTokens int64         `koanf:"min_cacheable_tokens"`
	MaxSessions        int           `koanf:"max_sessions"`
	// TailOverrunBP lets a call that cannot extend its hold pass the
	// remaining budget at its p99 by this share of the limit, in basis
	// points (default 0: strict, never overdrawn by an under-estimate).
	TailOverrunBP int64 `koanf:"tail_overrun_bp"`
	// SyncInterval is how often calibration is merged through the store:
	// what other hosts learned is at most this stale, and at most this
	// much learning is lost if the process dies.
	SyncInterval time.Duration `koanf:"sync_interval"`
}

// withCalibrationDefaults adds the section's embedded defaults to d.
func withCalibrationDefaults(d map[string]any) map[string]any {
	cd := enforcer.DefaultCalibrationConfig()
	maps.Copy(d, map[string]any{
		"calibration.quantile": cd.Quantile, "calibration.prior_ratio": cd.PriorRatio, "calibration.prior_weight": cd.PriorWeight,
		"calibration.count_cap": cd.CountCap, "calibration.cache_lifetime": cd.CacheLifetime.String(),
		"calibration.min_cacheable_tokens": cd.MinCacheableTokens, "calibration.max_sessions": cd.MaxSessions,
		"calibration.sync_interval": "30s",
	})
	return d
}

// build checks the section and puts it in the enforcer's config.
func (c CalibrationConfig) build(p *problems, ec *enforcer.Config) {
	ec.Calibration = enforcer.CalibrationConfig{Disabled: c.Disabled, Quantile: c.Quantile, PriorRatio: c.PriorRatio,
		PriorWeight: c.PriorWeight, CountCap: c.CountCap, CacheLifetime: c.CacheLifetime,
		MinCacheableTokens: c.MinCacheableTokens, MaxSessions: c.MaxSessions, TailOverrunBP: c.TailOverrunBP}
	if err := enforcer.ValidateCalibrationConfig(ec.Calibration); err != nil {
		p.add("calibration", "%v", err)
	}
	if c.SyncInterval < time.Second || c.SyncInterval > 24*time.Hour {
		p.add("calibration.sync_interval", "must be within 1s..24h, got %s", c.SyncInterval)
	}
}

// calibrationStore is the ledger's CalibrationStore, if it keeps one and
// calibration is on.
func calibrationStore(l enforcer.Ledger, c CalibrationConfig) enforcer.CalibrationStore {
	if s, ok := l.(enforcer.CalibrationStore); ok && !c.Disabled {
		return s
	}
	return nil
}

// syncCalibration merges calibration through the store; serve calls it
// once before serving (to load what was learned before),
// every calibration.sync_interval and once on the way out, before the
// store closes, so a clean stop loses nothing learned.
func (eng *engine) syncCalibration(ctx context.Context) {
	if err := eng.enforcer.SyncCalibration(ctx); err != nil {
		eng.logger.Warn("calibration sync failed", "error", err)
	}
}
