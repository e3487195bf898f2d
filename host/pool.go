package host

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// pool holds a version's instances: at most max exist; callers beyond max
// wait, bounded by their context. Idle instances sit in an array of atomic
// slots, so the common get and put are one compare-and-swap each and
// concurrent callers rarely touch the same cache line; the mutex only
// guards creation, waiting and closing.
type pool struct {
	slots  []atomic.Pointer[instance]
	nwait  atomic.Int32 // registered waiters; puts take the slow path while > 0
	closed atomic.Bool

	mu      sync.Mutex
	max     int
	live    int              // idle + in use + being created
	waiters []chan *instance // a nil send means "a slot is free: create"
}

func newPool(max int) *pool {
	return &pool{slots: make([]atomic.Pointer[instance], max), max: max}
}

// takeIdle removes some idle instance, starting at a random slot so that
// concurrent callers spread over the array.
func (p *pool) takeIdle() *instance {
	n := len(p.slots)
	start := rand.IntN(n)
	for i := 0; i < n; i++ {
		s := &p.slots[(start+i)%n]
		if in := s.Load(); in != nil && s.CompareAndSwap(in, nil) {
			return in
		}
	}
	return nil
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

// get returns an idle instance, or (nil, true) when the caller may create
// one in a slot reserved for it, waiting for either as needed.
func (p *pool) get(ctx context.Context) (in *instance, create bool, err error) {
	if in = p.takeIdle(); in != nil {
		return in, false, nil
	}
	p.mu.Lock()
	if in = p.takeIdle(); in != nil {
		p.mu.Unlock()
		return in, false, nil
	}
	if p.live < p.max {
		p.live++
		p.mu.Unlock()
		return nil, true, nil
	}
	w := make(chan *instance, 1)
	p.waiters = append(p.waiters, w)
	p.nwait.Add(1)
	// A put may have slipped in before nwait rose: look once more.
	if in = p.takeIdle(); in != nil {
		p.dropWaiterLocked(w)
		p.mu.Unlock()
		return in, false, nil
	}
	p.mu.Unlock()
	select {
	case in = <-w:
		return in, in == nil, nil
	case <-ctx.Done():
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
		return nil, false, ctx.Err()
	}
}

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
			if idle := p.takeIdle(); idle != nil {
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
