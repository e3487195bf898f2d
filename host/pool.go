package host

import (
	"context"
	"sync"
)

// pool holds a version's instances: at most max exist, idle ones are
// reused last-in first-out (so a lightly used plugin keeps few warm
// instances), and callers beyond max wait, bounded by their context. One
// mutex round trip per get and per put keeps contention low.
type pool struct {
	mu      sync.Mutex
	max     int
	live    int // idle + in use + being created
	idle    []*instance
	waiters []chan *instance // a nil send means "a slot is free: create"
	closed  bool
}

// get returns an idle instance, or (nil, true) when the caller may create
// one in a slot reserved for it, waiting for either as needed.
func (p *pool) get(ctx context.Context) (in *instance, create bool, err error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		in = p.idle[n-1]
		p.idle = p.idle[:n-1]
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
	p.mu.Unlock()
	select {
	case in = <-w:
		return in, in == nil, nil
	case <-ctx.Done():
		p.mu.Lock()
		for i, x := range p.waiters {
			if x == w {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				p.mu.Unlock()
				return nil, false, ctx.Err()
			}
		}
		p.mu.Unlock()
		// A put handed us its instance (or slot) just as we gave up: pass
		// it on rather than leak it.
		if in = <-w; in != nil {
			p.put(in)
		} else {
			p.release()
		}
		return nil, false, ctx.Err()
	}
}

// put returns a healthy instance; it reports false when the pool is closed
// and the caller must close the instance itself.
func (p *pool) put(in *instance) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.live--
		return false
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		w <- in
		return true
	}
	p.idle = append(p.idle, in)
	return true
}

// release frees the slot of a discarded (or never created) instance.
func (p *pool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.waiters) > 0 && !p.closed {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		w <- nil // the waiter creates the replacement in this slot
		return
	}
	p.live--
}

// drain closes the pool and returns its idle instances for closing.
func (p *pool) drain() []*instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	idle := p.idle
	p.live -= len(idle)
	p.idle = nil
	return idle
}

// busy is the number of instances in use or being created (for tests).
func (p *pool) busy() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live - len(p.idle)
}
