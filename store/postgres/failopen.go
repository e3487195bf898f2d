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
// actual cost, or the estimate), released or left to expire like any other.
// A commit is acknowledged only once it is fsynced to a local journal, and
// a background loop writes every journaled charge to the shared ledger as
// soon as it answers again — without a budget check, because the money was
// spent, so an account can end up overdrawn (and alerts then fire). The
// journal is replayed when the process starts again, so an acknowledged
// charge is never dropped, even if the database stays down past a restart.
//
// A reserve whose answer was lost after it reached the database (outcome
// unknown) may have left a hold there with the same id and fields; when
// the charge is written back and meets that hold, it commits it (it is its
// own hold) instead of calling it a conflict.
//
// While the database is unreachable, a lookup of an id this process does
// not hold answers ErrReservationNotFound (this process's view), so a
// caller-chosen id (the server always passes one) is admitted instead of
// failing closed on the lookup. Everything else (account changes,
// snapshots, lists, Sweep) goes to the Ledger and fails closed.
type FailOpen struct {
	*Ledger
	callMax, totalMax enforcer.Nanos
	clock             enforcer.Clock
	onEvent           func(msg string, args ...any)

	syncMu sync.Mutex // one Sync at a time (the loop's, Close's, a caller's)

	mu      sync.Mutex
	journal *journal
	down    bool           // the last attempt failed: answer from memory until a ping succeeds
	exposed enforcer.Nanos // live outage holds + charges not yet written
	// writtenBack is what this outage's charges already written add up
	// to: it still counts against TotalMax until a ping ends the outage,
	// so a database that answers one write and fails the next (stale
	// connections, flapping) cannot let a host admit TotalMax again and
	// again within one outage.
	writtenBack enforcer.Nanos
	live        int // outage holds still pending (each may become a journal entry)
	res         map[string]*outageRes

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

type outageRes struct {
	r       enforcer.Reservation
	ttl     time.Duration
	remote  bool                      // the reserve may have reached the database (outcome unknown)
	written bool                      // the charge is in the shared ledger
	undo    bool                      // released here while it may be held there: release it there too
	ext     map[string]enforcer.Nanos // extensions made here, by id
}

// FailOpenOptions configure NewFailOpen.
type FailOpenOptions struct {
	CallMax  enforcer.Nanos // largest estimate admitted while unreachable (> 0)
	TotalMax enforcer.Nanos // most spend held or charged but not yet written (>= CallMax)
	// JournalPath is the file outage charges are kept in until written
	// (required; the server uses <data_dir>/postgres-failopen.journal).
	JournalPath string
	// JournalEntriesMax bounds the charges (and live outage holds) the
	// journal may have to keep; past it nothing more is admitted while the
	// database is unreachable (default 100,000).
	JournalEntriesMax int
	// SyncEvery is how often unwritten charges are retried (default 1s).
	SyncEvery time.Duration
	// OnEvent reports fail-open admissions and sync results (for logs).
	OnEvent func(msg string, args ...any)
}

// DefaultJournalEntriesMax is FailOpenOptions.JournalEntriesMax's default.
const DefaultJournalEntriesMax = 100_000

// NewFailOpen wraps l, replaying the journal's unwritten charges; Close
// stops the sync loop (after a last attempt) and closes l.
func NewFailOpen(l *Ledger, o FailOpenOptions) (*FailOpen, error) {
	if o.CallMax <= 0 || o.TotalMax < o.CallMax {
		return nil, fmt.Errorf("postgres fail-open: call max %s must be positive and total max %s at least as large", o.CallMax, o.TotalMax)
	}
	if o.JournalPath == "" {
		return nil, errors.New("postgres fail-open: a journal path is required (charges acknowledged during an outage are kept there)")
	}
	if o.JournalEntriesMax == 0 {
		o.JournalEntriesMax = DefaultJournalEntriesMax
	}
	if o.JournalEntriesMax < 0 {
		return nil, fmt.Errorf("postgres fail-open: journal entries max %d is negative", o.JournalEntriesMax)
	}
	if o.SyncEvery <= 0 {
		o.SyncEvery = time.Second
	}
	if o.OnEvent == nil {
		o.OnEvent = func(string, ...any) {}
	}
	j, recs, err := openJournal(o.JournalPath, o.JournalEntriesMax)
	if err != nil {
		return nil, fmt.Errorf("postgres fail-open: %w", err)
	}
	f := &FailOpen{Ledger: l, callMax: o.CallMax, totalMax: o.TotalMax, clock: l.clock, onEvent: o.OnEvent, journal: j,
		res: map[string]*outageRes{}, stop: make(chan struct{}), done: make(chan struct{})}
	if f.clock == nil {
		f.clock = enforcer.SystemClock{} // the database's clock is what is missing
	}
	for _, rec := range recs {
		f.res[rec.ID] = &outageRes{r: rec.reservation(), ttl: rec.TTL, remote: rec.Remote}
		f.exposed += rec.Charged
	}
	if len(recs) > 0 {
		f.onEvent("fail-open: replaying charges journaled during an earlier outage", "journal", o.JournalPath,
			"charges", len(recs), "spend", f.exposed.String())
	}
	go f.loop(o.SyncEvery)
	return f, nil
}

var _ enforcer.Ledger = (*FailOpen)(nil)

// Close writes what it can, stops the sync loop and closes the ledger.
// Charges still unwritten stay in the journal for the next start.
func (f *FailOpen) Close() error {
	f.closeOnce.Do(func() { f.closeErr = f.close() })
	return f.closeErr
}

func (f *FailOpen) close() error {
	close(f.stop)
	<-f.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.Sync(ctx)
	if n := f.Unwritten(); n > 0 {
		f.onEvent("fail-open charges not yet written to the shared ledger are kept in the journal and written after the next start",
			"journal", f.journal.path, "spend", n.String())
	}
	f.mu.Lock()
	jerr := f.journal.close()
	f.mu.Unlock()
	return errors.Join(jerr, f.Ledger.Close())
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

// isDown: the database failed the last attempt and no ping succeeded since.
func (f *FailOpen) isDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

func (f *FailOpen) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// Sync writes journaled outage charges to the shared ledger (and releases
// there the holds released here whose reserve may have reached it), then
// forgets settled outage reservations once nothing is left to write.
func (f *FailOpen) Sync(ctx context.Context) {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.mu.Lock()
	var todo []outageRes
	for _, o := range f.res {
		if (o.r.State == enforcer.StateCommitted && !o.written) || o.undo {
			todo = append(todo, *o)
		}
	}
	f.mu.Unlock()
	for _, o := range todo {
		err := f.writeBack(ctx, o)
		if errors.Is(err, ErrUnavailable) {
			return // still down: next tick
		}
		if err != nil && refusedForGood(err) && !o.undo {
			// The database will never take it (e.g. an account the outage
			// could not check does not exist): keep the charge in the
			// rejected file for an operator, and stop retrying it.
			if err = f.journal.reject(o.r, err); err == nil {
				f.onEvent("fail-open charge refused by the shared ledger for good; kept in the rejected file",
					"reservation", o.r.ID, "account", o.r.Account, "charged", o.r.Charged.String(), "file", f.journal.rejectedPath())
			}
		}
		if err != nil {
			f.onEvent("fail-open charge could not be written yet; kept in the journal", "reservation", o.r.ID,
				"account", o.r.Account, "charged", o.r.Charged.String(), "error", err)
			continue
		}
		if err := f.done1(o); err != nil {
			f.onEvent("fail-open journal", "error", err)
			return
		}
	}
	if f.Ping(ctx) != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down, f.writtenBack = false, 0
	f.expireLocked(f.clock.Now())
	for id, o := range f.res {
		if o.r.State != enforcer.StatePending && !o.undo && (o.r.State != enforcer.StateCommitted || o.written) {
			delete(f.res, id)
		}
	}
	if err := f.journal.reset(); err != nil {
		f.onEvent("fail-open journal", "error", err)
	}
}

// refusedForGood: a write-back error no retry can fix.
func refusedForGood(err error) bool {
	return errors.Is(err, enforcer.ErrAccountNotFound) || errors.Is(err, enforcer.ErrInvalidReservation) ||
		errors.Is(err, enforcer.ErrInvalidAmount)
}

// done1 records that o's write-back succeeded.
func (f *FailOpen) done1(o outageRes) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.res[o.r.ID]
	if cur == nil {
		return nil
	}
	if o.undo {
		cur.undo = false
		return nil
	}
	if cur.written {
		return nil
	}
	if err := f.journal.append(journalRecord{Written: o.r.ID}); err != nil {
		return err
	}
	cur.written = true
	f.exposed -= o.r.Charged
	f.writtenBack += o.r.Charged
	return nil
}

// writeBack puts one outage charge (or release) into the shared ledger.
// The id may already be there: as this very charge (a retry), as its own
// hold (a reserve whose answer was lost, or made before the outage, with
// the same fields: commit it), or as something else (another call used the
// id, or the hold was settled elsewhere): then the charge is recorded under
// the id with the suffix "#fail-open", never dropped.
func (f *FailOpen) writeBack(ctx context.Context, o outageRes) error {
	r := o.r
	if o.undo {
		return f.releaseThere(ctx, o)
	}
	c := ChargeRequest{ID: r.ID, Account: r.Account, Tool: r.Tool, Charged: r.Charged, Source: r.CostSource,
		Estimate: r.Estimate, TTL: o.ttl, Fingerprint: r.Fingerprint, Extended: r.Extended, BaseEstimate: r.BaseEstimate,
		CalibrationKey: r.CalibrationKey, Usage: r.Usage, PriceSource: r.PriceSource}
	_, err := f.Ledger.Charge(ctx, c)
	var conflict *ChargeConflictError
	if !errors.As(err, &conflict) {
		if err == nil {
			f.onEvent("fail-open charge written to the shared ledger", "reservation", r.ID, "account", r.Account, "charged", r.Charged.String())
		}
		return err
	}
	ex := conflict.Existing
	own := enforcer.SameRequest(ex, ex.ExpiresAt.Sub(ex.CreatedAt), enforcer.ReserveRequest{ID: r.ID, Account: r.Account, Tool: r.Tool,
		Estimate: r.Estimate, TTL: o.ttl, Fingerprint: r.Fingerprint}) == nil
	switch {
	case own && (ex.State == enforcer.StatePending || ex.State == enforcer.StateExpired):
		charged := r.Charged
		_, err := f.Ledger.CommitWith(ctx, enforcer.CommitRequest{ID: r.ID, Actual: &charged, Source: r.CostSource,
			Usage: r.Usage, PriceSource: r.PriceSource})
		if err == nil {
			f.onEvent("fail-open charge committed its own hold in the shared ledger", "reservation", r.ID, "account", r.Account,
				"charged", r.Charged.String())
		}
		return err
	}
	// Committed there already (before the outage, or through another
	// host): this host could not see it and ran the call again, which
	// spent money again, so its charge is written under another id too.
	c.ID = r.ID + "#fail-open"
	if _, err := f.Ledger.Charge(ctx, c); err != nil {
		return err
	}
	f.onEvent("fail-open charge written under another id: the shared ledger uses its id for something else", "reservation", r.ID,
		"written_as", c.ID, "account", r.Account, "charged", r.Charged.String(), "there", string(ex.State))
	return nil
}

// releaseThere releases the shared ledger's hold for an outage hold
// released here, if the reserve reached the database after all.
func (f *FailOpen) releaseThere(ctx context.Context, o outageRes) error {
	ex, err := f.Ledger.Reservation(ctx, o.r.ID)
	switch {
	case errors.Is(err, enforcer.ErrReservationNotFound):
		return nil
	case err != nil:
		return err
	case ex.State != enforcer.StatePending || enforcer.SameRequest(ex, ex.ExpiresAt.Sub(ex.CreatedAt), enforcer.ReserveRequest{ID: o.r.ID,
		Account: o.r.Account, Tool: o.r.Tool, Estimate: o.r.Estimate, TTL: o.ttl, Fingerprint: o.r.Fingerprint}) != nil:
		return nil // settled, or not this call's hold
	}
	_, err = f.Ledger.Release(ctx, o.r.ID)
	if errors.Is(err, enforcer.ErrReservationSettled) {
		return nil
	}
	return err
}

// expireLocked drops outage holds past their expiry; f.mu is held.
func (f *FailOpen) expireLocked(now time.Time) {
	for _, o := range f.res {
		if o.r.State == enforcer.StatePending && !now.Before(o.r.ExpiresAt) {
			o.r.State, o.r.SettledAt = enforcer.StateExpired, o.r.ExpiresAt
			f.exposed -= o.r.Held()
			f.live--
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
func (f *FailOpen) roomLocked() enforcer.Nanos {
	return min(f.callMax, f.totalMax-f.exposed-f.writtenBack)
}

// outage: err says the database is unreachable, not that this caller's
// own context ended (its deadline passing while queued or in flight is
// the caller's, and must not switch the whole host into failing open).
func outage(ctx context.Context, err error) bool {
	return errors.Is(err, ErrUnavailable) && ctx.Err() == nil
}

// Check answers from the ledger, or, while it is unreachable, from the
// fail-open allowance: a call it cannot admit is refused as unavailable
// (retry later), not denied for a budget that was never read.
func (f *FailOpen) Check(ctx context.Context, account string, estimate enforcer.Nanos) (enforcer.BudgetCheck, error) {
	err := fmt.Errorf("postgres ledger %s is %w", f.where, ErrUnavailable)
	if !f.isDown() {
		var bc enforcer.BudgetCheck
		if bc, err = f.Ledger.Check(ctx, account, estimate); !outage(ctx, err) {
			return bc, err
		}
		f.setDown(true)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(f.clock.Now())
	if err := f.admissibleLocked(err, estimate); err != nil {
		return enforcer.BudgetCheck{}, err
	}
	return enforcer.BudgetCheck{OK: true, Account: account, Remaining: f.roomLocked()}, nil
}

// admissibleLocked says why the fail-open allowance cannot take estimate
// (nil if it can); why is the ledger's unavailability. f.mu is held.
func (f *FailOpen) admissibleLocked(why error, estimate enforcer.Nanos) error {
	if room := f.roomLocked(); estimate > room {
		return fmt.Errorf("%w; fail-open admits at most %s per call and %s unwritten in all (%s now), not %s",
			why, f.callMax, f.totalMax, f.exposed, estimate)
	}
	if n := f.journal.unwritten + f.live; n >= f.journal.entriesMax {
		return fmt.Errorf("%w; and fail-open admits nothing more: %w: %s has %d charges and holds to keep (journal_entries_max %d)",
			why, ErrJournalFull, f.journal.path, n, f.journal.entriesMax)
	}
	return nil
}

// Reserve holds in the ledger, or, while it is unreachable, in memory
// within the fail-open allowance.
func (f *FailOpen) Reserve(ctx context.Context, req enforcer.ReserveRequest) (enforcer.Reservation, error) {
	if r, ttl, ok := f.lookup(req.ID); ok {
		if err := enforcer.SameRequest(r, ttl, req); err != nil {
			return enforcer.Reservation{}, fmt.Errorf("%w (held by this host during an outage)", err)
		}
		return r, nil
	}
	if err := req.Validate(); err != nil {
		return enforcer.Reservation{}, err
	}
	err := fmt.Errorf("postgres ledger %s is %w", f.where, ErrUnavailable)
	if !f.isDown() {
		var r enforcer.Reservation
		if r, err = f.Ledger.Reserve(ctx, req); !outage(ctx, err) {
			return r, err
		}
	}
	var unknown *OutcomeUnknownError
	remote := errors.As(err, &unknown)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	now := f.clock.Now()
	f.expireLocked(now)
	if o, ok := f.res[req.ID]; ok { // a concurrent attempt with this id got here first
		if err := enforcer.SameRequest(o.r, o.ttl, req); err != nil {
			return enforcer.Reservation{}, fmt.Errorf("%w (held by this host during an outage)", err)
		}
		return o.r, nil
	}
	if err := f.admissibleLocked(err, req.Estimate); err != nil {
		return enforcer.Reservation{}, err
	}
	r := enforcer.Reservation{ID: req.ID, Account: req.Account, Tool: req.Tool, Estimate: req.Estimate,
		State: enforcer.StatePending, CreatedAt: now, ExpiresAt: now.Add(req.TTL), Fingerprint: req.Fingerprint,
		BaseEstimate: req.BaseEstimate, CalibrationKey: req.CalibrationKey}
	f.res[req.ID] = &outageRes{r: r, ttl: req.TTL, remote: remote}
	f.exposed += req.Estimate
	f.live++
	f.onEvent("fail-open: admitted while the ledger is unreachable", "reservation", req.ID, "account", req.Account,
		"estimate", req.Estimate.String(), "unwritten", f.exposed.String(), "outcome_unknown", remote)
	return r, nil
}

// Commit is CommitWith without usage.
func (f *FailOpen) Commit(ctx context.Context, id string, actual *enforcer.Nanos, source enforcer.CostSource) (enforcer.Reservation, error) {
	return f.CommitWith(ctx, enforcer.CommitRequest{ID: id, Actual: actual, Source: source})
}

// CommitWith settles an outage hold in memory and in the journal (written
// to the shared ledger later, with its usage and price source), or goes to
// the ledger.
func (f *FailOpen) CommitWith(ctx context.Context, req enforcer.CommitRequest) (enforcer.Reservation, error) {
	id := req.ID
	f.mu.Lock()
	o, ok := f.res[id]
	if !ok {
		f.mu.Unlock()
		return f.Ledger.CommitWith(ctx, req)
	}
	defer f.mu.Unlock()
	source, err := checkCommit(req)
	if err != nil {
		return enforcer.Reservation{}, err
	}
	now := f.clock.Now()
	f.expireLocked(now)
	charge := o.r.Held()
	if req.Actual != nil {
		charge = *req.Actual
	}
	switch o.r.State {
	case enforcer.StateCommitted:
		if o.r.Charged == charge && o.r.CostSource == source {
			return replayed(o.r), nil
		}
		return enforcer.Reservation{}, fmt.Errorf("commit %q: %w: committed %s (%s) before", id, enforcer.ErrReservationSettled, o.r.Charged, o.r.CostSource)
	case enforcer.StateReleased:
		return enforcer.Reservation{}, fmt.Errorf("commit %q: %w: released before", id, enforcer.ErrReservationSettled)
	}
	r := o.r
	r.Late = r.State == enforcer.StateExpired
	r.State, r.Charged, r.CostSource, r.SettledAt = enforcer.StateCommitted, charge, source, now
	r.Usage, r.PriceSource = cloneUsage(req.Usage), req.PriceSource
	// Durable before acknowledged: the journal outlives this process.
	if err := f.journal.append(recordOf(r, o.ttl, o.remote)); err != nil {
		return enforcer.Reservation{}, fmt.Errorf("commit %q: %w: the charge could not be journaled while the shared ledger is unreachable: %w",
			id, ErrUnavailable, err)
	}
	if o.r.State == enforcer.StatePending {
		f.exposed -= o.r.Held()
		f.live--
	}
	o.r = r
	f.exposed += charge
	return o.r, nil
}

// replayed is r answering a repeated commit or release.
func replayed(r enforcer.Reservation) enforcer.Reservation {
	r.Replayed = true
	return r
}

func cloneUsage(u *enforcer.TokenUsage) *enforcer.TokenUsage {
	if u == nil {
		return nil
	}
	c := *u
	return &c
}

// Release ends an outage hold in memory or goes to the ledger. Releasing
// a released one again returns it unchanged.
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
	switch o.r.State {
	case enforcer.StateReleased:
		return replayed(o.r), nil // a retry after a lost reply
	case enforcer.StatePending:
	default:
		return enforcer.Reservation{}, fmt.Errorf("release %q: %w: %s", id, enforcer.ErrReservationSettled, o.r.State)
	}
	f.exposed -= o.r.Held()
	f.live--
	o.r.State, o.r.SettledAt = enforcer.StateReleased, now
	o.undo = o.remote
	return o.r, nil
}

// Reservation answers outage reservations from memory. While the database
// is unreachable, an id this host does not hold is not found (this host's
// view): a caller-chosen id is then admitted as a new call, and if the
// database had it after all, the write-back meets it as its own hold.
func (f *FailOpen) Reservation(ctx context.Context, id string) (enforcer.Reservation, error) {
	if r, _, ok := f.lookup(id); ok {
		return r, nil
	}
	if !f.isDown() {
		r, err := f.Ledger.Reservation(ctx, id)
		if !outage(ctx, err) {
			return r, err
		}
		f.setDown(true)
	}
	return enforcer.Reservation{}, fmt.Errorf("reservation %q: %w: not held by this host, and the shared ledger %s is unreachable (failing open)",
		id, enforcer.ErrReservationNotFound, f.where)
}
