package host

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// stopKind selects how a runaway guest is stopped (see BENCHMARKS.md,
// "Fuel").
//
// The default meters every module with fuel (instrument.go): the guest
// visits the host (purser_fuel.refill) every slice of fuel, where its
// goroutine yields and the call fails once its budget is spent or the
// watchdog stopped it. To stop a call, the watchdog raises the module's
// stop global, which makes the guest's next fuel test (the next loop
// iteration, function entry or bulk operation) visit the host: a call
// past its deadline ends within two watchdog ticks plus the operation in
// progress, however much fuel its slice has left. The other kinds exist
// only to measure the default against: wazero's own mechanism (a runtime built
// WithCloseOnContextDone(true), which leaves native code at every loop
// iteration and starts a goroutine per call to watch the call's context)
// with the watchdog or with a timer per call, and no mechanism at all.
type stopKind uint8

const (
	// stopWatchdog (default): fuel, plus one host goroutine that marks
	// calls past their deadline or whose caller gave up as stopped (refill
	// then fails them) and closes the Done channel of a reusable
	// per-instance context (wazero's mechanism, when measuring it). No
	// timer or context allocation per call.
	stopWatchdog stopKind = iota
	// stopContext derives a context.WithTimeout per call (a timer per call).
	stopContext
	// stopNone runs calls unbounded; only for measuring the others.
	stopNone
	// stopWatchdogNoFuel is the watchdog over wazero's mechanism, without
	// fuel; only for measuring.
	stopWatchdogNoFuel
)

type stopper interface {
	// forget drops an instance's state when it closes.
	forget(in *instance)
	// begin returns the context a call on in runs under, and end releases it.
	begin(ctx context.Context, in *instance, d time.Duration) context.Context
	end(in *instance, ctx context.Context)
	// stopped is non-nil when the stopper ended the call (deadline or
	// caller cancellation), as context.DeadlineExceeded or Canceled.
	stopped(in *instance, ctx context.Context) error
	// instrument says whether modules should be instrumented.
	instrument() bool
	close()
}

func newStopper(k stopKind, tick time.Duration) stopper {
	switch k {
	case stopNone:
		return noStop{}
	case stopContext:
		return ctxStop{}
	case stopWatchdogNoFuel:
		return newWatchdog(tick, false)
	}
	return newWatchdog(tick, true)
}

type ctxStop struct{}

func (ctxStop) begin(ctx context.Context, _ *instance, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	return &cancelCtx{Context: c, cancel: cancel} // end calls cancel
}

func (ctxStop) end(_ *instance, ctx context.Context)           { ctx.(*cancelCtx).cancel() }
func (ctxStop) close()                                         {}
func (ctxStop) instrument() bool                               { return false }
func (ctxStop) stopped(_ *instance, ctx context.Context) error { return ctx.Err() }
func (ctxStop) forget(*instance)                               {}

type cancelCtx struct {
	context.Context
	cancel context.CancelFunc
}

type noStop struct{}

func (noStop) begin(ctx context.Context, _ *instance, _ time.Duration) context.Context { return ctx }
func (noStop) end(*instance, context.Context)                                          {}
func (noStop) instrument() bool                                                        { return false }
func (noStop) stopped(*instance, context.Context) error                                { return nil }
func (noStop) close()                                                                  {}
func (noStop) forget(*instance)                                                        {}

// watchdog stops calls that pass their deadline or whose caller gave up.
type watchdog struct {
	tick time.Duration
	fuel bool
	// now is a coarse clock the watchdog advances every tick, so arming a
	// call costs no clock read: nanoseconds since base on the monotonic
	// clock, so that a step of the wall clock moves no deadline.
	now    atomic.Int64
	base   time.Time
	mu     sync.Mutex
	active map[*callCtx]struct{}
	stop   chan struct{}
	done   chan struct{}
}

// watchdogTickMax bounds the tick: a call stops at most about two ticks
// after its deadline (the coarse clock's lag, then the scan), so 2 ms
// keeps that well within issue 12's target of deadline + 10 ms (ABI.md,
// section 7a), at the price of 500 wake-ups a second (a few µs each).
const watchdogTickMax = 2 * time.Millisecond

func newWatchdog(tick time.Duration, fuel bool) *watchdog {
	tick = min(tick, watchdogTickMax)
	w := &watchdog{tick: tick, fuel: fuel, active: map[*callCtx]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
	w.base = time.Now()
	go w.run()
	return w
}

func (w *watchdog) instrument() bool { return w.fuel }

func (w *watchdog) stopped(in *instance, _ context.Context) error {
	if in.cctx == nil {
		return nil
	}
	return in.cctx.Err()
}

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
		if c != nil && c.stopG != nil {
			c.stopG.Set(0) // fire set it before c.stopped, which we read
		}
		c = &callCtx{done: make(chan struct{}), metered: in.fuelG != nil, base: w.base}
		if c.metered {
			c.stopG, _ = in.mod.ExportedGlobal(stopGlobalExport).(api.MutableGlobal)
		}
		w.mu.Lock()
		if in.cctx != nil {
			delete(w.active, in.cctx)
		}
		w.active[c] = struct{}{}
		w.mu.Unlock()
		in.cctx = c
	}
	// The coarse clock lags real time by up to one tick; adding one tick
	// keeps the deadline from coming early.
	c.deadline.Store(w.now.Load() + int64(d) + int64(w.tick))
	if ctx.Done() != nil { // only a cancellable caller needs watching
		c.mu.Lock()
		c.parent = ctx
		c.mu.Unlock()
	}
	if c.metered {
		return ctx // refill watches c; wazero does not watch the context
	}
	return c
}

func (w *watchdog) end(in *instance, _ context.Context) {
	c := in.cctx
	c.deadline.Store(0)
	if c.parent != nil { // only this goroutine writes parent
		c.mu.Lock()
		c.parent = nil
		c.mu.Unlock()
	}
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
		case <-t.C:
			now := int64(time.Since(w.base))
			w.now.Store(now)
			w.scan(now)
		}
	}
}

func (w *watchdog) scan(now int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.active {
		d := c.deadline.Load()
		switch {
		case d == 0 || c.stopped.Load() != 0:
		case now >= d:
			c.fire(stoppedDeadline)
		default:
			c.mu.Lock()
			p := c.parent
			c.mu.Unlock()
			if p != nil && p.Err() != nil {
				c.fire(stoppedCanceled)
			}
		}
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
	metered  bool              // instrumented: refill checks stopped
	stopG    api.MutableGlobal // instrumented: the guest's stop global
	deadline atomic.Int64      // nanos since base; 0 = no call running
	base     time.Time         // the watchdog's monotonic epoch
	mu       sync.Mutex
	parent   context.Context // a cancellable caller's context, else nil
	stopped  atomic.Int32
	done     chan struct{}
}

// stopRaised is the stop global's value once the watchdog fired: above
// any fuel a slice can hold, so the guest's next test calls refill.
const stopRaised = 1 << 62

// fire stops the guest, then records why (Err must be set before Done
// closes). The stop global is raised first so that whoever reads stopped
// also sees that write (begin resets it); the guest may meanwhile call
// refill once or twice before stopped is set, which only yields.
// Only scan calls fire, once per callCtx, so the global has one writer.
func (c *callCtx) fire(why int32) {
	if c.stopG != nil {
		c.stopG.Set(stopRaised)
	}
	if c.stopped.CompareAndSwap(0, why) {
		close(c.done)
	}
}

func (c *callCtx) Deadline() (time.Time, bool) {
	d := c.deadline.Load()
	if d == 0 {
		return time.Time{}, false
	}
	return c.base.Add(time.Duration(d)), true
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
