package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
)

// containment is the part of plugins.limits (and of an entry's limits)
// that protects callers from a plugin: host.Containment.
func (c LimitsConfig) containment(p *problems, path string) host.Containment {
	for name, v := range map[string]int64{"pool_wait_max": int64(c.PoolWaitMax), "quarantine_max": int64(c.QuarantineMax),
		"log_lines_per_second": int64(c.LogLinesPerSecond), "log_line_bytes_max": int64(c.LogLineBytesMax),
		"reason_bytes_max": int64(c.ReasonBytesMax), "tenant_instances_min": int64(c.TenantInstancesMin)} {
		if v < 0 {
			p.add(path+"."+name, "must be >= 0 (0 = default), got %d", v)
		}
	}
	if c.TenantInstancesMin > 4096 {
		p.add(path+".tenant_instances_min", "must be <= 4096, got %d", c.TenantInstancesMin)
	}
	for name, v := range map[string]int{"log_line_bytes_max": c.LogLineBytesMax, "reason_bytes_max": c.ReasonBytesMax} {
		if v != 0 && v < 16 {
			p.add(path+"."+name, "must be >= 16 bytes (0 = default), got %d", v)
		}
	}
	return host.Containment{PoolWaitMax: c.PoolWaitMax, QuarantineMax: c.QuarantineMax, LogLinesPerSecond: c.LogLinesPerSecond,
		LogLineBytesMax: c.LogLineBytesMax, ReasonBytesMax: c.ReasonBytesMax, TenantInstancesMin: c.TenantInstancesMin}
}

// ledgerTenants resolves an account's root (its tenant for plugin
// isolation) by walking parents in the ledger. Names cannot tell: "P/x"
// descends from P, but a child may have a name without '/'. An account's
// parent never changes (no ledger operation moves or deletes one), so
// roots are cached; an unknown account is its own tenant and is not
// cached (it may be created later, under a parent).
type ledgerTenants struct {
	ledger atomic.Pointer[enforcer.Ledger] // set once the ledger is open

	roots sync.Map // account -> root; read on every plugin call, lock-free
	size  atomic.Int64
}

// tenantCacheMax bounds the cache; past it the cache starts over.
const tenantCacheMax = 100_000

// tenantDepthMax bounds the walk (a corrupt store could hold a cycle).
const tenantDepthMax = 64

func (t *ledgerTenants) RootAccount(ctx context.Context, account string) (string, error) {
	if root, ok := t.roots.Load(account); ok {
		return root.(string), nil
	}
	lp := t.ledger.Load()
	if lp == nil {
		return account, nil // a call before the ledger opened (a load's smoke test)
	}
	ledger := *lp
	id := account
	for depth := 0; ; depth++ {
		if depth == tenantDepthMax {
			return "", fmt.Errorf("account %q: more than %d ancestors", account, tenantDepthMax)
		}
		snap, err := ledger.Snapshot(ctx, id)
		if errors.Is(err, enforcer.ErrAccountNotFound) && id == account {
			return account, nil
		}
		if err != nil {
			return "", fmt.Errorf("root of account %q: %w", account, err)
		}
		if snap.Parent == "" {
			break
		}
		id = snap.Parent
	}
	if t.size.Add(1) > tenantCacheMax {
		t.roots.Clear()
		t.size.Store(1)
	}
	t.roots.Store(account, id)
	return id, nil
}
