// Package host runs purser's WebAssembly plugins on wazero: it loads and
// validates modules against the ABI (package abi), compiles each digest
// once, keeps a pool of single-threaded instances per plugin, enforces the
// sandbox limits, and reloads plugins atomically. It does not know the
// enforcer: a bridge adapts *Plugin to the enforcer's interfaces.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/purser-dev/purser/abi"
)

// Host owns the wazero runtimes, the compiled-module cache and every
// plugin instance. It is safe for concurrent use.
type Host struct {
	cfg     Config
	cache   wazero.CompilationCache
	stop    stopper
	observe bool // an Observer other than NopObserver was configured

	mu       sync.Mutex
	runtimes map[rtKey]*wruntime // wazero sets these per runtime
	compiled map[compiledKey]*compiledEntry
	closed   bool

	live      sync.Map // instance module name -> *instance, for the imports
	instances atomic.Int64
	seq       atomic.Uint64 // unique instance names

	logLimiters sync.Map // plugin name -> *logLimiter, across reloads
	// now is the clock of health back-off and log rates; tests replace it.
	now func() time.Time
}

// wruntime is one wazero runtime with WASI and the purser imports.
type wruntime struct {
	r    wazero.Runtime
	wasi map[string]api.FunctionDefinition
	fuel bool // provides purser_fuel.refill: runs instrumented modules
}

// rtKey selects a runtime: memory limit, and whether it runs instrumented
// modules (no wazero termination checks) or not.
type rtKey struct {
	pages uint32
	fuel  bool
}

type compiledKey struct {
	digest [32]byte
	rt     rtKey
}

type compiledEntry struct {
	mod  wazero.CompiledModule
	rt   *wruntime
	refs int
}

// New builds a host. cfg's zero fields get safe defaults.
func New(ctx context.Context, cfg Config) (*Host, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Limits.validate(); err != nil {
		return nil, fmt.Errorf("host: limits: %w", err)
	}
	if err := cfg.FuelCosts.validate(); err != nil {
		return nil, fmt.Errorf("host: fuel costs: %w", err)
	}
	h := &Host{
		cfg:      cfg,
		stop:     newStopper(cfg.stop, watchdogTick(cfg.Limits.CallTimeout)),
		observe:  !isNop(cfg.Observer),
		runtimes: map[rtKey]*wruntime{},
		compiled: map[compiledKey]*compiledEntry{},
		now:      time.Now,
	}
	if cfg.CompilationCacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CompilationCacheDir)
		if err != nil {
			return nil, fmt.Errorf("host: compilation cache %q: %w", cfg.CompilationCacheDir, err)
		}
		h.cache = c
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	// Build the default runtime now so configuration errors surface here.
	if _, err := h.runtime(ctx, rtKey{cfg.Limits.MemoryPagesMax, h.stop.instrument()}); err != nil {
		_ = h.cache.Close(ctx)
		h.stop.close()
		return nil, err
	}
	return h, nil
}

// Config returns the host's configuration with defaults applied.
func (h *Host) Config() Config { return h.cfg }

// Instances is the number of live plugin instances across all plugins.
func (h *Host) Instances() int { return int(h.instances.Load()) }

// Close closes every runtime, and with them every instance. Plugins must
// not be called afterwards.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	var errs []error
	for _, rt := range h.runtimes {
		errs = append(errs, rt.r.Close(ctx))
	}
	errs = append(errs, h.cache.Close(ctx))
	h.stop.close()
	return errors.Join(errs...)
}

func (h *Host) runtime(ctx context.Context, key rtKey) (*wruntime, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runtimeLocked(ctx, key)
}

func (h *Host) runtimeLocked(ctx context.Context, key rtKey) (*wruntime, error) {
	if h.closed {
		return nil, errors.New("host: closed")
	}
	if rt := h.runtimes[key]; rt != nil {
		return rt, nil
	}
	if key.pages == 0 || key.pages > 65536 {
		return nil, fmt.Errorf("host: MemoryPagesMax %d out of range 1..65536", key.pages)
	}
	// Instrumented modules stop themselves; the others need wazero's checks
	// (unless running unbounded for measurement).
	closeOnDone := !key.fuel && h.cfg.stop != stopNone
	rc := wazero.NewRuntimeConfigCompiler().
		WithMemoryLimitPages(key.pages).
		WithCompilationCache(h.cache).
		WithCloseOnContextDone(closeOnDone)
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	wctx := ctx
	if key.fuel {
		wctx = h.wasiFuelContext(ctx) // sized WASI calls pay their work in fuel
	}
	_, err := wasi_snapshot_preview1.Instantiate(wctx, r)
	if err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("host: instantiating WASI: %w", err)
	}
	_, err = r.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(h.logImport), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, nil).
		WithParameterNames("level", "ptr", "len").
		Export(abi.ImportLog).
		Instantiate(ctx)
	if err != nil {
		_ = r.Close(ctx)
		return nil, fmt.Errorf("host: instantiating the %q imports: %w", abi.ImportModule, err)
	}
	if key.fuel {
		_, err = r.NewHostModuleBuilder(fuelImportModule).
			NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(h.refillImport), []api.ValueType{api.ValueTypeI64}, []api.ValueType{api.ValueTypeI64}).
			WithParameterNames("fuel").
			Export(fuelImportRefill).
			Instantiate(ctx)
		if err != nil {
			_ = r.Close(ctx)
			return nil, fmt.Errorf("host: instantiating the %q imports: %w", fuelImportModule, err)
		}
	}
	rt := &wruntime{r: r, wasi: r.Module(abi.WASIModule).ExportedFunctionDefinitions(), fuel: key.fuel}
	h.runtimes[key] = rt
	return rt, nil
}

// compile returns the compiled module for bin under the given memory
// limit, compiling it at most once per (digest, limit).
func (h *Host) compile(ctx context.Context, digest [32]byte, bin []byte, rk rtKey) (*compiledEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := compiledKey{digest, rk}
	if e := h.compiled[key]; e != nil {
		e.refs++
		return e, nil
	}
	rt, err := h.runtimeLocked(ctx, rk)
	if err != nil {
		return nil, err
	}
	// Compiling under the lock serialises compiles; loads are rare and this
	// keeps "once per digest" simple.
	if rk.fuel {
		ib, err := h.instrumented(digest, bin)
		if err != nil {
			if _, cerr := rt.r.CompileModule(ctx, bin); cerr != nil {
				return nil, cerr // not a valid module at all: say that
			}
			return nil, err
		}
		bin = ib
	}
	m, err := rt.r.CompileModule(ctx, bin)
	if err != nil {
		return nil, err
	}
	e := &compiledEntry{mod: m, rt: rt, refs: 1}
	h.compiled[key] = e
	return e, nil
}

func (h *Host) releaseCompiled(ctx context.Context, digest [32]byte, rk rtKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := compiledKey{digest, rk}
	e := h.compiled[key]
	if e == nil {
		return
	}
	if e.refs--; e.refs == 0 {
		delete(h.compiled, key)
		if !h.closed {
			_ = e.mod.Close(ctx)
		}
	}
}

// refillImport implements purser_fuel.refill for instrumented modules:
// (fuel i64) -> (next slice i64). See instance.refill.
func (h *Host) refillImport(_ context.Context, m api.Module, stack []uint64) {
	in, ok := h.live.Load(m.Name())
	if !ok {
		panic(errors.New("purser_fuel.refill: unknown instance " + m.Name()))
	}
	stack[0] = uint64(in.(*instance).refill(int64(stack[0])))
}

// logImport implements purser.log. It finds the calling instance's sink by
// module name, which is unique per instance.
func (h *Host) logImport(_ context.Context, m api.Module, stack []uint64) {
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	in, ok := h.live.Load(m.Name())
	if !ok {
		return
	}
	sink := in.(*instance).sink
	take := sink.take(int(n))
	if take <= 0 {
		return
	}
	msg, ok := m.Memory().Read(ptr, uint32(take))
	if !ok {
		if sink.allow() {
			sink.logger.Warn("log import: message out of guest memory", "ptr", ptr, "len", n)
		}
		return
	}
	sink.emit(hclogLevel(level), msg)
}

func hclogLevel(l int32) hclog.Level {
	switch abi.LogLevel(l) {
	case abi.LogTrace:
		return hclog.Trace
	case abi.LogDebug:
		return hclog.Debug
	case abi.LogInfo:
		return hclog.Info
	case abi.LogWarn:
		return hclog.Warn
	}
	if l < 0 {
		return hclog.Trace
	}
	return hclog.Error
}

// watchdogTick is how often the watchdog looks for overdue calls: a tenth
// of the call deadline, within [1ms, 10ms].
func watchdogTick(callTimeout time.Duration) time.Duration {
	return min(max(callTimeout/10, time.Millisecond), 10*time.Millisecond)
}

// Digest returns the hex sha256 of bin, the identity of a module.
func Digest(bin []byte) string {
	d := sha256.Sum256(bin)
	return hex.EncodeToString(d[:])
}
