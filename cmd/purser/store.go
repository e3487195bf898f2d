package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/postgres"
	"github.com/purser-dev/purser/store/sqlite"
)

func (eng *engine) openSQLite(ctx context.Context, n enforcer.Notifier) (enforcer.Ledger, error) {
	if err := os.MkdirAll(filepath.Dir(eng.cfg.Store.Path), 0o750); err != nil {
		return nil, fmt.Errorf("store.path %s: %w", eng.cfg.Store.Path, err)
	}
	l, err := sqlite.Open(ctx, eng.cfg.Store.Path, eng.ledgerOptions(n))
	if err != nil {
		return nil, err
	}
	eng.closers = append(eng.closers, l.Close)
	return l, nil
}

// PostgreSQL store defaults (config zero values).
const (
	defaultPGPoolConns        = 16
	defaultPGStatementTimeout = 5 * time.Second
)

// isPostgresDSN: --store given a URL instead of a kind.
func isPostgresDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// validatePostgres checks the postgres store settings (store.kind postgres).
func (s *StoreConfig) validatePostgres(p *problems) {
	if s.DSN == "" {
		p.add("store.dsn", "is required with store.kind postgres (postgres://user@host:5432/db, or set PURSER_STORE__DSN)")
	}
	if s.PoolConnsMax != 0 && s.PoolConnsMax < 2 {
		p.add("store.pool_conns_max", "must be at least 2, got %d", s.PoolConnsMax)
	}
	if s.StatementTimeout < 0 {
		p.add("store.statement_timeout", "must not be negative, got %s", s.StatementTimeout)
	}
	s.FailOpen.validate(p)
}

func (f FailOpenConfig) enabled() bool { return f.CallUSDMax != "" || f.TotalUSDMax != "" }

func (f FailOpenConfig) validate(p *problems) {
	if !f.enabled() {
		return
	}
	call := p.usd("store.fail_open.call_usd_max", f.CallUSDMax)
	total := p.usd("store.fail_open.total_usd_max", f.TotalUSDMax)
	if call <= 0 && f.CallUSDMax != "" {
		p.add("store.fail_open.call_usd_max", "must be above 0 to fail open (leave store.fail_open empty to fail closed)")
	}
	if total < call {
		p.add("store.fail_open.total_usd_max", "must be at least call_usd_max (%s), got %q", call, f.TotalUSDMax)
	}
	if f.JournalEntriesMax < 0 {
		p.add("store.fail_open.journal_entries_max", "must not be negative (0 means the default %d), got %d",
			postgres.DefaultJournalEntriesMax, f.JournalEntriesMax)
	}
}

// openPostgres opens the shared PostgreSQL ledger. Expiry runs on the
// database's clock (no Clock in the options), so hosts agree on it.
func (eng *engine) openPostgres(ctx context.Context, n enforcer.Notifier) (enforcer.Ledger, error) {
	sc := eng.cfg.Store
	pool, timeout := sc.PoolConnsMax, sc.StatementTimeout
	if pool == 0 {
		pool = defaultPGPoolConns
	}
	if timeout == 0 {
		timeout = defaultPGStatementTimeout
	}
	// serve sweeps every minute (sweepEvery), so the store runs no sweeper of its own.
	l, err := postgres.Open(ctx, sc.DSN, eng.ledgerOptions(n), postgres.WithPoolConnsMax(pool),
		postgres.WithStatementTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("store.dsn: %w", err)
	}
	if !sc.FailOpen.enabled() {
		eng.logger.Info("postgres ledger open; fails closed while the database is unreachable", "db", l.Where())
		eng.closers = append(eng.closers, l.Close)
		return l, nil
	}
	call, _ := enforcer.ParseUSD(sc.FailOpen.CallUSDMax) // validated by build
	total, _ := enforcer.ParseUSD(sc.FailOpen.TotalUSDMax)
	log := eng.logger.Named("failopen")
	journal := sc.FailOpen.JournalPath
	if journal == "" {
		journal = filepath.Join(eng.cfg.DataDir, "postgres-failopen.journal")
	}
	f, err := postgres.NewFailOpen(l, postgres.FailOpenOptions{CallMax: call, TotalMax: total,
		JournalPath: journal, JournalEntriesMax: sc.FailOpen.JournalEntriesMax,
		OnEvent: func(msg string, args ...any) { log.Warn(msg, args...) }})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("store.fail_open: %w", err)
	}
	eng.logger.Warn("postgres ledger open; FAILS OPEN while the database is unreachable (bounded)", "db", l.Where(),
		"call_usd_max", call.String(), "total_usd_max", total.String(), "journal", journal)
	eng.closers = append(eng.closers, f.Close)
	return f, nil
}
