package host

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// pool holds a version's instances. Two bounds: at most max calls run at
// once (a caller holds one of max tokens while it creates or uses an
// instance; callers beyond max wait, bounded by their context and the
// pool's wait bound), and at most len(slots) instances are kept. The two
// differ for tenant-isolated plugins, which keep more instances than run
// at once so that each active tenant has a warm one. Each instance
// carries the tenant it serves (nil while fresh, always for shared
// plugins), and a caller takes only an instance serving its tenant.
//
// Each instance lives in one slot for its whole life (slots[j], written
// only by whoever owns slot j: its creator, or the caller that took the
// idle instance). Whether it is idle is one bit, and the bits of the
// first headSlots slots share one atomic word with the token count, so
// the common get takes an idle instance and a token with one
// compare-and-swap and the common put gives both back with one add: the
// same two atomic writes a call cost before tenant isolation, which
// needed only the idle claim. Slots past headSlots (pools that keep more
// than 40 instances) have their idle bits in further words and take a
// token separately. The mutex only guards creation, waiting and closing.
type pool struct {
	head  atomic.Uint64   // idle bits of slots [0, headSlots), tokens held << headSlots
	tail  []atomic.Uint64 // idle bits of slots headSlots+64k...
	slots []atomic.Pointer[instance]
	nwait atomic.Int32 // registered waiters; releases take the slow path while > 0
	uses  atomic.Int64 // orders instances by last use (tenant replacement is LRU)
	max   uint64
	// closed is read on put, written under mu by drain.
	closed atomic.Bool

	mu      sync.Mutex
	live    int             // idle + in use + being created, <= len(slots)
	making  []bool          // slots reserved for an instance being created
	waiters []chan struct{} // each receives one token
}

const (
	headSlots = 40
	headIdle  = 1<<headSlots - 1
	token     = 1 << headSlots // one token in head
	tokensMax = math.MaxUint64 >> headSlots
)

func newPool(concurrency, keep int) *pool {
	n := max(keep, concurrency)
	return &pool{slots: make([]atomic.Pointer[instance], n), making: make([]bool, n),
		tail: make([]atomic.Uint64, (max(n-headSlots, 0)+63)/64), max: uint64(min(max(concurrency, 1), tokensMax))}
}

// word is the atomic word holding slot j's idle bit, and the bit.
func (p *pool) word(j int) (*atomic.Uint64, uint64) {
	if j < headSlots {
		return &p.head, 1 << j
	}
	j -= headSlots
	return &p.tail[j/64], 1 << (j % 64)
}

// tryToken takes a token if one is free.
func (p *pool) tryToken() bool {
	for {
		s := p.head.Load()
		if s>>headSlots >= p.max {
			return false
		}
		if p.head.CompareAndSwap(s, s+token) {
			return true
		}
	}
}

// releaseToken returns a token (with idle, the head idle bits the
// caller's instance takes back in the same add), handing it to the oldest
// waiter if any. A waiter registers before it tries for a token itself,
// and a release frees its token before it looks for waiters, so no
// wake-up is lost.
func (p *pool) releaseToken(idle uint64) {
	p.head.Add(idle - token)
	if p.nwait.Load() == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.waiters) > 0 && p.tryToken() {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.nwait.Add(-1)
		w <- struct{}{}
	}
}

// waitToken waits for a token, at most waitMax (then errPoolWait) and as
// long as ctx allows.
func (p *pool) waitToken(ctx context.Context, waitMax time.Duration) error {
	w := make(chan struct{}, 1)
	p.mu.Lock()
	p.waiters = append(p.waiters, w)
	p.nwait.Add(1)
	if p.tryToken() { // a release may have come before nwait rose
		p.dropWaiterLocked(w)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	timer := time.NewTimer(waitMax)
	defer timer.Stop()
	var err error
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errPoolWait
	}
	p.mu.Lock()
	found := p.dropWaiterLocked(w)
	p.mu.Unlock()
	if !found { // a token was handed to us just as we gave up: pass it on
		<-w
		p.releaseToken(0)
	}
	return err
}

func (p *pool) dropWaiterLocked(w chan struct{}) bool {
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.nwait.Add(-1)
			return true
		}
	}
	return false
}

// pick chooses among the idle slots in set (bit b is slot base+b) one
// whose instance serves tenant, else a fresh one (-1: none).
func (p *pool) pick(set uint64, base int, tenant string) (own, fresh int) {
	fresh = -1
	for ; set != 0; set &= set - 1 {
		j := base + bits.TrailingZeros64(set)
		c := p.slots[j].Load()
		if c == nil { // the slot changed hands since set was read
			continue
		}
		switch t := c.tenant.Load(); {
		case t == nil && tenant == "", t != nil && *t == tenant:
			return j, fresh
		case t == nil && fresh < 0:
			fresh = j
		}
	}
	return -1, fresh
}

// takeFast takes a token and an idle instance serving tenant (its own,
// else a fresh one) among the head slots with one compare-and-swap; nil
// when there is none or no token is free.
func (p *pool) takeFast(tenant string) *instance {
	for {
		s := p.head.Load()
		if s>>headSlots >= p.max {
			return nil
		}
		own, fresh := p.pick(s&headIdle, 0, tenant)
		if own < 0 {
			own = fresh
		}
		if own < 0 {
			return nil
		}
		if !p.head.CompareAndSwap(s, s&^(1<<own)+token) {
			continue
		}
		// Slot own is ours now; it may hold another instance than the one
		// pick saw (taken, discarded and replaced in between).
		if in := p.slots[own].Load(); in.serves(tenant) {
			return in
		}
		p.releaseToken(1 << own) // not ours to use: give both back
		return nil
	}
}

// claim clears slot j's idle bit; false if it was not set.
func (p *pool) claim(j int) bool {
	w, bit := p.word(j)
	for {
		s := w.Load()
		if s&bit == 0 {
			return false
		}
		if w.CompareAndSwap(s, s&^bit) {
			return true
		}
	}
}

// setIdle sets slot j's idle bit, which its owner knows to be clear.
func (p *pool) setIdle(j int) {
	w, bit := p.word(j)
	w.Add(bit)
}

// takeIdle, for a caller holding a token, removes an idle instance for
// tenant: one that already serves tenant, else a fresh one, else (only
// with other) the least recently used one serving another tenant, which
// the caller must replace rather than use. ok reports whether in may
// serve tenant as it is.
func (p *pool) takeIdle(tenant string, other bool) (in *instance, ok bool) {
	fresh, lru, lruUse := -1, -1, int64(0)
	for k := -1; k < len(p.tail); k++ {
		set, base := p.head.Load()&headIdle, 0
		if k >= 0 {
			set, base = p.tail[k].Load(), headSlots+64*k
		}
		own, f := p.pick(set, base, tenant)
		if own >= 0 && p.claim(own) {
			if c := p.slots[own].Load(); c.serves(tenant) {
				return c, true
			}
			p.setIdle(own)
		}
		if fresh < 0 {
			fresh = f
		}
		for ; other && set != 0; set &= set - 1 {
			j := base + bits.TrailingZeros64(set)
			if c := p.slots[j].Load(); c != nil && (lru < 0 || c.lastUse.Load() < lruUse) {
				lru, lruUse = j, c.lastUse.Load()
			}
		}
	}
	for _, j := range [2]int{fresh, lru} {
		if j < 0 || !p.claim(j) {
			continue
		}
		c := p.slots[j].Load()
		if j == fresh && c.tenant.Load() != nil {
			p.setIdle(j) // no longer fresh
			continue
		}
		return c, c.serves(tenant)
	}
	return nil, false
}

// get takes a token (waiting as waitToken does) and an idle instance for
// tenant (see takeIdle; usable reports whether it may serve tenant as it
// is), or, with create, the slot where the caller may create one (home
// it there). Every successful get is ended by put or release.
func (p *pool) get(ctx context.Context, tenant string, waitMax time.Duration) (in *instance, usable, create bool, slot int, err error) {
	if in := p.takeFast(tenant); in != nil {
		return in, true, false, in.slot, nil
	}
	if !p.tryToken() {
		if err := p.waitToken(ctx, waitMax); err != nil {
			return nil, false, false, 0, err
		}
	}
	if in, ok := p.takeIdle(tenant, false); in != nil {
		return in, ok, false, in.slot, nil
	}
	for {
		p.mu.Lock()
		if in, ok := p.takeIdle(tenant, false); in != nil {
			p.mu.Unlock()
			return in, ok, false, in.slot, nil
		}
		if j := p.freeSlotLocked(); j >= 0 {
			p.making[j] = true
			p.live++
			p.mu.Unlock()
			return nil, false, true, j, nil
		}
		// Full: replace an idle instance of another tenant. One is idle
		// unless a put is between its token and its slot: look again.
		in, ok := p.takeIdle(tenant, true)
		p.mu.Unlock()
		if in != nil {
			return in, ok, false, in.slot, nil
		}
		runtime.Gosched()
	}
}

// freeSlotLocked finds a slot for a new instance (-1: the pool is full).
func (p *pool) freeSlotLocked() int {
	if p.live >= len(p.slots) {
		return -1
	}
	return p.emptySlotLocked()
}

// emptySlotLocked finds a slot without an instance (-1: none).
func (p *pool) emptySlotLocked() int {
	for j := range p.slots {
		if !p.making[j] && p.slots[j].Load() == nil {
			return j
		}
	}
	return -1
}

// home installs in, created (or replacing the instance) in slot j by the
// caller that owns the slot.
func (p *pool) home(j int, in *instance) {
	in.slot = j
	p.mu.Lock()
	p.making[j] = false
	p.slots[j].Store(in)
	p.mu.Unlock()
}

// errPoolWait: no instance became free within the pool's wait bound.
var errPoolWait = errors.New("pool wait bound reached")

// put returns a healthy instance and the caller's token; it reports false
// when the pool is closed and the caller must close the instance itself.
// An instance not homed yet (the smoke-test instance, load.go) comes
// without a token and takes a free slot.
func (p *pool) put(in *instance) bool {
	j := in.slot
	if p.slots[j].Load() != in {
		return p.adopt(in)
	}
	if p.closed.Load() {
		p.release(j)
		return false
	}
	if j < headSlots {
		p.releaseToken(1 << j) // idle again and the token back: one add
		return true
	}
	p.setIdle(j)
	p.releaseToken(0)
	return true
}

// adopt homes an instance that holds no token in a free slot (its live
// count was already raised) and makes it idle.
func (p *pool) adopt(in *instance) bool {
	p.mu.Lock()
	j := p.emptySlotLocked() // live already counts in
	if j < 0 || p.closed.Load() {
		p.live--
		p.mu.Unlock()
		return false
	}
	in.slot = j
	p.slots[j].Store(in)
	p.mu.Unlock()
	p.setIdle(j)
	return true
}

// release frees slot j of a discarded (or never created) instance and the
// caller's token.
func (p *pool) release(j int) {
	p.mu.Lock()
	p.live--
	p.making[j] = false
	p.slots[j].Store(nil)
	p.mu.Unlock()
	p.releaseToken(0)
}

// drain closes the pool and returns its idle instances for closing.
func (p *pool) drain() []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed.Store(true)
	var idle []*instance
	for j := range p.slots {
		if p.claim(j) {
			idle = append(idle, p.slots[j].Swap(nil))
		}
	}
	p.live -= len(idle)
	return idle
}

// busy is the number of tokens held: calls using or creating an instance
// (for tests).
func (p *pool) busy() int { return int(p.head.Load() >> headSlots) }
