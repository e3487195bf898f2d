package host

import (
	"fmt"
	"runtime"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/signing"
)

// Limits bound what one plugin may use. A zero field means "use the
// default" (in Config) or "inherit the host's" (in a per-plugin override).
type Limits struct {
	// MemoryPagesMax caps each instance's linear memory (64 KiB pages).
	MemoryPagesMax uint32
	// CallTimeout is the backstop deadline of one estimate or admit call
	// (fuel ends a runaway call first; the deadline catches a budget set
	// too large), enforced at the guest's next visit to the host.
	CallTimeout time.Duration
	// InitTimeout bounds creating an instance: instantiation, _initialize,
	// manifest and purser_init (Go guests start a runtime there).
	InitTimeout time.Duration
	// InputBytesMax caps an encoded request (and the plugin config).
	InputBytesMax int
	// OutputBytesMax caps a result record and the manifest.
	OutputBytesMax int
	// LogBytesPerCallMax caps what a guest may log (log import, stdout,
	// stderr) during one call or one instance initialisation.
	LogBytesPerCallMax int
	// InstancesMax is the pool size per plugin; instances are single-threaded.
	InstancesMax int
	// FailuresBeforeUnhealthy consecutive failures mark a plugin unhealthy.
	FailuresBeforeUnhealthy int
	// UnhealthyRetryAfter is how often an unhealthy plugin gets a trial call.
	UnhealthyRetryAfter time.Duration
	// FuelPerCallMax is the fuel (FuelCosts units; one per Wasm
	// instruction by default) one estimate or admit call may burn before
	// it stops with ErrFuelExhausted. This, not the clock, is what bounds
	// a call: the same call stops at the same point on every machine.
	FuelPerCallMax int64
	// FuelPerInputByte raises a call's budget by this much per byte of
	// its encoded request, so plugins that scan the prompt are not cut
	// off on long conversations. Negative means none (0 inherits).
	FuelPerInputByte int64
	// FuelInitMax bounds creating an instance (start function,
	// _initialize, manifest and purser_init; a Go guest starts its
	// runtime there).
	FuelInitMax int64

	// Load limits: what a module may declare, checked before it is
	// instrumented or compiled (limits.go); a module over one is refused
	// with a *ModuleLimitError. Counts are entries, sizes bytes.
	ModuleLimits
	// Containment bounds pool waits, quarantine and guest text
	// (containment.go).
	Containment
}

// ModuleLimits bound what a module declares, so that no module makes the
// host allocate more than they allow when it compiles or instantiates it.
type ModuleLimits struct {
	// ModuleBytesMax caps the .wasm file.
	ModuleBytesMax int
	// TableElementsMax caps each table, at start and after table.grow (a
	// larger or missing declared maximum is lowered to it).
	TableElementsMax int
	// TableElementsTotalMax caps all tables together.
	TableElementsTotalMax int
	// GlobalsMax caps globals, imported and defined.
	GlobalsMax int
	// FunctionsMax caps defined functions.
	FunctionsMax int
	// FunctionBodyBytesMax caps one function's code.
	FunctionBodyBytesMax int
	// BlockNestingDepthMax caps block/loop/if nesting in one function.
	BlockNestingDepthMax int
	// FunctionLocalsMax caps one function's declared locals;
	// LocalsTotalMax all functions' (each costs compiled code).
	FunctionLocalsMax int
	LocalsTotalMax    int
	// CodeBytesMax caps the code section, and through it the compiled code
	// (about compiledBytesPerCodeByte bytes per byte).
	CodeBytesMax int
	// DataSegmentBytesMax caps one data segment; DataBytesTotalMax all.
	DataSegmentBytesMax int
	DataBytesTotalMax   int
	// ElementSegmentEntriesMax caps one element segment;
	// ElementEntriesTotalMax all.
	ElementSegmentEntriesMax int
	ElementEntriesTotalMax   int
}

// or fills m's zero fields from base.
func (m ModuleLimits) or(base ModuleLimits) ModuleLimits {
	for _, f := range []struct{ v, b *int }{
		{&m.ModuleBytesMax, &base.ModuleBytesMax}, {&m.TableElementsMax, &base.TableElementsMax},
		{&m.TableElementsTotalMax, &base.TableElementsTotalMax}, {&m.GlobalsMax, &base.GlobalsMax},
		{&m.FunctionsMax, &base.FunctionsMax}, {&m.FunctionBodyBytesMax, &base.FunctionBodyBytesMax},
		{&m.BlockNestingDepthMax, &base.BlockNestingDepthMax}, {&m.CodeBytesMax, &base.CodeBytesMax},
		{&m.FunctionLocalsMax, &base.FunctionLocalsMax}, {&m.LocalsTotalMax, &base.LocalsTotalMax},
		{&m.DataSegmentBytesMax, &base.DataSegmentBytesMax}, {&m.DataBytesTotalMax, &base.DataBytesTotalMax},
		{&m.ElementSegmentEntriesMax, &base.ElementSegmentEntriesMax}, {&m.ElementEntriesTotalMax, &base.ElementEntriesTotalMax},
	} {
		if *f.v == 0 {
			*f.v = *f.b
		}
	}
	return m
}

// validate refuses negative limits and table limits wazero cannot honour.
func (m ModuleLimits) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"ModuleBytesMax", m.ModuleBytesMax}, {"TableElementsMax", m.TableElementsMax},
		{"TableElementsTotalMax", m.TableElementsTotalMax}, {"GlobalsMax", m.GlobalsMax}, {"FunctionsMax", m.FunctionsMax},
		{"FunctionBodyBytesMax", m.FunctionBodyBytesMax}, {"BlockNestingDepthMax", m.BlockNestingDepthMax},
		{"FunctionLocalsMax", m.FunctionLocalsMax}, {"LocalsTotalMax", m.LocalsTotalMax},
		{"CodeBytesMax", m.CodeBytesMax}, {"DataSegmentBytesMax", m.DataSegmentBytesMax}, {"DataBytesTotalMax", m.DataBytesTotalMax},
		{"ElementSegmentEntriesMax", m.ElementSegmentEntriesMax}, {"ElementEntriesTotalMax", m.ElementEntriesTotalMax}} {
		if f.v < 1 || f.v > 1<<30 {
			return fmt.Errorf("%s %d is outside [1, 2^30]", f.name, f.v)
		}
	}
	return nil
}

// defaultModuleLimits: the shipped plugins' largest value of each (Go
// guests, measured in host/BENCHMARKS.md "Load limits") with headroom.
func defaultModuleLimits() ModuleLimits {
	return ModuleLimits{
		ModuleBytesMax:           32 << 20,  // Go guests: 4.0 MB
		TableElementsMax:         1 << 16,   // 6,510
		TableElementsTotalMax:    1 << 17,   // one table
		GlobalsMax:               1 << 10,   // 8
		FunctionsMax:             1 << 15,   // 2,414
		FunctionBodyBytesMax:     256 << 10, // 50,636
		BlockNestingDepthMax:     1024,      // 549 (a Go runtime switch)
		FunctionLocalsMax:        1024,      // 20
		LocalsTotalMax:           1 << 17,   // 10,217 (about 8 bytes of compiled code each)
		CodeBytesMax:             8 << 20,   // 2.56 MB
		DataSegmentBytesMax:      4 << 20,   // 343,728
		DataBytesTotalMax:        16 << 20,  // 1.09 MB
		ElementSegmentEntriesMax: 1 << 16,   // 2,414
		ElementEntriesTotalMax:   1 << 17,   // one segment
	}
}

// fuelLimitMax keeps bank+fuel far from int64 overflow.
const fuelLimitMax = 1 << 62

// fuelFor is the budget of a call whose encoded request is size bytes.
func (l Limits) fuelFor(size int) int64 {
	f := l.FuelPerCallMax
	if l.FuelPerInputByte > 0 {
		f += l.FuelPerInputByte * int64(size) // size <= InputBytesMax, both bounded by validate
	}
	return min(f, fuelLimitMax)
}

// validate reports limits no host can honour. It runs after Or, so zero
// fields already hold the defaults.
func (l Limits) validate() error {
	switch {
	case l.FuelPerCallMax < 1 || l.FuelPerCallMax > fuelLimitMax:
		return fmt.Errorf("FuelPerCallMax %d is outside [1, 2^62]", l.FuelPerCallMax)
	case l.FuelInitMax < 1 || l.FuelInitMax > fuelLimitMax:
		return fmt.Errorf("FuelInitMax %d is outside [1, 2^62]", l.FuelInitMax)
	case l.FuelPerInputByte > 1<<30:
		return fmt.Errorf("FuelPerInputByte %d is over 2^30", l.FuelPerInputByte)
	case l.InputBytesMax < 1 || l.InputBytesMax > 1<<30:
		return fmt.Errorf("InputBytesMax %d is outside [1, 2^30]", l.InputBytesMax)
	}
	return l.ModuleLimits.validate()
}

// DefaultLimits are safe for plugins in the hot path of every tool call.
func DefaultLimits() Limits {
	return Limits{
		MemoryPagesMax:          512, // 32 MiB: a Go guest needs a few MiB
		CallTimeout:             100 * time.Millisecond,
		InitTimeout:             5 * time.Second,
		InputBytesMax:           1 << 20,
		OutputBytesMax:          64 << 10,
		LogBytesPerCallMax:      8 << 10,
		InstancesMax:            runtime.GOMAXPROCS(0),
		FailuresBeforeUnhealthy: 5,
		UnhealthyRetryAfter:     30 * time.Second,
		FuelPerCallMax:          defaultFuelPerCall,
		FuelPerInputByte:        defaultFuelPerInputByte,
		FuelInitMax:             defaultFuelInit,
		ModuleLimits:            defaultModuleLimits(),
		Containment:             defaultContainment(),
	}
}

// Or returns l with every zero field taken from base.
func (l Limits) Or(base Limits) Limits {
	if l.MemoryPagesMax == 0 {
		l.MemoryPagesMax = base.MemoryPagesMax
	}
	if l.CallTimeout == 0 {
		l.CallTimeout = base.CallTimeout
	}
	if l.InitTimeout == 0 {
		l.InitTimeout = base.InitTimeout
	}
	if l.InputBytesMax == 0 {
		l.InputBytesMax = base.InputBytesMax
	}
	if l.OutputBytesMax == 0 {
		l.OutputBytesMax = base.OutputBytesMax
	}
	if l.LogBytesPerCallMax == 0 {
		l.LogBytesPerCallMax = base.LogBytesPerCallMax
	}
	if l.InstancesMax == 0 {
		l.InstancesMax = base.InstancesMax
	}
	if l.FailuresBeforeUnhealthy == 0 {
		l.FailuresBeforeUnhealthy = base.FailuresBeforeUnhealthy
	}
	if l.UnhealthyRetryAfter == 0 {
		l.UnhealthyRetryAfter = base.UnhealthyRetryAfter
	}
	if l.FuelPerCallMax == 0 {
		l.FuelPerCallMax = base.FuelPerCallMax
	}
	if l.FuelPerInputByte == 0 {
		l.FuelPerInputByte = base.FuelPerInputByte
	}
	if l.FuelInitMax == 0 {
		l.FuelInitMax = base.FuelInitMax
	}
	l.ModuleLimits = l.ModuleLimits.or(base.ModuleLimits)
	l.Containment = l.Containment.or(base.Containment)
	return l
}

// Config is the host's immutable configuration; New fills zero fields
// with defaults.
type Config struct {
	Limits Limits
	// CompilationCacheDir, when set, keeps compiled modules on disk so a
	// restart does not recompile (wazero.NewCompilationCacheWithDir).
	CompilationCacheDir string
	// Logger is the parent of every plugin logger ("purser.host.<plugin>").
	// Default: a null logger.
	Logger hclog.Logger
	// Observer receives metrics events. Default: none.
	Observer Observer
	// FuelCosts is the instrumenter's cost table; zero fields take
	// DefaultFuelCosts. It is part of the instrumented-module cache key.
	FuelCosts FuelCosts
	// Tenants maps an account to its root account, the tenant key of
	// IsolationTenant plugins. Nil: each account is its own tenant.
	Tenants TenantResolver
	// Signatures, when set, checks each module's FILE.wasm.sig at load
	// and reload (signature.go). Nil: signatures are not looked at.
	Signatures *signing.Policy

	// stop selects the stop mechanism; tests and benchmarks use stopNone
	// to measure what the default costs.
	stop stopKind
	// noSmokeCalls skips the load-time smoke calls, so that tests can load
	// guests that misbehave on every call and watch what calls do.
	noSmokeCalls bool
}

func (c Config) withDefaults() Config {
	c.Limits = c.Limits.Or(DefaultLimits())
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	c.FuelCosts = c.FuelCosts.or(DefaultFuelCosts())
	return c
}

// Observer receives metrics events; the server implements it with
// Prometheus. Methods must be cheap and must not block.
type Observer interface {
	// ObserveCall reports one estimate/admit call ("estimate" or "admit"),
	// the fuel it used (0 when it never ran) and its error: nil on success
	// and when the plugin declined the call (code unsupported), which is an
	// answer, not an error. Label errors with ErrorKind; invalid params
	// (the caller's mistake) are "invalid_params", never "guest_error".
	ObserveCall(plugin, kind string, d time.Duration, fuel int64, err error)
	// ObserveInstances reports a plugin's live instance count after a change.
	ObserveInstances(plugin string, n int)
	// ObserveReload reports a load or reload attempt and its outcome.
	ObserveReload(plugin string, err error)
}

// NopObserver ignores every event.
type NopObserver struct{}

// ObserveCall does nothing.
func (NopObserver) ObserveCall(string, string, time.Duration, int64, error) {}

// ObserveInstances does nothing.
func (NopObserver) ObserveInstances(string, int) {}

// ObserveReload does nothing.
func (NopObserver) ObserveReload(string, error) {}

// Fuel defaults, from the measurements in BENCHMARKS.md ("Fuel").
const (
	defaultFuelPerCall      = 20_000_000
	defaultFuelPerInputByte = 200
	defaultFuelInit         = 200_000_000
)
