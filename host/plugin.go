package host

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/abi"
)

// version is one loaded module of a plugin with its instance pool. A
// reload makes a new version; the old one is closed once its calls drain.
type version struct {
	h          *Host
	compiled   *compiledEntry
	digest     [32]byte
	hexDigest  string
	label      string // "plugin:<name>@<digest12>"
	name       string
	logger     hclog.Logger
	limits     Limits
	manifest   abi.Manifest
	abiVersion uint32
	config     []byte
	hasInit    bool
	rt         rtKey // fuel: the module was instrumented
	loadedAt   time.Time
	initFuel   int64 // fuel the smoke-test instance used to start

	owner *Plugin      // for counters; nil while a load is being smoke-tested
	refs  atomic.Int64 // 1 for the owner (Plugin) + 1 per call in flight
	live  atomic.Int64 // live instances
	pool  *pool
}

func newVersion(h *Host, spec *Spec, ce *compiledEntry, digest [32]byte, hexDigest string, limits Limits, rk rtKey) *version {
	v := &version{h: h, compiled: ce, digest: digest, hexDigest: hexDigest, limits: limits, rt: rk,
		pool: newPool(limits.InstancesMax), loadedAt: time.Now()}
	v.refs.Store(1)
	v.setName(spec.provisionalName())
	return v
}

func (v *version) setName(name string) {
	v.name = name
	v.label = "plugin:" + name + "@" + v.hexDigest[:12]
	v.logger = v.h.cfg.Logger.ResetNamed("purser.host." + name)
}

// ref takes a reference unless the version is already closing.
func (v *version) ref() bool {
	for {
		n := v.refs.Load()
		if n <= 0 {
			return false
		}
		if v.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// unref drops a reference; the last one closes the version.
func (v *version) unref() {
	if v.refs.Add(-1) == 0 {
		v.close()
	}
}

func (v *version) close() {
	for _, in := range v.pool.drain() {
		in.close()
	}
	v.h.releaseCompiled(context.Background(), v.digest, v.rt)
}

// get takes an idle instance or creates one, waiting for a free slot.
func (v *version) get(ctx context.Context) (*instance, error) {
	in, create, err := v.pool.get(ctx)
	if err != nil || !create {
		return in, err
	}
	in, err = v.newInstance(ctx)
	if err != nil {
		v.pool.release()
		return nil, err
	}
	return in, nil
}

// newInstance replaces a discarded instance (or grows the pool).
func (v *version) newInstance(ctx context.Context) (*instance, error) {
	in, err := v.instantiate(ctx)
	if err != nil {
		return nil, err
	}
	in.sink.logger = v.logger
	if v.owner != nil {
		v.owner.created.Add(1)
	}
	ictx := v.h.stop.begin(ctx, in, v.limits.InitTimeout)
	err = in.boot(ictx)
	if err == nil {
		err = in.initialize(ictx)
	}
	if err == nil {
		err = in.initFuelCheck()
	}
	v.h.stop.end(in, ictx)
	if err != nil {
		in.close()
		return nil, err
	}
	return in, nil
}

// put returns an instance to the pool, or closes it when it misbehaved.
func (v *version) put(in *instance, ok bool) {
	if ok && v.pool.put(in) {
		return
	}
	in.close()
	if !ok {
		v.pool.release()
	}
}

// Plugin is a loaded plugin. It stays the same object across reloads, so
// callers (the enforcer bridge) may keep it; each call runs on the version
// current when it started.
type Plugin struct {
	h    *Host
	spec Spec
	cur  atomic.Pointer[version]

	closed      atomic.Bool
	failures    atomic.Int64
	unhealthyAt atomic.Int64 // unix nanos; 0 = healthy
	lastTrial   atomic.Int64
	lastErr     atomic.Pointer[string]

	calls       atomic.Uint64
	created     atomic.Uint64 // instances ever created, across versions
	unsupported atomic.Uint64 // calls the plugin declined (not errors)
	errors      [numErrKinds]atomic.Uint64
}

// Name is the manifest name.
func (p *Plugin) Name() string { return p.cur.Load().name }

// Digest is the hex sha256 of the running module.
func (p *Plugin) Digest() string { return p.cur.Load().hexDigest }

// SourceLabel is "plugin:<name>@<first 12 hex of sha256>".
func (p *Plugin) SourceLabel() string { return p.cur.Load().label }

// Manifest is the running module's manifest.
func (p *Plugin) Manifest() abi.Manifest { return p.cur.Load().manifest }

// Kind is the manifest kind.
func (p *Plugin) Kind() abi.Kind { return p.cur.Load().manifest.Kind }

// FailMode is the configured policy fail mode.
func (p *Plugin) FailMode() FailMode { return p.spec.FailMode }

// Order sorts policies.
func (p *Plugin) Order() int { return p.spec.Order }

// File is the module's path ("" for in-memory modules).
func (p *Plugin) File() string { return p.spec.File }

// InitFuel is the fuel the current version's first instance used to
// start: start function, _initialize, manifest and purser_init.
func (p *Plugin) InitFuel() int64 { return p.cur.Load().initFuel }

// Limits are the effective limits.
func (p *Plugin) Limits() Limits { return p.cur.Load().limits }

// CallInfo describes a finished (or failed) call.
type CallInfo struct {
	// Source is the label of the version that answered,
	// "plugin:<name>@<sha256 prefix>" (it changes on reload).
	Source string
	// Fuel is what the call burned (FuelCosts units; instructions by
	// default). It is deterministic: the same module, instance state and
	// request use the same fuel on every run and machine. 0 when the call
	// never reached the guest.
	Fuel int64
	// FuelLimit is the call's budget: FuelPerCallMax plus FuelPerInputByte
	// per request byte.
	FuelLimit int64
}

// Estimate asks an estimator plugin for a price.
func (p *Plugin) Estimate(ctx context.Context, req abi.EstimateRequest) (abi.EstimateResult, CallInfo, error) {
	r, v, info, err := p.run(ctx, opEstimate, &req, nil, req.EncodedSize())
	if err != nil {
		return abi.EstimateResult{}, info, err
	}
	res, err := r.Estimate()
	if err != nil {
		return res, info, p.fail(v, opEstimate, ErrBadOutput, 0, err.Error())
	}
	return res, info, nil
}

// Admit asks a policy plugin for a verdict.
func (p *Plugin) Admit(ctx context.Context, req abi.AdmitRequest) (abi.AdmitResult, CallInfo, error) {
	r, v, info, err := p.run(ctx, opAdmit, nil, &req, req.EncodedSize())
	if err != nil {
		return abi.AdmitResult{}, info, err
	}
	res, err := r.Admit()
	if err != nil {
		return res, info, p.fail(v, opAdmit, ErrBadOutput, 0, err.Error())
	}
	return res, info, nil
}

type op uint8

const (
	opEstimate op = iota
	opAdmit
)

func (o op) String() string {
	if o == opAdmit {
		return "admit"
	}
	return "estimate"
}

// run performs one call on the current version: health gate, pool, limits,
// classification of failures, health and stats bookkeeping.
func (p *Plugin) run(ctx context.Context, o op, est *abi.EstimateRequest, adm *abi.AdmitRequest, size int) (abi.Result, *version, CallInfo, error) {
	var start time.Time
	observe := p.h.observing()
	if observe {
		start = time.Now()
	}
	var info CallInfo
	r, v, err := p.runOnce(ctx, o, est, adm, size, &info)
	p.calls.Add(1)
	if v != nil {
		info.Source = v.label
	}
	if observe {
		oerr := err
		if errors.Is(err, ErrUnsupported) {
			oerr = nil // the plugin answered "not mine": not an error
		}
		p.h.cfg.Observer.ObserveCall(nameOr(v, p.Name()), o.String(), time.Since(start), info.Fuel, oerr)
	}
	return r, v, info, err
}

func (p *Plugin) runOnce(ctx context.Context, o op, est *abi.EstimateRequest, adm *abi.AdmitRequest, size int, info *CallInfo) (res abi.Result, _ *version, _ error) {
	v := p.acquire()
	if v == nil {
		return res, nil, &CallError{Plugin: p.spec.provisionalName(), Op: o.String(), Err: ErrClosed}
	}
	defer v.unref()
	want := abi.KindEstimator
	if o == opAdmit {
		want = abi.KindPolicy
	}
	if v.manifest.Kind != want {
		return res, v, p.fail(v, o, ErrWrongKind, 0, "plugin kind is "+string(v.manifest.Kind))
	}
	if size > v.limits.InputBytesMax {
		return res, v, p.fail(v, o, ErrInputTooLarge, 0, "request is "+itoa(size)+" bytes, limit "+itoa(v.limits.InputBytesMax))
	}
	info.FuelLimit = v.limits.fuelFor(size) // size is bounded now: no overflow
	if !p.allowCall(v) {
		return res, v, p.fail(v, o, ErrUnhealthy, 0, "after "+itoa(int(p.failures.Load()))+" consecutive failures; last: "+p.LastError())
	}
	in, err := v.get(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return res, v, p.fail(v, o, ctx.Err(), 0, "waiting for an instance")
		}
		return res, v, p.fail(v, o, ErrInit, 0, "creating an instance: "+firstLine(err.Error()))
	}
	if est != nil {
		in.scratch = abi.AppendEstimateRequest(in.scratch[:0], est)
	} else {
		in.scratch = abi.AppendAdmitRequest(in.scratch[:0], adm)
	}
	cctx := p.h.stop.begin(ctx, in, v.limits.CallTimeout)
	in.sink.reset()
	res, err = in.invoke(cctx, in.call, in.scratch, info.FuelLimit)
	info.Fuel = in.fuelUsed()
	exhausted := info.Fuel > info.FuelLimit
	if err == nil && exhausted {
		// The guest tests its fuel only at loop headers and function
		// entries, so it can finish a loop-free stretch past the budget;
		// the budget holds all the same.
		err = ErrFuelExhausted
	}
	in.flushLogs()
	if err != nil {
		msg, kind := classify(ctx, p.h.stop.stopped(in, cctx), err)
		if exhausted {
			kind, msg = ErrFuelExhausted, fmt.Sprintf("used more than its %d-unit budget (limits.fuel_per_call_max %d + fuel_per_input_byte %d x %d request bytes)",
				info.FuelLimit, v.limits.FuelPerCallMax, max(v.limits.FuelPerInputByte, 0), size)
		}
		p.h.stop.end(in, cctx)
		v.put(in, false)
		if kind == ErrTrap {
			v.logger.Debug("guest trapped", "op", o.String(), "error", err.Error())
		}
		return res, v, p.fail(v, o, kind, 0, msg)
	}
	p.h.stop.end(in, cctx)
	if res.Status != abi.CodeOK {
		msg := string(res.Text)
		v.put(in, true)
		return res, v, p.fail(v, o, guestErrorKind(res.Status), uint32(res.Status), msg)
	}
	if len(res.Text) > 0 {
		res.Text = append([]byte(nil), res.Text...) // guest memory is reused by the next call
	}
	v.put(in, true)
	p.succeed(v)
	return res, v, nil
}

// acquire references the current version, retrying if a reload retired it
// between the load and the reference.
func (p *Plugin) acquire() *version {
	for !p.closed.Load() {
		v := p.cur.Load()
		if v.ref() {
			return v
		}
	}
	return nil
}

// allowCall is the health gate: an unhealthy plugin gets one trial call
// per UnhealthyRetryAfter.
func (p *Plugin) allowCall(v *version) bool {
	if p.unhealthyAt.Load() == 0 {
		return true
	}
	now := time.Now().UnixNano()
	last := p.lastTrial.Load()
	return now-last >= int64(v.limits.UnhealthyRetryAfter) && p.lastTrial.CompareAndSwap(last, now)
}

func (p *Plugin) succeed(v *version) {
	if p.failures.Load() != 0 {
		p.failures.Store(0)
	}
	if p.unhealthyAt.Load() != 0 && p.unhealthyAt.Swap(0) != 0 {
		v.logger.Info("plugin healthy again")
	}
}

// fail records a failed call and builds its error.
func (p *Plugin) fail(v *version, o op, kind error, code uint32, msg string) error {
	if kind == ErrUnsupported {
		p.unsupported.Add(1)
	} else {
		p.errors[errKindIndex(kind)].Add(1)
	}
	e := &CallError{Plugin: v.name, Digest: v.hexDigest, Op: o.String(), Code: code, Message: msg, Err: kind}
	if !countsAsFailure(kind) {
		return e
	}
	s := e.Error()
	p.lastErr.Store(&s)
	n := p.failures.Add(1)
	if n >= int64(v.limits.FailuresBeforeUnhealthy) && p.unhealthyAt.Load() == 0 {
		now := time.Now().UnixNano()
		if p.unhealthyAt.CompareAndSwap(0, now) {
			p.lastTrial.Store(now)
			v.logger.Warn("plugin marked unhealthy", "consecutive_failures", n, "last_error", s)
		}
	}
	return e
}

// guestErrorKind classifies a guest's error code: declining the call and
// refusing the caller's params are answers, not plugin failures.
func guestErrorKind(code abi.Code) error {
	switch code {
	case abi.CodeUnsupported:
		return ErrUnsupported
	case abi.CodeBadParams:
		return ErrInvalidParams
	}
	return ErrGuestError
}

// countsAsFailure: the caller's own problems (invalid params, too-large
// input, giving up) and a plugin declining a tool do not make a plugin
// unhealthy: one tenant's bad input must not switch a shared plugin off.
func countsAsFailure(kind error) bool {
	switch {
	case kind == ErrInputTooLarge, kind == ErrUnhealthy, kind == ErrWrongKind,
		kind == ErrUnsupported, kind == ErrInvalidParams,
		errors.Is(kind, context.Canceled), errors.Is(kind, context.DeadlineExceeded):
		return false
	}
	return true
}

// LastError is the last failure that counted against health ("" if none).
func (p *Plugin) LastError() string {
	if s := p.lastErr.Load(); s != nil {
		return *s
	}
	return ""
}

// Health is a plugin's health.
type Health struct {
	Healthy             bool
	ConsecutiveFailures int
	UnhealthySince      time.Time // zero when healthy
	LastError           string
}

// Health reports whether calls are served and why not.
func (p *Plugin) Health() Health {
	h := Health{Healthy: p.unhealthyAt.Load() == 0, ConsecutiveFailures: int(p.failures.Load()), LastError: p.LastError()}
	if t := p.unhealthyAt.Load(); t != 0 {
		h.UnhealthySince = time.Unix(0, t)
	}
	return h
}

// resetHealth forgets failures (after a reload).
func (p *Plugin) resetHealth() {
	p.failures.Store(0)
	p.unhealthyAt.Store(0)
}

// Stats are a plugin's counters since it was loaded.
type Stats struct {
	Calls uint64
	// Errors counts failed calls by ErrorKind, only non-zero entries;
	// "invalid_params" (the caller's mistake) is among them but never
	// counts toward health.
	Errors map[string]uint64
	// Unsupported counts calls the plugin declined (code unsupported):
	// answers, not errors.
	Unsupported uint64
	Instances   int // live instances of the current version
	// InstancesCreated counts instances ever created (the first one at
	// load plus replacements of discarded ones and pool growth).
	InstancesCreated uint64
}

// Stats returns the counters.
func (p *Plugin) Stats() Stats {
	s := Stats{Calls: p.calls.Load(), Errors: map[string]uint64{}, Unsupported: p.unsupported.Load(), InstancesCreated: p.created.Load()}
	for i := range p.errors {
		if n := p.errors[i].Load(); n != 0 {
			s.Errors[errKindNames[i]] = n
		}
	}
	if v := p.cur.Load(); v != nil {
		s.Instances = int(v.live.Load())
	}
	return s
}

// swap installs a new version; the old one closes when its calls drain.
func (p *Plugin) swap(v *version) {
	v.owner = p
	p.created.Add(1) // the smoke-test instance
	old := p.cur.Swap(v)
	p.resetHealth()
	if old != nil && old != v {
		old.unref()
	}
}

// Close stops serving; in-flight calls finish first.
func (p *Plugin) Close() {
	if p.closed.Swap(true) {
		return
	}
	if v := p.cur.Load(); v != nil {
		v.unref()
	}
}

func (h *Host) observing() bool { return h.observe }

func isNop(o Observer) bool {
	_, nop := o.(NopObserver)
	return nop
}

const numErrKinds = 15

var errKindNames = [numErrKinds]string{"other", "timeout", "trap", "guest_error", "output_too_large", "bad_output",
	"input_too_large", "unhealthy", "closed", "wrong_kind", "init", "canceled", "fuel_exhausted", "invalid_params", "unsupported"}

func errKindIndex(err error) int {
	switch {
	case errors.Is(err, ErrTimeout):
		return 1
	case errors.Is(err, ErrTrap):
		return 2
	case errors.Is(err, ErrGuestError):
		return 3
	case errors.Is(err, ErrOutputTooLarge):
		return 4
	case errors.Is(err, ErrBadOutput):
		return 5
	case errors.Is(err, ErrInputTooLarge):
		return 6
	case errors.Is(err, ErrUnhealthy):
		return 7
	case errors.Is(err, ErrClosed):
		return 8
	case errors.Is(err, ErrWrongKind):
		return 9
	case errors.Is(err, ErrInit):
		return 10
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 11
	case errors.Is(err, ErrFuelExhausted):
		return 12
	case errors.Is(err, ErrInvalidParams):
		return 13
	case errors.Is(err, ErrUnsupported):
		return 14
	}
	return 0
}

// ErrorKind names an error for metrics labels: for calls "timeout",
// "trap", "guest_error", "output_too_large", "bad_output",
// "input_too_large", "unhealthy", "closed", "wrong_kind", "init",
// "canceled", "fuel_exhausted", "invalid_params" (the caller's params,
// never a guest error), "unsupported" (never passed to
// Observer.ObserveCall as an error); for loads also "abi_version",
// "missing_export", "bad_signature", "unknown_import", "bad_manifest",
// "digest_mismatch", "invalid_module", "not_meterable", "read"; else
// "other"; "" for nil.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	if i := errKindIndex(err); i != 0 {
		return errKindNames[i]
	}
	for _, k := range loadKinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

// loadKinds name load refusals for ObserveReload.
var loadKinds = []struct {
	err  error
	name string
}{
	{ErrABIVersion, "abi_version"}, {ErrMissingExport, "missing_export"}, {ErrBadSignature, "bad_signature"},
	{ErrUnknownImport, "unknown_import"}, {ErrBadManifest, "bad_manifest"}, {ErrDigestMismatch, "digest_mismatch"},
	{ErrInvalidModule, "invalid_module"}, {ErrNotMeterable, "not_meterable"}, {ErrRead, "read"},
}

func itoa(n int) string { return formatInt(int64(n)) }

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
