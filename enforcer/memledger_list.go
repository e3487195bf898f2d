package enforcer

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// Reservations lists what the ledger remembers on one account. Every
// reservation of a tree is either pending (in its expiry heap) or settled
// and retained (in its done queue), so the scan is over that one tree
// only, under its lock: O(the tree's remembered reservations).
func (l *MemoryLedger) Reservations(_ context.Context, f ReservationFilter) ([]Reservation, error) {
	f, err := f.Validate()
	if err != nil {
		return nil, err
	}
	a, err := l.account(f.Account)
	if err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	t := a.tree
	t.mu.Lock()
	now := l.clock.Now()
	l.expire(t, now) // overdue holds move to done as expired
	var out []Reservation
	keep := func(rec *memRes) {
		if rec.acct == a && (f.State == "" || rec.r.State == f.State) {
			out = append(out, rec.out())
		}
	}
	if f.State == "" || f.State == StatePending {
		for _, rec := range t.expiry {
			keep(rec)
		}
	}
	if f.State != StatePending {
		for _, ent := range t.done[t.doneHead:] {
			if ent.seq == ent.rec.doneSeq { // skip entries a late commit superseded
				keep(ent.rec)
			}
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(x, y Reservation) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), cmp.Compare(x.ID, y.ID))
	})
	return out[:min(len(out), f.Limit)], nil
}
