package enforcer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Check reports whether estimate fits the account and all its ancestors.
func (l *MemoryLedger) Check(_ context.Context, account string, estimate Nanos) (BudgetCheck, error) {
	if estimate < 0 {
		return BudgetCheck{}, fmt.Errorf("check %q: %w: negative estimate %s", account, ErrInvalidAmount, estimate)
	}
	a, err := l.account(account)
	if err != nil {
		return BudgetCheck{}, fmt.Errorf("check: %w", err)
	}
	t := a.tree
	t.mu.Lock()
	l.expire(t, l.clock.Now())
	bc := a.check(estimate)
	t.mu.Unlock()
	return bc, nil
}

// check finds the tightest account on a's path: an overdrawn one if any
// (it refuses everything), else the one with the least remaining. The tree
// mu must be held.
func (a *memAccount) check(est Nanos) BudgetCheck {
	bc := BudgetCheck{Account: a.id, Remaining: MaxNanos}
	for x := a; x != nil; x = x.parent {
		if !x.hasLimit {
			continue
		}
		rem := RemainingOf(x.limit, x.committed, x.pending)
		switch {
		case x.overdrawn && !bc.Overdrawn:
			bc = BudgetCheck{Account: x.id, Remaining: rem, Overdrawn: true}
		case !bc.Overdrawn && rem < bc.Remaining:
			bc.Account, bc.Remaining = x.id, rem
		}
	}
	bc.OK = !bc.Overdrawn && est <= bc.Remaining
	return bc
}

// Reserve holds the estimate on the account and every ancestor.
func (l *MemoryLedger) Reserve(ctx context.Context, req ReserveRequest) (Reservation, error) {
	if err := req.Validate(); err != nil {
		return Reservation{}, err
	}
	a, err := l.account(req.Account)
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve %q: %w", req.ID, err)
	}
	t, sh := a.tree, l.shard(req.ID)
	t.mu.Lock()
	now := l.clock.Now()
	l.expire(t, now)
	// The shard stays locked from the id lookup to the insert so two
	// reserves of one id on different trees cannot both succeed.
	sh.mu.Lock()
	if rec, ok := sh.m[req.ID]; ok {
		// Only the request fields may be read here (the state belongs to
		// the record's tree lock, which may not be t's).
		first := Reservation{Account: rec.r.Account, Tool: rec.r.Tool, Estimate: rec.r.Estimate, Fingerprint: rec.r.Fingerprint}
		ttl := rec.ttl
		sh.mu.Unlock()
		t.mu.Unlock()
		if err := SameRequest(first, ttl, req); err != nil {
			return Reservation{}, err
		}
		return l.retried(ctx, req)
	}
	if err := a.admit(req.Estimate); err != nil {
		sh.mu.Unlock()
		t.mu.Unlock()
		if _, ok := err.(*InsufficientBudgetError); ok {
			return Reservation{}, err // its text is the user-facing deny reason
		}
		return Reservation{}, fmt.Errorf("reserve %q on account %q: %w", req.ID, req.Account, err)
	}
	r := hold(t, sh, a, req, now)
	t.mu.Unlock()
	return r, nil
}

// hold records an admitted reservation: it indexes it (and unlocks sh),
// then adds it to every pending total and the expiry heap; t.mu is held.
func hold(t *memTree, sh *resShard, a *memAccount, req ReserveRequest, now time.Time) Reservation {
	exp := now.Add(req.TTL)
	rec := t.newRes()
	rec.r = Reservation{ID: req.ID, Account: req.Account, Tool: req.Tool, Estimate: req.Estimate,
		State: StatePending, CreatedAt: now, ExpiresAt: exp, Fingerprint: req.Fingerprint,
		BaseEstimate: req.BaseEstimate, CalibrationKey: req.CalibrationKey}
	rec.acct, rec.ttl, rec.exp = a, req.TTL, exp.UnixNano()
	sh.m[req.ID] = rec
	sh.mu.Unlock()
	for x := a; x != nil; x = x.parent {
		x.pending += req.Estimate
	}
	t.expiry.push(rec)
	return rec.r
}

// admit refuses est if it does not fit, or if a pending total would
// overflow; the tree mu must be held.
func (a *memAccount) admit(est Nanos) error {
	bc := a.check(est)
	if !bc.OK {
		return &InsufficientBudgetError{Account: bc.Account, Estimate: est, Remaining: bc.Remaining, Overdrawn: bc.Overdrawn}
	}
	for x := a; x != nil; x = x.parent {
		if _, err := x.pending.Add(est); err != nil {
			return fmt.Errorf("pending on %q: %w", x.id, err)
		}
	}
	return nil
}

// view is the reservation as callers see it at now: an overdue hold reads
// as expired even before anything dropped it. The tree mu must be held.
func (rec *memRes) view(now time.Time) Reservation {
	r := rec.out()
	if r.State == StatePending && rec.exp <= now.UnixNano() {
		r.State, r.SettledAt = StateExpired, r.ExpiresAt
	}
	return r
}

// out is the reservation as callers may keep it: the recorded usage is
// copied, so a caller writing through the pointer cannot change the
// ledger. The tree mu must be held.
func (rec *memRes) out() Reservation {
	r := rec.r
	if r.Usage != nil {
		u := *r.Usage
		r.Usage = &u
	}
	return r
}

// Reservation returns the current state of a reservation.
func (l *MemoryLedger) Reservation(_ context.Context, id string) (Reservation, error) {
	rec, t, err := l.lockRes("reservation", id)
	if err != nil {
		return Reservation{}, err
	}
	r := rec.view(l.clock.Now())
	t.mu.Unlock()
	return r, nil
}

// retried answers a Reserve whose id exists with the same fields: the
// reservation as it is now, or a fresh attempt if it was just forgotten.
func (l *MemoryLedger) retried(ctx context.Context, req ReserveRequest) (Reservation, error) {
	r, err := l.Reservation(ctx, req.ID)
	if errors.Is(err, ErrReservationNotFound) {
		return l.Reserve(ctx, req)
	}
	return r, err
}

// lockRes finds the record of id and returns it with its tree locked. The
// record may be forgotten and reused between the index lookup and the
// lock, so the id is checked again under the lock.
func (l *MemoryLedger) lockRes(op, id string) (*memRes, *memTree, error) {
	sh := l.shard(id)
	for {
		sh.mu.Lock()
		rec, ok := sh.m[id]
		sh.mu.Unlock()
		if !ok {
			return nil, nil, fmt.Errorf("%s %q: %w", op, id, ErrReservationNotFound)
		}
		t := rec.tree
		t.mu.Lock()
		if rec.r.ID == id {
			return rec, t, nil
		}
		t.mu.Unlock()
	}
}
