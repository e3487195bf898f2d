package host

import (
	"context"
	"errors"
	"math/rand/v2"
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
// Idle instances sit in an array of atomic slots and tokens are an atomic
// counter, so the common get and put are a few compare-and-swaps and
// concurrent callers rarely touch the same cache line; the mutex only
// guards creation, waiting and closing.
type pool struct {
	slots  []atomic.Pointer[instance]
	tokens atomic.Int32 // calls holding a token (<= max)
	nwait  atomic.Int32 // registered waiters; releases take the slow path while > 0
	closed atomic.Bool
	uses   atomic.Int64 // orders instances by last use (tenant replacement is LRU)
	max    int32
	// span is one past the highest slot an idle instance ever took:
	// instances fill the low slots, so the lock-free scan looks at
	// [0, span) only (a handful of slots, not all that a tenant-isolated
	// pool may keep); the locked scan looks at all.
	span atomic.Int32

	mu      sync.Mutex
	live    int             // idle + in use + being created, <= len(slots)
	waiters []chan struct{} // each receives one token
}

func newPool(concurrency, keep int) *pool {
	return &pool{slots: make([]atomic.Pointer[instance], max(keep, concurrency)), max: int32(concurrency)}
}

// tryToken takes a token if one is free.
func (p *pool) tryToken() bool {
	for {
		n := p.tokens.Load()
		if n >= p.max {
			return false
		}
		if p.tokens.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// releaseToken returns a token, handing it to the oldest waiter if any.
// A waiter registers before it tries for a token itself, and a release
// frees its token before it looks for waiters, so no wake-up is lost.
func (p *pool) releaseToken() {
	for { // never below 0: the smoke-test instance enters the pool without a token (load.go)
		n := p.tokens.Load()
		if n <= 0 || p.tokens.CompareAndSwap(n, n-1) {
			break
		}
	}
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
		p.releaseToken()
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

// takeIdle removes an idle instance for tenant, starting at a random
// slot so that concurrent callers spread over the array: one that already
// serves tenant, else a fresh one, else (only with other) the least
// recently used one serving another tenant, which the caller must replace
// rather than use. ok reports whether in may serve tenant as it is.
func (p *pool) takeIdle(tenant string, other bool) (in *instance, ok bool) {
	return p.scan(len(p.slots), tenant, other)
}

// takeIdleFast is takeIdle over the slots idle instances usually occupy.
func (p *pool) takeIdleFast(tenant string) (in *instance, ok bool) {
	return p.scan(max(min(int(p.span.Load()), len(p.slots)), 1), tenant, false)
}

func (p *pool) scan(n int, tenant string, other bool) (in *instance, ok bool) {
	start := rand.IntN(n)
	fresh, taken, takenUse := -1, -1, int64(0)
	for i := 0; i < n; i++ {
		j := (start + i) % n
		s := &p.slots[j]
		c := s.Load()
		if c == nil {
			continue
		}
		switch t := c.tenant.Load(); {
		case t == nil && tenant == "", t != nil && *t == tenant:
			if s.CompareAndSwap(c, nil) {
				return c, true
			}
		case t == nil:
			fresh = j
		case taken < 0 || c.lastUse.Load() < takenUse:
			taken, takenUse = j, c.lastUse.Load()
		}
	}
	if fresh >= 0 {
		if c := p.slots[fresh].Load(); c != nil && c.tenant.Load() == nil && p.slots[fresh].CompareAndSwap(c, nil) {
			return c, true
		}
	}
	if other && taken >= 0 {
		if c := p.slots[taken].Swap(nil); c != nil {
			return c, c.serves(tenant)
		}
	}
	return nil, false
}

// putIdle stores in in a free slot, preferring the one it came from.
func (p *pool) putIdle(in *instance) bool {
	n, start := len(p.slots), in.slot
	for i := 0; i < n; i++ {
		j := (start + i) % n
		// Written before the CAS publishes in: afterwards another caller
		// may own it.
		in.slot = j
		if p.slots[j].CompareAndSwap(nil, in) {
			p.raiseSpan(j + 1)
			return true
		}
	}
	return false
}

// get takes a token (waiting as waitToken does) and then returns an idle
// instance for tenant (see takeIdle; usable reports whether it may serve
// tenant as it is), or create when the caller may create one in a slot
// reserved for it. Every successful get is ended by put or release.
func (p *pool) get(ctx context.Context, tenant string, waitMax time.Duration) (in *instance, usable, create bool, err error) {
	if !p.tryToken() {
		if err := p.waitToken(ctx, waitMax); err != nil {
			return nil, false, false, err
		}
	}
	if in, ok := p.takeIdleFast(tenant); in != nil {
		return in, ok, false, nil
	}
	for {
		p.mu.Lock()
		if in, ok := p.takeIdle(tenant, false); in != nil {
			p.mu.Unlock()
			return in, ok, false, nil
		}
		if p.live < len(p.slots) {
			p.setLiveLocked(p.live + 1)
			p.mu.Unlock()
			return nil, false, true, nil
		}
		// Full: replace an idle instance of another tenant. One is idle
		// unless a put is between its token and its slot: look again.
		in, ok := p.takeIdle(tenant, true)
		p.mu.Unlock()
		if in != nil {
			return in, ok, false, nil
		}
		runtime.Gosched()
	}
}

// errPoolWait: no instance became free within the pool's wait bound.
var errPoolWait = errors.New("pool wait bound reached")

// put returns a healthy instance and the caller's token; it reports false
// when the pool is closed and the caller must close the instance itself.
func (p *pool) put(in *instance) bool {
	ok := !p.closed.Load() && p.putIdle(in) // putIdle cannot fail while live <= len(slots)
	if !ok {
		p.mu.Lock()
		p.setLiveLocked(p.live - 1)
		p.mu.Unlock()
	}
	p.releaseToken()
	return ok
}

func (p *pool) setLiveLocked(n int) {
	p.live = n
	p.raiseSpan(n)
}

// raiseSpan makes the fast scan cover n slots; it never shrinks, since an
// idle instance may sit high.
func (p *pool) raiseSpan(n int) {
	for {
		s := p.span.Load()
		if int(s) >= n || p.span.CompareAndSwap(s, int32(n)) {
			return
		}
	}
}

// release frees the slot of a discarded (or never created) instance and
// the caller's token.
func (p *pool) release() {
	p.mu.Lock()
	p.setLiveLocked(p.live - 1)
	p.mu.Unlock()
	p.releaseToken()
}

// drain closes the pool and returns its idle instances for closing.
func (p *pool) drain() []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed.Store(true)
	var idle []*instance
	for i := range p.slots {
		if in := p.slots[i].Swap(nil); in != nil {
			idle = append(idle, in)
		}
	}
	p.setLiveLocked(p.live - len(idle))
	return idle
}

// busy is the number of tokens held: calls using or creating an instance
// (for tests).
func (p *pool) busy() int { return int(p.tokens.Load()) }
