package enforcer

import (
	"context"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryLedger is the in-process Ledger. Accounts of one root tree share a
// mutex (a hold touches every ancestor, so finer locks would only add lock
// ordering); independent trees never contend. Accounts and reservations
// live in sharded indexes so lookups by id do not touch any tree lock.
//
// Lock order: createMu -> memTree.mu -> resShard.mu or acctShard.mu.
type MemoryLedger struct {
	clock      Clock
	notifier   Notifier
	thresholds Thresholds
	retain     time.Duration

	accts [acctShards]acctShard

	createMu sync.Mutex // serializes account creation and the trees list
	trees    []*memTree

	seed   maphash.Seed
	shards [resShards]resShard

	calib memCalib
}

const (
	resShards  = 64
	acctShards = 256
)

// acctShard is one slice of the account index, copied on write (under
// createMu) so the hot path reads it without writing any shared memory.
// Accounts are never removed.
type acctShard struct {
	m atomic.Pointer[map[string]*memAccount]
	_ [56]byte
}

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
	l.thresholds = NewThresholds(opts.ThresholdsPct)
	for i := range l.shards {
		l.shards[i].m = make(map[string]*memRes)
	}
	for i := range l.accts {
		l.accts[i].m.Store(&map[string]*memAccount{})
	}
	return l
}

// memTree is the lock domain of one root account and its descendants.
type memTree struct {
	mu      sync.Mutex
	expiry  resHeap // pending holds by ExpiresAt
	scratch []Alert // reused under mu; alerts are copied out before unlock
	// done lists settled reservations in settling order for retention.
	done     []doneEntry
	doneHead int
	doneSeq  uint64 // numbers done entries, so a superseded one is known
	// free holds forgotten records for reuse by this tree only, so a
	// record's fields are only ever written under this tree's mu.
	free []*memRes
	_    [8]byte
}

type doneEntry struct {
	rec *memRes
	at  int64 // Unix nanoseconds
	seq uint64
}

// maxFree bounds each tree's pool of reusable reservation records.
const maxFree = 1024

// newRes returns a blank record of t; t.mu must be held.
func (t *memTree) newRes() *memRes {
	if n := len(t.free); n > 0 {
		rec := t.free[n-1]
		t.free[n-1] = nil
		t.free = t.free[:n-1]
		return rec
	}
	return &memRes{tree: t, heapIdx: -1}
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

// memRes is a reservation record, reused within its tree once forgotten.
// tree never changes; every other field is written only under tree.mu. A
// record is in the id index exactly while r.ID is set, so a holder of
// tree.mu that finds r.ID == id has the live record for id. ID, Account,
// Tool, Estimate, Fingerprint and ttl may also be read under the index
// shard's mu while the record is indexed (they are written only before
// insertion and after removal).
type memRes struct {
	r       Reservation
	tree    *memTree
	acct    *memAccount
	ttl     time.Duration
	exp     int64    // r.ExpiresAt in Unix nanoseconds, the heap key
	heapIdx int      // position in the tree's expiry heap, -1 when not pending
	doneSeq uint64   // the tree's done entry that retains it (0: none yet)
	exts    []memExt // extensions so far, for idempotent retries
}

// memExt is one extension of a hold: its caller-chosen id and amount.
type memExt struct {
	id  string
	add Nanos
}

// maxKeptExts is the capacity of an extension list a reused record keeps;
// a longer one is dropped so the free pool stays small.
const maxKeptExts = 32

// resShard is one slice of the reservation index (membership only).
type resShard struct {
	mu sync.Mutex
	m  map[string]*memRes
	_  [48]byte
}

func (l *MemoryLedger) shard(id string) *resShard {
	return &l.shards[maphash.String(l.seed, id)%resShards]
}

func (l *MemoryLedger) acctShard(id string) *acctShard {
	return &l.accts[maphash.String(l.seed, id)%acctShards]
}

func (l *MemoryLedger) account(id string) (*memAccount, error) {
	a, ok := (*l.acctShard(id).m.Load())[id]
	if !ok {
		return nil, fmt.Errorf("account %q: %w", id, ErrAccountNotFound)
	}
	return a, nil
}

// storeAccount publishes a; createMu must be held.
func (l *MemoryLedger) storeAccount(a *memAccount) {
	sh := l.acctShard(a.id)
	m := maps.Clone(*sh.m.Load())
	m[a.id] = a
	sh.m.Store(&m)
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
		held := rec.r.Held()
		for a := rec.acct; a != nil; a = a.parent {
			a.pending -= held
		}
		rec.r.State = StateExpired
		rec.r.SettledAt = rec.r.ExpiresAt
		t.finish(rec, rec.exp)
		n++
	}
	return n
}

// finish queues a settled reservation for retention from at; t.mu must be
// held. A late commit queues its expired record again, from the commit:
// the newer entry supersedes the older, which prune then skips.
func (t *memTree) finish(rec *memRes, at int64) {
	t.doneSeq++
	rec.doneSeq = t.doneSeq
	t.done = append(t.done, doneEntry{rec: rec, at: at, seq: t.doneSeq})
}

// prune forgets t's reservations settled at or before cutoff and keeps
// their records for reuse; t.mu must be held. A record's current entry
// (doneSeq) comes after any superseded one, so it is still the record
// indexed under its id when its superseded entries are skipped.
func (l *MemoryLedger) prune(t *memTree, cutoff int64) {
	for t.doneHead < len(t.done) && t.done[t.doneHead].at <= cutoff {
		ent := t.done[t.doneHead]
		t.done[t.doneHead] = doneEntry{}
		t.doneHead++
		rec := ent.rec
		if ent.seq != rec.doneSeq {
			continue // superseded by a late commit's entry
		}
		sh := l.shard(rec.r.ID)
		sh.mu.Lock()
		delete(sh.m, rec.r.ID)
		sh.mu.Unlock()
		// Field by field: rec.tree is read without any lock and must not
		// even be rewritten.
		rec.r, rec.acct, rec.ttl, rec.exp, rec.heapIdx, rec.doneSeq = Reservation{}, nil, 0, 0, -1, 0
		rec.exts = resetExts(rec.exts)
		if len(t.free) < maxFree {
			t.free = append(t.free, rec)
		}
	}
	if t.doneHead > 64 && t.doneHead*2 > len(t.done) {
		n := copy(t.done, t.done[t.doneHead:])
		clear(t.done[n:])
		t.done = t.done[:n]
		t.doneHead = 0
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
	for i := range l.accts {
		for id := range *l.accts[i].m.Load() {
			ids = append(ids, id)
		}
	}
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
	cutoff := now.Add(-l.retain).UnixNano()
	n := 0
	for _, t := range trees {
		t.mu.Lock()
		n += l.expire(t, now)
		l.prune(t, cutoff)
		t.mu.Unlock()
	}
	return n, nil
}
