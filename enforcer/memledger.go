package enforcer

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sort"
	"sync"
	"time"
)

// MemoryLedger is the in-process Ledger. Accounts of one root tree share a
// mutex (a hold touches every ancestor, so finer locks would only add lock
// ordering); independent trees never contend. Reservations live in a
// sharded index so lookups by id do not touch any tree lock.
//
// Lock order: createMu -> memTree.mu -> resShard.mu.
type MemoryLedger struct {
	clock      Clock
	notifier   Notifier
	thresholds []int // ascending, positive, distinct
	retain     time.Duration

	accounts sync.Map // string -> *memAccount; read lock-free on the hot path

	createMu sync.Mutex // serializes account creation and the trees list
	trees    []*memTree

	seed   maphash.Seed
	shards [resShards]resShard
}

const resShards = 64

var _ Ledger = (*MemoryLedger)(nil)

// NewMemoryLedger returns an empty in-memory ledger.
func NewMemoryLedger(opts LedgerOptions) *MemoryLedger {
	l := &MemoryLedger{
		clock:    opts.Clock,
		notifier: opts.Notifier,
		retain:   opts.RetainSettled,
		seed:     maphash.MakeSeed(),
	}
	if l.clock == nil {
		l.clock = SystemClock{}
	}
	if l.retain <= 0 {
		l.retain = DefaultRetainSettled
	}
	th := opts.ThresholdsPct
	if th == nil {
		th = DefaultThresholdsPct()
	}
	for _, p := range th {
		if p > 0 {
			l.thresholds = append(l.thresholds, p)
		}
	}
	slices.Sort(l.thresholds)
	l.thresholds = slices.Compact(l.thresholds)
	for i := range l.shards {
		l.shards[i].m = make(map[string]*memRes)
	}
	return l
}

// memTree is the lock domain of one root account and its descendants.
type memTree struct {
	mu      sync.Mutex
	expiry  resHeap // pending holds by ExpiresAt
	scratch []Alert // reused under mu; alerts are copied out before unlock
	_       [32]byte
}

// memAccount is guarded by its tree's mu, except the immutable fields.
type memAccount struct {
	// immutable after creation
	id       string
	parent   *memAccount
	tree     *memTree
	allocate bool

	hasLimit  bool
	limit     Nanos
	committed Nanos // own and descendants' settled charges
	pending   Nanos // own and descendants' live holds
	allocated Nanos // supervisor: sum of children's fixed limits
	labels    map[string]string
	tools     map[string]ToolStats
	thrNanos  []Nanos // committed amount at which each threshold is crossed
	fired     int     // thresholds currently crossed
	overdrawn bool
}

// memRes is a reservation record; r is guarded by its shard's mu (and
// changed only while its account's tree mu is held too).
type memRes struct {
	r       Reservation
	acct    *memAccount
	ttl     time.Duration
	exp     int64     // r.ExpiresAt in Unix nanoseconds, the heap key
	heapIdx int       // position in the tree's expiry heap, -1 when not pending
	doneAt  time.Time // first terminal transition, for retention
}

type resShard struct {
	mu   sync.Mutex
	m    map[string]*memRes
	done []*memRes // settled, in doneAt order, for retention
	head int
	_    [64]byte
}

func (l *MemoryLedger) shard(id string) *resShard {
	return &l.shards[maphash.String(l.seed, id)%resShards]
}

func (l *MemoryLedger) account(id string) (*memAccount, error) {
	v, ok := l.accounts.Load(id)
	if !ok {
		return nil, fmt.Errorf("account %q: %w", id, ErrAccountNotFound)
	}
	return v.(*memAccount), nil
}

// notify delivers alerts; callers must hold no lock.
func (l *MemoryLedger) notify(alerts []Alert) {
	if l.notifier == nil {
		return
	}
	for _, a := range alerts {
		l.notifier.Notify(a)
	}
}

// unlockAndNotify copies the tree's pending alerts out, unlocks the tree
// and delivers them, so notifiers never run under a ledger lock.
func (l *MemoryLedger) unlockAndNotify(t *memTree) {
	if len(t.scratch) == 0 || l.notifier == nil {
		t.scratch = t.scratch[:0]
		t.mu.Unlock()
		return
	}
	alerts := slices.Clone(t.scratch)
	t.scratch = t.scratch[:0]
	t.mu.Unlock()
	l.notify(alerts)
}

// expire drops every hold of t whose expiry is <= now; t.mu must be held.
func (l *MemoryLedger) expire(t *memTree, now time.Time) int {
	n, cut := 0, now.UnixNano()
	for len(t.expiry) > 0 && t.expiry[0].exp <= cut {
		rec := t.expiry.pop()
		for a := rec.acct; a != nil; a = a.parent {
			a.pending -= rec.r.Estimate
		}
		sh := l.shard(rec.r.ID)
		sh.mu.Lock()
		rec.r.State = StateExpired
		rec.r.SettledAt = rec.r.ExpiresAt
		sh.finish(rec, rec.r.ExpiresAt)
		sh.mu.Unlock()
		n++
	}
	return n
}

// finish queues rec for retention; sh.mu must be held.
func (sh *resShard) finish(rec *memRes, at time.Time) {
	rec.doneAt = at
	sh.done = append(sh.done, rec)
}

// prune forgets reservations settled at or before cutoff.
func (sh *resShard) prune(cutoff time.Time) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for sh.head < len(sh.done) && !sh.done[sh.head].doneAt.After(cutoff) {
		rec := sh.done[sh.head]
		sh.done[sh.head] = nil
		sh.head++
		if cur, ok := sh.m[rec.r.ID]; ok && cur == rec {
			delete(sh.m, rec.r.ID)
		}
	}
	if sh.head > 64 && sh.head*2 > len(sh.done) {
		n := copy(sh.done, sh.done[sh.head:])
		clear(sh.done[n:])
		sh.done = sh.done[:n]
		sh.head = 0
	}
}

// snapshot copies a's state; the tree mu must be held.
func (a *memAccount) snapshot() Snapshot {
	s := Snapshot{
		ID:               a.id,
		Committed:        a.committed,
		Pending:          a.pending,
		Overdrawn:        a.overdrawn,
		AllocateChildren: a.allocate,
		Labels:           cloneLabels(a.labels),
		Tools:            make(map[string]ToolStats, len(a.tools)),
	}
	if a.parent != nil {
		s.Parent = a.parent.id
	}
	if a.hasLimit {
		lim := a.limit
		s.Limit = &lim
	}
	for k, v := range a.tools {
		s.Tools[k] = v
	}
	return s
}

func cloneLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Snapshot returns one account's totals.
func (l *MemoryLedger) Snapshot(_ context.Context, account string) (Snapshot, error) {
	a, err := l.account(account)
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot: %w", err)
	}
	t := a.tree
	t.mu.Lock()
	l.expire(t, l.clock.Now())
	s := a.snapshot()
	t.mu.Unlock()
	return s, nil
}

// Accounts returns every account's totals, sorted by id.
func (l *MemoryLedger) Accounts(ctx context.Context) ([]Snapshot, error) {
	var ids []string
	l.accounts.Range(func(k, _ any) bool {
		ids = append(ids, k.(string))
		return true
	})
	sort.Strings(ids)
	out := make([]Snapshot, 0, len(ids))
	for _, id := range ids {
		s, err := l.Snapshot(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Sweep marks overdue holds expired and forgets old settled reservations.
func (l *MemoryLedger) Sweep(_ context.Context) (int, error) {
	l.createMu.Lock()
	trees := slices.Clone(l.trees)
	l.createMu.Unlock()
	now := l.clock.Now()
	n := 0
	for _, t := range trees {
		t.mu.Lock()
		n += l.expire(t, now)
		t.mu.Unlock()
	}
	cutoff := now.Add(-l.retain)
	for i := range l.shards {
		l.shards[i].prune(cutoff)
	}
	return n, nil
}
