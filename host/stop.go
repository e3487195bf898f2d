package host

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// stopKind selects how a runaway guest is stopped. It is a seam: a later
// issue replaces it with fuel metering.
//
// All bounded kinds run on a runtime built WithCloseOnContextDone(true):
// wazero then leaves native code for Go at every loop header, so a spinning
// guest can never block the Go GC's stop-the-world, and it closes the
// module when the call's context is done. wazero also starts one goroutine
// per call to watch that context; that goroutine, not the check, is most of
// the per-call cost (see BenchmarkEstimateWAT).
type stopKind uint8

const (
	// stopWatchdog (default) gives each call a reusable per-instance
	// context whose Done channel a host watchdog closes when the deadline
	// passes or the caller's context ends: no timer or context allocation
	// per call. Deadlines are enforced within one watchdog tick.
	stopWatchdog stopKind = iota
	// stopContext derives a context.WithTimeout per call (a timer per call).
	stopContext
	// stopNone runs calls unbounded; only for measuring the others.
	stopNone
)

type stopper interface {
	// forget drops an instance's state when it closes.
	forget(in *instance)
	// begin returns the context a call on in runs under, and end releases it.
	begin(ctx context.Context, in *instance, d time.Duration) context.Context
	end(in *instance, ctx context.Context)
	needsCloseOnDone() bool
	close()
}

func newStopper(k stopKind, tick time.Duration) stopper {
	switch k {
	case stopNone:
		return noStop{}
	case stopContext:
		return ctxStop{}
	}
	return newWatchdog(tick)
}

type ctxStop struct{}

func (ctxStop) begin(ctx context.Context, _ *instance, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	return &cancelCtx{Context: c, cancel: cancel} // end calls cancel
}

func (ctxStop) end(_ *instance, ctx context.Context) { ctx.(*cancelCtx).cancel() }
func (ctxStop) needsCloseOnDone() bool               { return true }
func (ctxStop) close()                               {}
func (ctxStop) forget(*instance)                     {}

type cancelCtx struct {
	context.Context
	cancel context.CancelFunc
}

type noStop struct{}

func (noStop) begin(ctx context.Context, _ *instance, _ time.Duration) context.Context { return ctx }
func (noStop) end(*instance, context.Context)                                          {}
func (noStop) needsCloseOnDone() bool                                                  { return false }
func (noStop) close()                                                                  {}
func (noStop) forget(*instance)                                                        {}

// watchdog stops calls that pass their deadline or whose caller gave up.
type watchdog struct {
	tick   time.Duration
	mu     sync.Mutex
	active map[*callCtx]struct{}
	stop   chan struct{}
	done   chan struct{}
}

func newWatchdog(tick time.Duration) *watchdog {
	w := &watchdog{tick: tick, active: map[*callCtx]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *watchdog) needsCloseOnDone() bool { return true }

func (w *watchdog) close() {
	close(w.stop)
	<-w.done
}

// begin arms the instance's context. The instance registers it once, when
// it first runs a call; a stopped context is never reused because a
// stopped instance is discarded.
func (w *watchdog) begin(ctx context.Context, in *instance, d time.Duration) context.Context {
	c := in.cctx
	if c == nil || c.stopped.Load() != 0 {
		// First call, or the watchdog fired just as the last call finished.
		c = &callCtx{done: make(chan struct{})}
		w.mu.Lock()
		if in.cctx != nil {
			delete(w.active, in.cctx)
		}
		w.active[c] = struct{}{}
		w.mu.Unlock()
		in.cctx = c
	}
	c.mu.Lock()
	c.parent = ctx
	c.deadline = time.Now().Add(d).UnixNano()
	c.mu.Unlock()
	return c
}

func (w *watchdog) end(in *instance, _ context.Context) {
	c := in.cctx
	c.mu.Lock()
	c.parent, c.deadline = nil, 0
	c.mu.Unlock()
}

func (w *watchdog) forget(in *instance) {
	if in.cctx == nil {
		return
	}
	w.mu.Lock()
	delete(w.active, in.cctx)
	w.mu.Unlock()
}

func (w *watchdog) run() {
	defer close(w.done)
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			w.scan(now.UnixNano())
		}
	}
}

func (w *watchdog) scan(now int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.active {
		c.mu.Lock()
		switch {
		case c.deadline == 0 || c.stopped.Load() != 0:
		case c.parent.Err() != nil:
			c.fire(stoppedCanceled)
		case now >= c.deadline:
			c.fire(stoppedDeadline)
		}
		c.mu.Unlock()
	}
}

const (
	stoppedDeadline = 1
	stoppedCanceled = 2
)

// callCtx is a context.Context reused by every call on one instance.
// wazero's per-call goroutine waits on Done and closes the module, reading
// Err to pick the exit code.
type callCtx struct {
	mu       sync.Mutex
	parent   context.Context
	deadline int64 // unix nanos; 0 = no call running
	stopped  atomic.Int32
	done     chan struct{}
}

// fire records why and closes Done; Err must be set first.
func (c *callCtx) fire(why int32) {
	if c.stopped.CompareAndSwap(0, why) {
		close(c.done)
	}
}

func (c *callCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deadline == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, c.deadline), true
}

func (c *callCtx) Done() <-chan struct{} { return c.done }

func (c *callCtx) Err() error {
	switch c.stopped.Load() {
	case stoppedDeadline:
		return context.DeadlineExceeded
	case stoppedCanceled:
		return context.Canceled
	}
	return nil
}

// Value reads the caller's context; only the calling goroutine (and host
// functions it runs) call it, while parent is set.
func (c *callCtx) Value(key any) any {
	if p := c.parent; p != nil {
		return p.Value(key)
	}
	return nil
}

// initContext bounds instance creation (instantiate, _initialize, init):
// rare enough that a timer per call does not matter.
func initContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
