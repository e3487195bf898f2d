package enforcer

import (
	"context"
	"fmt"
	"math/bits"
	"time"
)

// CreateAccount adds an account; the parent must exist.
func (l *MemoryLedger) CreateAccount(_ context.Context, spec AccountSpec) (Snapshot, error) {
	if err := spec.Validate(); err != nil {
		return Snapshot{}, fmt.Errorf("create account %q: %w", spec.ID, err)
	}
	l.createMu.Lock()
	defer l.createMu.Unlock()
	if _, err := l.account(spec.ID); err == nil {
		return Snapshot{}, fmt.Errorf("create account %q: %w", spec.ID, ErrAccountExists)
	}
	a := &memAccount{
		id:       spec.ID,
		allocate: spec.AllocateChildren,
		labels:   cloneLabels(spec.Labels),
		tools:    make(map[string]ToolStats),
	}
	if spec.Limit != nil {
		a.hasLimit, a.limit = true, *spec.Limit
	}
	if spec.Parent == "" {
		a.tree = &memTree{}
		l.trees = append(l.trees, a.tree)
		a.setThresholds(l.thresholds)
		l.storeAccount(a)
		return a.snapshot(), nil
	}
	p, err := l.account(spec.Parent)
	if err != nil {
		return Snapshot{}, fmt.Errorf("create account %q: parent: %w", spec.ID, err)
	}
	a.parent, a.tree = p, p.tree
	t := p.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := a.applyPercent(spec.PercentOfParent); err != nil {
		return Snapshot{}, fmt.Errorf("create account %q: %w", spec.ID, err)
	}
	if err := p.allocateChild(a.id, 0, a.hasLimit, a.limit); err != nil {
		return Snapshot{}, err
	}
	a.setThresholds(l.thresholds)
	l.storeAccount(a)
	return a.snapshot(), nil
}

// applyPercent fixes a percentage child's limit from its parent's limit,
// rounding down so children never get more than their share.
func (a *memAccount) applyPercent(pct int) error {
	if pct == 0 {
		return nil
	}
	p := a.parent
	if !p.hasLimit {
		return fmt.Errorf("%w: %d%% of parent %q, which has no limit", ErrInvalidAccount, pct, p.id)
	}
	hi, lo := bits.Mul64(uint64(p.limit), uint64(pct))
	q, _ := bits.Div64(hi, lo, 100) // hi < 100 since pct <= 100
	a.hasLimit, a.limit = true, Nanos(q)
	return nil
}

// allocateChild checks that a supervisor can give child a fixed limit of
// newLim (replacing oldLim) and records it; the tree mu must be held.
func (p *memAccount) allocateChild(child string, oldLim Nanos, hasNew bool, newLim Nanos) error {
	if !p.allocate {
		return nil
	}
	if !hasNew {
		newLim = 0
	}
	others := p.allocated - oldLim
	total, err := others.Add(newLim)
	if err != nil || (p.hasLimit && total > p.limit) {
		return &SupervisorBudgetError{Supervisor: p.id, Account: child, Requested: newLim, Allocated: others, Limit: p.limit}
	}
	p.allocated = total
	return nil
}

// setThresholds recomputes the committed amounts at which each threshold
// is crossed: ceil(limit*pct/100), so committed*100 >= limit*pct.
func (a *memAccount) setThresholds(pcts []int) {
	a.thrNanos = a.thrNanos[:0]
	if !a.hasLimit {
		return
	}
	for _, p := range pcts {
		n, err := MulRatioCeil(a.limit, int64(p), 100)
		if err != nil {
			n = MaxNanos
		}
		a.thrNanos = append(a.thrNanos, n)
	}
}

// settle re-evaluates thresholds and overdraft after committed spend or the
// limit changed, appending alerts for rising crossings; tree mu held.
func (a *memAccount) settle(pcts []int, now time.Time, alerts []Alert) []Alert {
	level := 0
	if a.committed > 0 {
		for level < len(a.thrNanos) && a.committed >= a.thrNanos[level] {
			level++
		}
	}
	for ; a.fired < level; a.fired++ {
		p := pcts[a.fired]
		alerts = append(alerts, Alert{Account: a.id, ThresholdPct: p, Level: LevelFor(p),
			Committed: a.committed, Limit: a.limit, At: now})
	}
	a.fired = level // re-arms thresholds the spend fell back below
	over := a.hasLimit && a.committed > a.limit
	if over && !a.overdrawn {
		alerts = append(alerts, Alert{Account: a.id, Level: AlertCritical,
			Committed: a.committed, Limit: a.limit, Overdrawn: true, At: now})
	}
	a.overdrawn = over
	return alerts
}

// SetLimit changes an account's limit; committed spend is untouched.
func (l *MemoryLedger) SetLimit(_ context.Context, account string, limit *Nanos) (Snapshot, error) {
	a, err := l.account(account)
	if err != nil {
		return Snapshot{}, fmt.Errorf("set limit: %w", err)
	}
	if limit != nil && *limit < 0 {
		return Snapshot{}, fmt.Errorf("set limit on %q: %w: negative limit %s", account, ErrInvalidAccount, *limit)
	}
	t := a.tree
	t.mu.Lock()
	if err := a.checkNewLimit(limit); err != nil {
		t.mu.Unlock()
		return Snapshot{}, err
	}
	if a.parent != nil {
		oldLim := a.limit
		if !a.hasLimit {
			oldLim = 0
		}
		newLim := Nanos(0)
		if limit != nil {
			newLim = *limit
		}
		if err := a.parent.allocateChild(a.id, oldLim, limit != nil, newLim); err != nil {
			t.mu.Unlock()
			return Snapshot{}, err
		}
	}
	a.hasLimit, a.limit = limit != nil, 0
	if limit != nil {
		a.limit = *limit
	}
	now := l.clock.Now()
	l.expire(t, now)
	a.setThresholds(l.thresholds)
	t.scratch = a.settle(l.thresholds, now, t.scratch)
	s := a.snapshot()
	l.unlockAndNotify(t)
	return s, nil
}

// checkNewLimit refuses to shrink a supervisor below what its children hold.
func (a *memAccount) checkNewLimit(limit *Nanos) error {
	if !a.allocate || limit == nil || *limit >= a.allocated {
		return nil
	}
	return &SupervisorBudgetError{Supervisor: a.id, Requested: *limit, Allocated: a.allocated, Limit: a.limit}
}

// SetLabels replaces an account's labels.
func (l *MemoryLedger) SetLabels(_ context.Context, account string, labels map[string]string) (Snapshot, error) {
	a, err := l.account(account)
	if err != nil {
		return Snapshot{}, fmt.Errorf("set labels: %w", err)
	}
	t := a.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	a.labels = cloneLabels(labels)
	l.expire(t, l.clock.Now())
	return a.snapshot(), nil
}
