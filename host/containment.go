package host

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Containment bounds what a misbehaving or hostile plugin can do to the
// callers around it: how long a caller waits for an instance, how long an
// unhealthy plugin stays quarantined, and how much guest text (log lines,
// reasons, error messages) reaches logs and callers. Zero fields inherit.
type Containment struct {
	// PoolWaitMax bounds a caller's wait for a free instance; past it the
	// call fails with ErrPoolWait and the caller falls back, as for any
	// plugin failure (config plugins.limits.pool_wait_max).
	PoolWaitMax time.Duration
	// QuarantineMax caps the back-off between trial calls of an unhealthy
	// plugin: the first trial comes UnhealthyRetryAfter after it was
	// marked unhealthy, and each failed trial doubles the wait up to this.
	QuarantineMax time.Duration
	// LogLinesPerSecond is the rate of a plugin's token bucket for log
	// lines (all its instances together; the burst is the same number).
	// Lines past it are dropped and counted (Stats.LogLinesDropped).
	LogLinesPerSecond int
	// LogLineBytesMax cuts each guest log line (after escaping).
	LogLineBytesMax int
	// ReasonBytesMax cuts a policy's reason and a guest's error message
	// before they reach a caller (after escaping).
	ReasonBytesMax int
	// TenantInstancesMin raises the pool of an IsolationTenant plugin to
	// at least this many instances (created only as calls need them), so
	// that this many tenants keep a warm instance each and a tenant switch
	// rarely costs an instance creation. 1 keeps InstancesMax as it is;
	// at most 4096.
	TenantInstancesMin int
}

// tenantInstancesCap bounds TenantInstancesMin (the pool's slot array).
const tenantInstancesCap = 4096

// poolSize is the number of instances a version may keep.
func poolSize(l Limits, iso Isolation) int {
	if iso == IsolationTenant {
		return max(l.InstancesMax, min(l.TenantInstancesMin, tenantInstancesCap))
	}
	return l.InstancesMax
}

func defaultContainment() Containment {
	return Containment{PoolWaitMax: 100 * time.Millisecond, QuarantineMax: 10 * time.Minute,
		LogLinesPerSecond: 100, LogLineBytesMax: 1024, ReasonBytesMax: 1024, TenantInstancesMin: 16}
}

func (c Containment) or(base Containment) Containment {
	if c.PoolWaitMax == 0 {
		c.PoolWaitMax = base.PoolWaitMax
	}
	if c.QuarantineMax == 0 {
		c.QuarantineMax = base.QuarantineMax
	}
	if c.LogLinesPerSecond == 0 {
		c.LogLinesPerSecond = base.LogLinesPerSecond
	}
	if c.LogLineBytesMax == 0 {
		c.LogLineBytesMax = base.LogLineBytesMax
	}
	if c.ReasonBytesMax == 0 {
		c.ReasonBytesMax = base.ReasonBytesMax
	}
	if c.TenantInstancesMin == 0 {
		c.TenantInstancesMin = base.TenantInstancesMin
	}
	return c
}

// Isolation says which callers may share the state a guest keeps in an
// instance between calls (memory, globals, tables). See abi/ABI.md,
// "Isolation between tenants".
type Isolation uint8

const (
	// IsolationTenant (the default): an instance serves one tenant, the
	// root account of its first call, for its whole life. A call for
	// another tenant takes a fresh instance (post-init state), replacing
	// an idle instance of another tenant when the pool is full, so no
	// byte of one tenant's calls is visible to another's.
	IsolationTenant Isolation = iota
	// IsolationShared: instances serve every tenant; whatever a guest
	// keeps between calls is visible to the next caller, whoever it is.
	// For stateless plugins the operator trusts; saves the instance
	// creation a tenant switch costs.
	IsolationShared
)

func (i Isolation) String() string {
	if i == IsolationShared {
		return "shared"
	}
	return "tenant"
}

// ParseIsolation reads "tenant" (or "") and "shared".
func ParseIsolation(s string) (Isolation, error) {
	switch s {
	case "", "tenant":
		return IsolationTenant, nil
	case "shared":
		return IsolationShared, nil
	}
	return 0, fmt.Errorf("isolation %q: want tenant or shared", s)
}

// TenantResolver maps an account to its tenant key, the root account (an
// account without a parent). Names do not say it: "P/x" descends from P,
// but a child may also be named without a '/', so the ledger decides.
// It is called once per call of an IsolationTenant plugin and must be
// cheap (cache: an account's root never changes).
type TenantResolver interface {
	RootAccount(ctx context.Context, account string) (string, error)
}

// ErrTenant: the call's tenant could not be determined (the resolver
// failed), so the host does not run it on any instance. Not a plugin
// failure: the caller falls back.
var ErrTenant = errors.New("cannot determine the call's tenant")

// tenantOf is the key an instance must carry to serve a call for account
// ("" for shared plugins, which every instance serves): the root account,
// or the account itself without a resolver (never less isolated than by
// root). It does not allocate when the resolver does not.
func (h *Host) tenantOf(ctx context.Context, iso Isolation, account string) (string, error) {
	if iso == IsolationShared {
		return "", nil
	}
	root := account
	if h.cfg.Tenants != nil {
		r, err := h.cfg.Tenants.RootAccount(ctx, account)
		if err != nil {
			return "", err
		}
		root = r
	}
	if root == "" {
		return noAccountTenant, nil // calls without an account are a tenant too, apart from shared ""
	}
	return root, nil
}

// noAccountTenant keys calls made without an account: invalid UTF-8, so
// no account id that came through JSON or YAML can equal it.
const noAccountTenant = "\xff"
