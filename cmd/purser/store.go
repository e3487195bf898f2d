package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/purser-dev/purser/enforcer"
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
