package main

import (
	"context"
	"errors"

	"github.com/purser-dev/purser/enforcer"
)

func (eng *engine) openSQLite(ctx context.Context, n enforcer.Notifier) (enforcer.Ledger, error) {
	_ = ctx
	_ = n
	return nil, errors.New("store.kind sqlite: not built yet; use store.kind: memory")
}
