package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// FailOpen is a bounded fail-open in front of a Ledger, for deployments
// that prefer letting cheap calls through over stopping every agent while
// PostgreSQL is unreachable. Without it (the default) the ledger fails
// closed: every check and reservation errors with ErrUnavailable.
//
// While the database is unreachable, FailOpen admits a call only if its
// estimate is at most CallMax and the spend this process has admitted but
// not yet written to the shared ledger stays within TotalMax. Those holds
// live in this process's memory: they can be committed (charging the
// actual cost, or the estimate), released or left to expire like any other,
// and a background loop writes every committed charge to the shared ledger
// (Ledger.Charge) as soon as it answers again — without a budget check,
// because the money was spent, so an account can end up overdrawn (and
// alerts then fire). What this gives up, and DEPLOYMENT.md spells out: the
// budget is not enforced during the outage beyond CallMax per call and
// TotalMax per process (N hosts can overspend by N x TotalMax), and charges
// not yet written are lost if this process dies before the database returns.
//
// Everything else (account changes, snapshots, Sweep) goes to the Ledger
// and fails closed.
type FailOpen struct {
	*Ledger
	callMax, totalMax enforcer.Nanos
	clock             enforcer.Clock
	onEvent           func(msg string, args ...any)

	mu      sync.Mutex
	exposed enforcer.Nanos // live outage holds + charges not yet written
	res     map[string]*outageRes

	stop chan struct{}
	done chan struct{}
}

type outageRes struct {
	r       enforcer.Reservation
	ttl     time.Duration
	written bool
}

// FailOpenOptions configure NewFailOpen.
type FailOpenOptions struct {
	CallMax  enforcer.Nanos // largest estimate admitted while unreachable (> 0)
	TotalMax enforcer.Nanos // most spend held or charged but not yet written (>= CallMax)
	// SyncEvery is how often unwritten charges are retried (default 1s).
	SyncEvery time.Duration
	// OnEvent reports fail-open admissions and sync results (for logs).
	OnEvent func(msg string, args ...any)
}

// NewFailOpen wraps l; Close stops the sync loop (after a last attempt)
// and closes l.
func NewFailOpen(l *Ledger, o FailOpenOptions) (*FailOpen, error) {
	if o.CallMax <= 0 || o.TotalMax < o.CallMax {
		return nil, fmt.Errorf("postgres fail-open: call max %s must be positive and total max %s at least as large", o.CallMax, o.TotalMax)
	}
	if o.SyncEvery <= 0 {
		o.SyncEvery = time.Second
	}
	if o.OnEvent == nil {
		o.OnEvent = func(string, ...any) {}
	}
	f := &FailOpen{Ledger: l, callMax: o.CallMax, totalMax: o.TotalMax, clock: l.clock, onEvent: o.OnEvent,
		res: map[string]*outageRes{}, stop: make(chan struct{}), done: make(chan struct{})}
	if f.clock == nil {
		f.clock = enforcer.SystemClock{} // the database's clock is what is missing
	}
	go f.loop(o.SyncEvery)
	return f, nil
}

var _ enforcer.Ledger = (*FailOpen)(nil)

// Close writes what it can, stops the sync loop and closes the ledger.
func (f *FailOpen) Close() error {
	close(f.stop)
	<-f.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.Sync(ctx)
	if n := f.Unwritten(); n > 0 {
		f.onEvent("fail-open charges not written to the shared ledger at shutdown", "spend", n.String())
	}
	return f.Ledger.Close()
}

func (f *FailOpen) loop(every time.Duration) {
	defer close(f.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every+5*time.Second)
			f.Sync(ctx)
			cancel()
		}
	}
}

// Unwritten is the spend held or charged during outages and not yet in the
// shared ledger.
func (f *FailOpen) Unwritten() enforcer.Nanos {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(f.clock.Now())
	return f.exposed
}

// Sync writes committed outage charges to the shared ledger and forgets
// settled outage reservations once nothing is left to write.
func (f *FailOpen) Sync(ctx context.Context) {
	f.mu.Lock()
	var todo []enforcer.Reservation
	for _, o := range f.res {
		if o.r.State == enforcer.StateCommitted && !o.written {
			todo = append(todo, o.r)
		}
	}
	f.mu.Unlock()
	for _, r := range todo {
		_, err := f.Ledger.Charge(ctx, r.ID, r.Account, r.Tool, r.Charged, r.CostSource)
		if errors.Is(err, ErrUnavailable) {
			return // still down: next tick
		}
		if err != nil {
			f.onEvent("fail-open charge could not be written; dropped", "reservation", r.ID, "account", r.Account,
				"charged", r.Charged.String(), "error", err)
		} else {
			f.onEvent("fail-open charge written to the shared ledger", "reservation", r.ID, "account", r.Account, "charged", r.Charged.String())
		}
		f.mu.Lock()
		if o := f.res[r.ID]; o != nil {
			o.written = true
			f.exposed -= r.Charged
		}
		f.mu.Unlock()
	}
	if len(todo) > 0 || f.Ping(ctx) == nil {
		f.mu.Lock()
		now := f.clock.Now()
		f.expireLocked(now)
		for id, o := range f.res {
			if o.r.State != enforcer.StatePending && (o.r.State != enforcer.StateCommitted || o.written) {
				delete(f.res, id)
			}
		}
		f.mu.Unlock()
	}
}

// expireLocked drops outage holds past their expiry; f.mu is held.
func (f *FailOpen) expireLocked(now time.Time) {
	for _, o := range f.res {
		if o.r.State == enforcer.StatePending && !now.Before(o.r.ExpiresAt) {
			o.r.State, o.r.SettledAt = enforcer.StateExpired, o.r.ExpiresAt
			f.exposed -= o.r.Estimate
		}
	}
}

func (f *FailOpen) lookup(id string) (enforcer.Reservation, time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.res[id]
	if !ok {
		return enforcer.Reservation{}, 0, false
	}
	f.expireLocked(f.clock.Now())
	return o.r, o.ttl, true
}

// room is what one more call may hold now; f.mu is held.
func (f *FailOpen) roomLocked() enforcer.Nanos { return min(f.callMax, f.totalMax-f.exposed) }

// Check answers from the ledger, or, while it is unreachable, from the
// fail-open allowance.
func (f *FailOpen) Check(ctx context.Context, account string, estimate enforcer.Nanos) (enforcer.BudgetCheck, error) {
	bc, err := f.Ledger.Check(ctx, account, estimate)
	if !errors.Is(err, ErrUnavailable) {
		return bc, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(f.clock.Now())
	room := f.roomLocked()
	return enforcer.BudgetCheck{OK: estimate <= room, Account: account, Remaining: room}, nil
}

// Reserve holds in the ledger, or, while it is unreachable, in memory
// within the fail-open allowance.
func (f *FailOpen) Reserve(ctx context.Context, req enforcer.ReserveRequest) (enforcer.Reservation, error) {
	if r, ttl, ok := f.lookup(req.ID); ok {
		if r.Account != req.Account || r.Tool != req.Tool || r.Estimate != req.Estimate || ttl != req.TTL {
			return enforcer.Reservation{}, fmt.Errorf("reserve %q on account %q: %w: held during an outage with other fields",
				req.ID, req.Account, enforcer.ErrReservationConflict)
		}
		return r, nil
	}
	r, err := f.Ledger.Reserve(ctx, req)
	if !errors.Is(err, ErrUnavailable) {
		return r, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	f.expireLocked(now)
	if room := f.roomLocked(); req.Estimate > room {
		return enforcer.Reservation{}, fmt.Errorf("%w; fail-open admits at most %s per call and %s unwritten in all (%s now), not %s",
			err, f.callMax, f.totalMax, f.exposed, req.Estimate)
	}
	r = enforcer.Reservation{ID: req.ID, Account: req.Account, Tool: req.Tool, Estimate: req.Estimate,
		State: enforcer.StatePending, CreatedAt: now, ExpiresAt: now.Add(req.TTL)}
	f.res[req.ID] = &outageRes{r: r, ttl: req.TTL}
	f.exposed += req.Estimate
	f.onEvent("fail-open: admitted while the ledger is unreachable", "reservation", req.ID, "account", req.Account,
		"estimate", req.Estimate.String(), "unwritten", f.exposed.String())
	return r, nil
}

// Commit settles an outage hold in memory (written later) or goes to the
// ledger.
func (f *FailOpen) Commit(ctx context.Context, id string, actual *enforcer.Nanos, source enforcer.CostSource) (enforcer.Reservation, error) {
	f.mu.Lock()
	o, ok := f.res[id]
	if !ok {
		f.mu.Unlock()
		return f.Ledger.Commit(ctx, id, actual, source)
	}
	defer f.mu.Unlock()
	if actual != nil && *actual < 0 {
		return enforcer.Reservation{}, fmt.Errorf("commit %q: %w: negative actual cost %s", id, enforcer.ErrInvalidAmount, *actual)
	}
	charge := o.r.Estimate
	switch {
	case actual == nil:
		source = enforcer.CostEstimated
	case source == "":
		source = enforcer.CostActual
	}
	if actual != nil {
		charge = *actual
	}
	now := f.clock.Now()
	f.expireLocked(now)
	switch o.r.State {
	case enforcer.StateCommitted:
		if o.r.Charged == charge && o.r.CostSource == source {
			return o.r, nil
		}
		return enforcer.Reservation{}, fmt.Errorf("commit %q: %w: committed %s (%s) before", id, enforcer.ErrReservationSettled, o.r.Charged, o.r.CostSource)
	case enforcer.StateReleased:
		return enforcer.Reservation{}, fmt.Errorf("commit %q: %w: released before", id, enforcer.ErrReservationSettled)
	case enforcer.StatePending:
		f.exposed -= o.r.Estimate
	}
	o.r.Late = o.r.State == enforcer.StateExpired
	o.r.State, o.r.Charged, o.r.CostSource, o.r.SettledAt = enforcer.StateCommitted, charge, source, now
	f.exposed += charge
	return o.r, nil
}

// Release ends an outage hold in memory or goes to the ledger.
func (f *FailOpen) Release(ctx context.Context, id string) (enforcer.Reservation, error) {
	f.mu.Lock()
	o, ok := f.res[id]
	if !ok {
		f.mu.Unlock()
		return f.Ledger.Release(ctx, id)
	}
	defer f.mu.Unlock()
	now := f.clock.Now()
	f.expireLocked(now)
	if o.r.State != enforcer.StatePending {
		return enforcer.Reservation{}, fmt.Errorf("release %q: %w: %s", id, enforcer.ErrReservationSettled, o.r.State)
	}
	f.exposed -= o.r.Estimate
	o.r.State, o.r.SettledAt = enforcer.StateReleased, now
	return o.r, nil
}

// Reservation answers outage reservations from memory.
func (f *FailOpen) Reservation(ctx context.Context, id string) (enforcer.Reservation, error) {
	if r, _, ok := f.lookup(id); ok {
		return r, nil
	}
	return f.Ledger.Reservation(ctx, id)
}
