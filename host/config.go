package host

import (
	"runtime"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Limits bound what one plugin may use. A zero field means "use the
// default" (in Config) or "inherit the host's" (in a per-plugin override).
type Limits struct {
	// MemoryPagesMax caps each instance's linear memory (64 KiB pages).
	MemoryPagesMax uint32
	// CallTimeout bounds one estimate or admit call.
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
	return c
}

// Observer receives metrics events; the server implements it with
// Prometheus. Methods must be cheap and must not block.
type Observer interface {
	// ObserveCall reports one estimate/admit call ("estimate" or "admit")
	// and its error (nil on success).
	ObserveCall(plugin, kind string, d time.Duration, err error)
	// ObserveInstances reports a plugin's live instance count after a change.
	ObserveInstances(plugin string, n int)
	// ObserveReload reports a load or reload attempt and its outcome.
	ObserveReload(plugin string, err error)
}

// NopObserver ignores every event.
type NopObserver struct{}

// ObserveCall does nothing.
func (NopObserver) ObserveCall(string, string, time.Duration, error) {}

// ObserveInstances does nothing.
func (NopObserver) ObserveInstances(string, int) {}

// ObserveReload does nothing.
func (NopObserver) ObserveReload(string, error) {}
