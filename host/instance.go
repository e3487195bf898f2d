package host

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/purser-dev/purser/abi"
)

// instance is one instantiated module. It is used by one call at a time;
// function handles are looked up once here, never per call.
type instance struct {
	v        *version
	name     string
	mod      api.Module
	mem      api.Memory
	alloc    api.Function
	call     api.Function // purser_estimate or purser_admit; nil until bound
	stack    []uint64     // reused CallWithStack params/results
	bufPtr   uint32       // last purser_alloc buffer, reused while requests fit
	bufCap   uint32
	scratch  []byte // reused request encoding
	sink     *logSink
	out, err *stream
	cctx     *callCtx          // the watchdog's reusable call context
	fuelG    api.MutableGlobal // instrumented modules: fuel left in the slice
	bank     int64             // the rest of the budget; only the calling goroutine touches it
	budget   int64             // fuel set by the last setFuel
	initUsed int64             // fuel boot used before initialize reset the budget
	slot     int               // the pool slot it lives in (pool.home)
	written  uint32            // bytes the host wrote into the buffer since purser_alloc returned it
	// tenant is the tenant key this instance serves (IsolationTenant),
	// nil while it has served no call. Read by the pool's scans, hence atomic.
	tenant  atomic.Pointer[string]
	lastUse atomic.Int64 // pool.uses at the instance's last call
}

// serves reports whether the instance may take a call for tenant: it is
// fresh or already serves that tenant.
func (in *instance) serves(tenant string) bool {
	t := in.tenant.Load()
	return t == nil || *t == tenant
}

// claim binds a fresh instance to tenant for the rest of its life ("":
// shared plugins, never bound) and records the use.
func (in *instance) claim(tenant string) {
	if tenant != "" {
		if in.tenant.Load() == nil {
			t := tenant // allocated here, on an instance's first call only
			in.tenant.Store(&t)
		}
		// Approximate LRU: a plain load and store, not a contended add,
		// and none when this instance was the last one stamped (a run of
		// calls on one instance does not change the order).
		p := in.v.pool
		if n := p.uses.Load(); in.lastUse.Load() != n || n == 0 {
			p.uses.Store(n + 1)
			in.lastUse.Store(n + 1)
		}
	}
}

// instantiate creates an instance and runs _initialize. It does not bind
// the call export: the first instance of a module must read the manifest
// before the host knows which one to use.
func (v *version) instantiate(ctx context.Context) (*instance, error) {
	h := v.h
	in := &instance{v: v, name: v.name + "#" + strconv.FormatUint(h.seq.Add(1), 10), stack: make([]uint64, 2)}
	in.sink = newLogSink(v)
	in.out = &stream{sink: in.sink, level: hclog.Info}
	in.err = &stream{sink: in.sink, level: hclog.Warn}
	h.live.Store(in.name, in)
	mc := wazero.NewModuleConfig().
		WithName(in.name).
		WithStdout(in.out).
		WithStderr(in.err).
		WithStartFunctions() // boot runs _initialize under the stop mechanism
	// No FS, env, args or real clocks: wazero's defaults are the sandbox.
	// A start section (left in place only on the fallback runtime) runs
	// inside instantiation: bound it.
	ictx, cancel := context.WithTimeout(ctx, v.limits.InitTimeout)
	mod, err := v.compiled.rt.r.InstantiateModule(ictx, v.compiled.mod, mc)
	cancel()
	in.flushLogs()
	if err != nil {
		h.live.Delete(in.name)
		return nil, err
	}
	in.mod = mod
	if v.rt.fuel {
		if err := in.bindFuel(); err != nil {
			_ = mod.Close(ctx)
			h.live.Delete(in.name)
			return nil, err
		}
	}
	in.mem = mod.ExportedMemory(abi.ExportMemory)
	in.alloc = mod.ExportedFunction(abi.ExportAlloc)
	in.setFuel(v.limits.FuelInitMax) // boot and initialize run on it
	h.instances.Add(1)
	h.cfg.Observer.ObserveInstances(v.name, int(v.live.Add(1)))
	return in, nil
}

// bindFuel finds the fuel global the instrumenter added.
func (in *instance) bindFuel() error {
	g, ok := in.mod.ExportedGlobal(fuelGlobalExport).(api.MutableGlobal)
	if !ok {
		return fmt.Errorf("instrumented module lacks the %s global", fuelGlobalExport)
	}
	in.fuelG = g
	return nil
}

// setFuel gives the next guest call a budget of limit: one slice in the
// guest, the rest in the bank.
func (in *instance) setFuel(limit int64) {
	in.budget = limit
	if in.fuelG == nil {
		return
	}
	slice := min(limit, in.v.h.cfg.FuelCosts.Slice)
	in.fuelG.Set(uint64(slice))
	in.bank = limit - slice
}

// fuelUsed is what the guest burned since setFuel; more than the budget
// means it ran out.
func (in *instance) fuelUsed() int64 {
	if in.fuelG == nil {
		return 0
	}
	return in.budget - (int64(in.fuelG.Get()) + in.bank)
}

// refill is the guest's slow path, entered when its slice is spent (fuel
// < 0). It yields the goroutine (a scheduling point and GC safe point),
// stops a call the watchdog stopped, fails a call past its budget, and
// otherwise returns the next slice. Panics become the call's error.
func (in *instance) refill(fuel int64) int64 {
	runtime.Gosched()
	if c := in.cctx; c != nil && c.stopped.Load() != 0 {
		panic(errStopped)
	}
	total := in.bank + fuel
	if total < 0 {
		panic(ErrFuelExhausted) // bank + fuel stays negative: fuelUsed > budget
	}
	next := min(total, in.v.h.cfg.FuelCosts.Slice)
	in.bank = total - next
	return next
}

// errStopped ends a call the watchdog stopped (deadline or cancellation);
// classify reports the watchdog's reason.
var errStopped = errors.New("stopped by the host")

// outOfFuel reports whether the last call stopped for lack of fuel.
func (in *instance) outOfFuel() bool { return in.fuelG != nil && in.fuelUsed() > in.budget }

// boot runs the module's start function (moved out of instantiation by
// the instrumenter) and the WASI reactor initialisation (_initialize).
func (in *instance) boot(ctx context.Context) error {
	in.sink.reset()
	defer in.flushLogs()
	for _, name := range []string{startExport, abi.ExportInitialize} {
		fn := in.mod.ExportedFunction(name)
		if fn == nil {
			continue
		}
		if err := fn.CallWithStack(ctx, in.stack); err != nil {
			return in.initFailure(name, err)
		}
	}
	return nil
}

func (in *instance) flushLogs() {
	in.out.flush()
	in.err.flush()
}

// close discards the instance; the pool creates a new one when needed.
func (in *instance) close() {
	_ = in.mod.Close(context.Background())
	in.v.h.stop.forget(in)
	in.v.h.live.Delete(in.name)
	in.v.h.instances.Add(-1)
	n := in.v.live.Add(-1)
	in.v.h.cfg.Observer.ObserveInstances(in.v.name, int(n))
}

// callI32 calls a () -> i32 export.
func (in *instance) callI32(ctx context.Context, name string) (uint32, error) {
	fn := in.mod.ExportedFunction(name)
	if err := fn.CallWithStack(ctx, in.stack); err != nil {
		return 0, err
	}
	return uint32(in.stack[0]), nil
}

// callPacked calls a () -> i64 export and reads the packed range it returns.
func (in *instance) callPacked(ctx context.Context, name string, max int) ([]byte, error) {
	fn := in.mod.ExportedFunction(name)
	if err := fn.CallWithStack(ctx, in.stack); err != nil {
		return nil, err
	}
	return in.readPacked(in.stack[0], max)
}

// readPacked returns a copy-free view of the guest range ptr<<32|len.
// Callers copy what they keep before the next guest call.
func (in *instance) readPacked(packed uint64, max int) ([]byte, error) {
	ptr, n := abi.UnpackPtrLen(packed)
	if int64(n) > int64(max) {
		return nil, &outputError{ErrOutputTooLarge, fmt.Sprintf("%d bytes exceeds the %d-byte limit", n, max)}
	}
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		return nil, &outputError{ErrBadOutput, fmt.Sprintf("range [%d, %d+%d) is outside the %d-byte memory", ptr, ptr, n, in.mem.Size())}
	}
	return b, nil
}

// outputError carries the sentinel for a bad result range.
type outputError struct {
	kind error
	msg  string
}

func (e *outputError) Error() string { return e.kind.Error() + ": " + e.msg }
func (e *outputError) Unwrap() error { return e.kind }

// write copies req into a guest buffer, asking purser_alloc (on a budget
// of fuel) for a larger one only when req does not fit the last. What the
// host wrote before never outlives its call in a place the guest may
// read: the tail of a longer earlier request is zeroed, and a buffer the
// host gives back to the guest (for a larger one) is zeroed first.
func (in *instance) write(ctx context.Context, req []byte, fuel int64) (uint32, error) {
	n := uint32(len(req))
	if n > in.bufCap || in.bufPtr == 0 {
		in.zeroWritten(0)
		in.setFuel(fuel)
		in.stack[0] = uint64(n)
		if err := in.alloc.CallWithStack(ctx, in.stack); err != nil {
			return 0, err
		}
		ptr := uint32(in.stack[0])
		if ptr == 0 {
			return 0, &outputError{ErrBadOutput, fmt.Sprintf("purser_alloc(%d) returned 0", n)}
		}
		in.bufPtr, in.bufCap, in.written = ptr, n, 0
	}
	if ptr := in.bufPtr; !in.mem.Write(ptr, req) {
		in.bufPtr, in.bufCap, in.written = 0, 0, 0
		return 0, &outputError{ErrBadOutput, fmt.Sprintf("purser_alloc buffer [%d, %d+%d) is outside the %d-byte memory", ptr, ptr, n, in.mem.Size())}
	}
	in.zeroWritten(n)
	in.written = n
	return in.bufPtr, nil
}

// zeroWritten clears what the host wrote into the buffer past from.
func (in *instance) zeroWritten(from uint32) {
	if in.written <= from || in.bufPtr == 0 {
		return
	}
	if tail, ok := in.mem.Read(in.bufPtr+from, in.written-from); ok {
		clear(tail) // a view of guest memory: no copy
	}
	in.written = from
}

// invoke writes req, calls fn with a budget of fuel and decodes the
// result record. The budget is set again for the call itself so that its
// fuel does not depend on whether purser_alloc ran first.
func (in *instance) invoke(ctx context.Context, fn api.Function, req []byte, fuel int64) (abi.Result, error) {
	ptr, err := in.write(ctx, req, fuel)
	if err != nil {
		return abi.Result{}, err
	}
	in.setFuel(fuel)
	in.stack[0], in.stack[1] = uint64(ptr), uint64(len(req))
	if err := fn.CallWithStack(ctx, in.stack); err != nil {
		return abi.Result{}, err
	}
	b, err := in.readPacked(in.stack[0], in.v.limits.OutputBytesMax)
	if err != nil {
		return abi.Result{}, err
	}
	res, err := abi.ParseResult(b)
	if err != nil {
		return abi.Result{}, &outputError{ErrBadOutput, err.Error()}
	}
	return res, nil
}

// initFailure describes a failed initialisation call, naming fuel
// exhaustion so a too-small limits.fuel_init_max is recognisable.
func (in *instance) initFailure(name string, err error) error {
	if in.outOfFuel() {
		return fmt.Errorf("%s: %w: used more than the %d-unit init budget (limits.fuel_init_max)", name, ErrFuelExhausted, in.budget)
	}
	return fmt.Errorf("%s: %s", name, firstLine(err.Error()))
}

// initFuelCheck refuses an instance whose initialisation finished past
// its budget (between two fuel tests).
func (in *instance) initFuelCheck() error {
	if in.outOfFuel() {
		return fmt.Errorf("initialisation: %w: used %d of the %d-unit init budget (limits.fuel_init_max)", ErrFuelExhausted, in.fuelUsed(), in.budget)
	}
	return nil
}

// classify maps a failed guest call to a sentinel and a message. parent is
// the caller's context, callCtx the bounded one the guest ran under.
func classify(parent context.Context, stopped error, err error) (msg string, kind error) {
	var oe *outputError
	if errors.As(err, &oe) {
		return oe.msg, oe.kind
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			if parent.Err() != nil {
				return "caller gave up", parent.Err()
			}
			return "stopped at the call deadline", ErrTimeout
		}
		return fmt.Sprintf("guest exited with code %d (Go guests exit with 2 on panic)", exit.ExitCode()), ErrTrap
	}
	if parent.Err() != nil {
		return "caller gave up", parent.Err()
	}
	if stopped != nil {
		return "stopped at the call deadline", ErrTimeout
	}
	msg = err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] // wazero appends the wasm stack trace; it goes to the log
	}
	return msg, ErrTrap
}
