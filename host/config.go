package host

import (
	"fmt"
	"runtime"
	"time"

	"github.com/hashicorp/go-hclog"
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
	// Containment bounds pool waits, quarantine and guest text
	// (containment.go).
	Containment
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
	return nil
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

	// stop selects the stop mechanism; tests and benchmarks use stopNone
	// to measure what the default costs.
	stop stopKind
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
