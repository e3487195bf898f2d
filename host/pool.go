package host

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// pool holds a version's instances: at most max exist; callers beyond max
// wait, bounded by their context and the pool's wait bound. Each instance
// carries the tenant it serves (nil while fresh, always for shared
// plugins), and a caller takes only an instance serving its tenant. Idle instances sit in an array of atomic
// slots, so the common get and put are one compare-and-swap each and
// concurrent callers rarely touch the same cache line; the mutex only
// guards creation, waiting and closing.
type pool struct {
	slots  []atomic.Pointer[instance]
	nwait  atomic.Int32 // registered waiters; puts take the slow path while > 0
	closed atomic.Bool
	uses   atomic.Int64 // orders instances by last use (tenant replacement is LRU)

	mu      sync.Mutex
	max     int
	live    int              // idle + in use + being created
	waiters []chan *instance // a nil send means "a slot is free: create"
}

func newPool(max int) *pool {
	return &pool{slots: make([]atomic.Pointer[instance], max), max: max}
}

// takeIdle removes an idle instance for tenant, starting at a random
// slot so that concurrent callers spread over the array: one that already
// serves tenant, else a fresh one, else (only with other) one serving
// another tenant, which the caller must replace rather than use. ok
// reports whether in may serve tenant as it is.
func (p *pool) takeIdle(tenant string, other bool) (in *instance, ok bool) {
	n := len(p.slots)
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
			taken, takenUse = j, c.lastUse.Load() // replace the least recently used
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
			return true
		}
	}
	return false
}

// get returns an idle instance for tenant (see takeIdle; usable reports
// whether it may serve tenant as it is), or create when the caller may
// create one in a slot reserved for it, waiting for either at most
// waitMax (then errPoolWait) and as long as ctx allows.
func (p *pool) get(ctx context.Context, tenant string, waitMax time.Duration) (in *instance, usable, create bool, err error) {
	if in, ok := p.takeIdle(tenant, false); in != nil {
		return in, ok, false, nil
	}
	p.mu.Lock()
	if in, ok := p.takeIdle(tenant, false); in != nil {
		p.mu.Unlock()
		return in, ok, false, nil
	}
	if p.live < p.max {
		p.live++
		p.mu.Unlock()
		return nil, false, true, nil
	}
	// Full: rather than wait, replace an idle instance of another tenant.
	if in, ok := p.takeIdle(tenant, true); in != nil {
		p.mu.Unlock()
		return in, ok, false, nil
	}
	w := make(chan *instance, 1)
	p.waiters = append(p.waiters, w)
	p.nwait.Add(1)
	// A put may have slipped in before nwait rose: look once more.
	if in, ok := p.takeIdle(tenant, true); in != nil {
		p.dropWaiterLocked(w)
		p.mu.Unlock()
		return in, ok, false, nil
	}
	p.mu.Unlock()
	timer := time.NewTimer(waitMax)
	defer timer.Stop()
	select {
	case in = <-w:
		return in, in != nil && in.serves(tenant), in == nil, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errPoolWait
	}
	p.mu.Lock()
	found := p.dropWaiterLocked(w)
	p.mu.Unlock()
	if !found {
		// A put handed us its instance (or slot) just as we gave up:
		// pass it on rather than leak it.
		if in = <-w; in != nil {
			if !p.put(in) {
				in.close()
			}
		} else {
			p.release()
		}
	}
	return nil, false, false, err
}

// errPoolWait: no instance became free within the pool's wait bound.
var errPoolWait = errors.New("pool wait bound reached")

func (p *pool) dropWaiterLocked(w chan *instance) bool {
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.nwait.Add(-1)
			return true
		}
	}
	return false
}

// handOffLocked gives in (nil: a free slot) to the oldest waiter.
func (p *pool) handOffLocked(in *instance) bool {
	if len(p.waiters) == 0 {
		return false
	}
	w := p.waiters[0]
	p.waiters = p.waiters[1:]
	p.nwait.Add(-1)
	w <- in
	return true
}

// put returns a healthy instance; it reports false when the pool is closed
// and the caller must close the instance itself.
func (p *pool) put(in *instance) bool {
	if p.closed.Load() {
		p.mu.Lock()
		p.live--
		p.mu.Unlock()
		return false
	}
	if p.nwait.Load() > 0 {
		p.mu.Lock()
		ok := p.handOffLocked(in)
		p.mu.Unlock()
		if ok {
			return true
		}
	}
	if !p.putIdle(in) { // cannot happen while live <= max; do not leak
		p.mu.Lock()
		p.live--
		p.mu.Unlock()
		return false
	}
	// A waiter may have registered after the nwait check above: wake it.
	if p.nwait.Load() > 0 {
		p.mu.Lock()
		if len(p.waiters) > 0 {
			if idle, _ := p.takeIdle("", true); idle != nil { // the waiter replaces it if need be
				p.handOffLocked(idle)
			}
		}
		p.mu.Unlock()
	}
	return true
}

// release frees the slot of a discarded (or never created) instance.
func (p *pool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed.Load() && p.handOffLocked(nil) {
		return // the waiter creates the replacement in this slot
	}
	p.live--
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
	p.live -= len(idle)
	return idle
}

// busy is the number of instances in use or being created (for tests).
func (p *pool) busy() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.live
	for i := range p.slots {
		if p.slots[i].Load() != nil {
			n--
		}
	}
	return n
}
