package enforcer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Commit charges a reservation and releases the rest of its hold.
func (l *MemoryLedger) Commit(ctx context.Context, id string, actual *Nanos, source CostSource) (Reservation, error) {
	return l.CommitWith(ctx, CommitRequest{ID: id, Actual: actual, Source: source})
}

// CommitWith is Commit recording what the charge was priced from.
func (l *MemoryLedger) CommitWith(_ context.Context, req CommitRequest) (Reservation, error) {
	source, err := CommitSource(req.ID, req.Actual, req.Source)
	if err != nil {
		return Reservation{}, err
	}
	if err := req.Validate(); err != nil {
		return Reservation{}, err
	}
	rec, t, err := l.lockRes("commit", req.ID)
	if err != nil {
		return Reservation{}, err
	}
	a := rec.acct
	now := l.clock.Now()
	l.expire(t, now)
	charge := rec.r.Held()
	if req.Actual != nil {
		charge = *req.Actual
	}
	if err := commitable(rec, a, charge, source); err != nil {
		r := rec.out()
		t.mu.Unlock()
		if err == errSameCommit {
			r.Replayed = true
			return r, nil
		}
		return Reservation{}, err
	}
	if req.Usage != nil {
		u := *req.Usage // the caller's copy stays the caller's
		rec.r.Usage = &u
	}
	rec.r.PriceSource = req.PriceSource
	r := l.charge(t, rec, charge, source, now)
	l.unlockAndNotify(t)
	return r, nil
}

// charge settles rec for charge and rolls it up every ancestor, queueing
// any alerts on t; t.mu must be held and commitable must have passed.
func (l *MemoryLedger) charge(t *memTree, rec *memRes, charge Nanos, source CostSource, now time.Time) Reservation {
	wasPending := rec.r.State == StatePending
	if wasPending {
		t.expiry.remove(rec)
	}
	// Retention counts from the commit, also for a late one (queued once
	// already at its expiry), so a commit retry within RetainSettled
	// finds it.
	t.finish(rec, now.UnixNano())
	rec.r.State, rec.r.Charged, rec.r.CostSource = StateCommitted, charge, source
	rec.r.SettledAt, rec.r.Late = now, !wasPending
	held := rec.r.Held()
	for x := rec.acct; x != nil; x = x.parent {
		if wasPending {
			x.pending -= held
		}
		x.committed += charge
		if rec.r.Tool != "" {
			st := x.tools[rec.r.Tool]
			st.Calls++
			st.Spent += charge
			x.tools[rec.r.Tool] = st
		}
		t.scratch = x.settle(l.thresholds, now, t.scratch)
	}
	return rec.out()
}

// errSameCommit marks an idempotent repeat of a commit; never returned.
var errSameCommit = errors.New("same commit")

// commitable says whether rec may be charged; the tree mu is held.
func commitable(rec *memRes, a *memAccount, charge Nanos, source CostSource) error {
	switch rec.r.State {
	case StateCommitted:
		if rec.r.Charged == charge && rec.r.CostSource == source {
			return errSameCommit
		}
		return fmt.Errorf("commit %q: %w: committed %s (%s) before", rec.r.ID, ErrReservationSettled, rec.r.Charged, rec.r.CostSource)
	case StateReleased:
		return fmt.Errorf("commit %q: %w: released before", rec.r.ID, ErrReservationSettled)
	}
	for x := a; x != nil; x = x.parent {
		if _, err := x.committed.Add(charge); err != nil {
			return fmt.Errorf("commit %q: committed on %q: %w", rec.r.ID, x.id, err)
		}
	}
	return nil
}

// Release ends a pending reservation at no cost.
func (l *MemoryLedger) Release(_ context.Context, id string) (Reservation, error) {
	rec, t, err := l.lockRes("release", id)
	if err != nil {
		return Reservation{}, err
	}
	a := rec.acct
	defer t.mu.Unlock()
	now := l.clock.Now()
	l.expire(t, now)
	switch rec.r.State {
	case StateReleased:
		r := rec.out()
		r.Replayed = true
		return r, nil // a retry after a lost reply
	case StatePending:
	default:
		return Reservation{}, fmt.Errorf("release %q: %w: %s", id, ErrReservationSettled, rec.r.State)
	}
	t.expiry.remove(rec)
	held := rec.r.Held()
	for x := a; x != nil; x = x.parent {
		x.pending -= held
	}
	rec.r.State, rec.r.SettledAt = StateReleased, now
	t.finish(rec, now.UnixNano())
	return rec.out(), nil
}

// resHeap is a min-heap of pending reservations by expiry; each record
// knows its index so settling one is O(log n) without a search.
type resHeap []*memRes

func (h *resHeap) push(rec *memRes) {
	rec.heapIdx = len(*h)
	*h = append(*h, rec)
	h.up(rec.heapIdx)
}

func (h *resHeap) pop() *memRes {
	rec := (*h)[0]
	h.remove(rec)
	return rec
}

func (h *resHeap) remove(rec *memRes) {
	s := *h
	i, last := rec.heapIdx, len(s)-1
	if i != last {
		s[i] = s[last]
		s[i].heapIdx = i
	}
	s[last] = nil
	*h = s[:last]
	if i != last {
		h.down(i)
		h.up(i)
	}
	rec.heapIdx = -1
}

func (h resHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].exp <= h[i].exp {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h resHeap) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1].exp < h[c].exp {
			c++
		}
		if h[i].exp <= h[c].exp {
			return
		}
		h.swap(i, c)
		i = c
	}
}

func (h resHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
