package host

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
	isolation  Isolation
	limiter    *logLimiter // the plugin's log line bucket (by name)

	owner *Plugin      // for counters; nil while a load is being smoke-tested
	refs  atomic.Int64 // 1 for the owner (Plugin) + 1 per call in flight
	live  atomic.Int64 // live instances
	pool  *pool
}

func newVersion(h *Host, spec *Spec, ce *compiledEntry, digest [32]byte, hexDigest string, limits Limits, rk rtKey) *version {
	v := &version{h: h, compiled: ce, digest: digest, hexDigest: hexDigest, limits: limits, rt: rk,
		pool: newPool(limits.InstancesMax, poolSize(limits, spec.Isolation)), loadedAt: time.Now(), isolation: spec.Isolation}
	v.refs.Store(1)
	v.setName(spec.provisionalName())
	return v
}

func (v *version) setName(name string) {
	v.name = name
	v.label = "plugin:" + name + "@" + v.hexDigest[:12]
	v.logger = v.h.cfg.Logger.ResetNamed("purser.host." + name)
	v.limiter = v.h.logLimiter(name)
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

// get takes an idle instance that may serve tenant or creates one,
// waiting (at most PoolWaitMax) for a free slot. An idle instance of
// another tenant taken from a full pool is replaced by a fresh one.
func (v *version) get(ctx context.Context, tenant string) (*instance, error) {
	in, usable, create, slot, err := v.pool.get(ctx, tenant, v.limits.PoolWaitMax)
	if err != nil || usable {
		return in, err
	}
	if !create {
		in.close() // its slot stays reserved for the replacement
	}
	in, err = v.newInstance(ctx)
	if err != nil {
		v.pool.release(slot)
		return nil, err
	}
	v.pool.home(slot, in)
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
		v.pool.release(in.slot)
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
	lastErr     atomic.Pointer[failure]

	// Quarantine of an unhealthy plugin; read and written under healthMu
	// (the healthy fast path reads only unhealthyAt).
	healthMu  sync.Mutex
	nextTrial time.Time     // when the next trial call may run
	backoff   time.Duration // the wait after the current trial fails (doubled each time)

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
	r, v, trial, err := p.runOnce(ctx, o, est, adm, size, &info)
	if trial && err != nil && countsAsFailure(errors.Unwrap(err)) {
		p.trialFailed(v)
	}
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

func (p *Plugin) runOnce(ctx context.Context, o op, est *abi.EstimateRequest, adm *abi.AdmitRequest, size int, info *CallInfo) (res abi.Result, _ *version, trial bool, _ error) {
	v := p.acquire()
	if v == nil {
		return res, nil, false, &CallError{Plugin: p.spec.provisionalName(), Op: o.String(), Err: ErrClosed}
	}
	defer v.unref()
	want, account := abi.KindEstimator, ""
	if o == opAdmit {
		want, account = abi.KindPolicy, adm.Account
	} else {
		account = est.Account
	}
	if v.manifest.Kind != want {
		return res, v, false, p.fail(v, o, ErrWrongKind, 0, "plugin kind is "+string(v.manifest.Kind))
	}
	if size > v.limits.InputBytesMax {
		return res, v, false, p.fail(v, o, ErrInputTooLarge, 0, "request is "+itoa(size)+" bytes, limit "+itoa(v.limits.InputBytesMax))
	}
	info.FuelLimit = v.limits.fuelFor(size) // size is bounded now: no overflow
	trial, ok := p.admitCall()              // fail fast rather than queue for an instance
	if !ok {
		return res, v, false, p.fail(v, o, ErrUnhealthy, 0, p.quarantineText())
	}
	tenant, err := p.h.tenantOf(ctx, v.isolation, account)
	if err != nil {
		// The resolver's error comes from the ledger and may name its
		// database; callers see only that the lookup failed, the log the rest.
		v.logger.Warn("tenant of a call not resolved", "account", account, "error", err)
		return res, v, trial, p.fail(v, o, ErrTenant, 0, "account "+strconv.Quote(account)+": its root account could not be looked up (details in the host log)")
	}
	in, err := v.get(ctx, tenant)
	switch {
	case err == nil:
	case errors.Is(err, errPoolWait):
		return res, v, trial, p.fail(v, o, ErrPoolWait, 0, "no instance was free within limits.pool_wait_max "+v.limits.PoolWaitMax.String())
	case ctx.Err() != nil:
		return res, v, trial, p.fail(v, o, ctx.Err(), 0, "waiting for an instance")
	default:
		return res, v, trial, p.fail(v, o, ErrInit, 0, "creating an instance: "+firstLine(err.Error()))
	}
	// Health again: the plugin may have been quarantined while we waited
	// (a trial call goes ahead).
	if !trial && p.unhealthyAt.Load() != 0 {
		v.put(in, true)
		return res, v, false, p.fail(v, o, ErrUnhealthy, 0, p.quarantineText())
	}
	in.claim(tenant)
	res, err = p.invoke(ctx, v, in, o, est, adm, size, info)
	return res, v, trial, err
}

// invoke runs one call on in, which it returns to the pool or discards.
func (p *Plugin) invoke(ctx context.Context, v *version, in *instance, o op, est *abi.EstimateRequest, adm *abi.AdmitRequest, size int, info *CallInfo) (res abi.Result, err error) {
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
			v.logger.Debug("guest trapped", "op", o.String(), "error", safeText([]byte(err.Error()), v.limits.LogLineBytesMax))
		}
		return res, p.fail(v, o, kind, 0, msg)
	}
	p.h.stop.end(in, cctx)
	if res.Status != abi.CodeOK {
		msg := string(res.Text) // fail makes it safe
		v.put(in, true)
		return res, p.fail(v, o, guestErrorKind(res.Status), uint32(res.Status), msg)
	}
	if len(res.Text) > 0 {
		// A copy (guest memory is reused by the next call), made safe for
		// the caller and the decision log: one line, bounded.
		res.Text = safeBytes(res.Text, v.limits.ReasonBytesMax)
	}
	v.put(in, true)
	p.succeed(v)
	return res, nil
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

// admitCall is the health gate before a call waits for an instance: a
// quarantined plugin gets one trial call when it is due (trial reports
// it; the next one is due only after the back-off, whatever happens to
// this one). runOnce checks health again once it holds an instance.
func (p *Plugin) admitCall() (trial, ok bool) {
	if p.unhealthyAt.Load() == 0 {
		return false, true
	}
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	if p.unhealthyAt.Load() == 0 {
		return false, true
	}
	now := p.h.now()
	if now.Before(p.nextTrial) {
		return false, false
	}
	p.nextTrial = now.Add(p.backoff) // no other trial while this one runs
	return true, true
}

// trialFailed doubles the quarantine, up to QuarantineMax.
func (p *Plugin) trialFailed(v *version) {
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	if p.unhealthyAt.Load() == 0 {
		return
	}
	p.backoff = min(2*p.backoff, max(v.limits.QuarantineMax, v.limits.UnhealthyRetryAfter))
	p.nextTrial = p.h.now().Add(p.backoff)
	v.logger.Warn("plugin trial call failed; quarantine extended", "next_trial_in", p.backoff.String())
}

// quarantineText says why a call was not run. It names the last failure's
// kind, never its text, which may carry another tenant's data.
func (p *Plugin) quarantineText() string {
	p.healthMu.Lock()
	next := p.nextTrial
	p.healthMu.Unlock()
	last := "unknown"
	if f := p.lastErr.Load(); f != nil {
		last = f.kind
	}
	return "quarantined after " + itoa(int(p.failures.Load())) + " consecutive failures (last: " + last +
		"); next trial call at " + next.UTC().Format(time.RFC3339)
}

func (p *Plugin) succeed(v *version) {
	if p.failures.Load() != 0 {
		p.failures.Store(0)
	}
	if p.unhealthyAt.Load() != 0 && p.unhealthyAt.Swap(0) != 0 {
		v.logger.Info("plugin healthy again")
	}
}

// failure is the last call failure that counted against health.
type failure struct {
	text string // the error without a guest's message (Health, /v1/plugins)
	kind string // ErrorKind, all a caller of another call may learn
}

// fail records a failed call and builds its error; msg (guest text
// included) is made safe and bounded first.
func (p *Plugin) fail(v *version, o op, kind error, code uint32, msg string) error {
	if kind == ErrUnsupported {
		p.unsupported.Add(1)
	} else {
		p.errors[errKindIndex(kind)].Add(1)
	}
	e := &CallError{Plugin: v.name, Digest: v.hexDigest, Op: o.String(), Code: code, Message: safeText([]byte(msg), v.limits.ReasonBytesMax), Err: kind}
	if !countsAsFailure(kind) {
		return e
	}
	s := e.Error()
	pub := *e
	if kind == ErrGuestError {
		pub.Message = "" // the guest's words may quote its caller; LastError is shown to every agent
	}
	p.lastErr.Store(&failure{text: pub.Error(), kind: ErrorKind(kind)})
	if n := p.failures.Add(1); n >= int64(v.limits.FailuresBeforeUnhealthy) && p.unhealthyAt.Load() == 0 {
		p.quarantine(v, n, s)
	}
	return e
}

// quarantine marks the plugin unhealthy; the first trial call comes
// UnhealthyRetryAfter later.
func (p *Plugin) quarantine(v *version, n int64, last string) {
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	now := p.h.now()
	if !p.unhealthyAt.CompareAndSwap(0, now.UnixNano()) {
		return
	}
	p.backoff = v.limits.UnhealthyRetryAfter
	p.nextTrial = now.Add(p.backoff)
	v.logger.Warn("plugin marked unhealthy", "consecutive_failures", n, "last_error", last, "next_trial_in", p.backoff.String())
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
// input, giving up), a plugin declining a tool and load (a full pool, an
// unknown tenant) do not make a plugin unhealthy: one tenant's bad input
// must not switch a shared plugin off, and the calls that keep the pool
// busy count on their own if they fail.
func countsAsFailure(kind error) bool {
	switch {
	case kind == ErrInputTooLarge, kind == ErrUnhealthy, kind == ErrWrongKind,
		kind == ErrUnsupported, kind == ErrInvalidParams, kind == ErrPoolWait, kind == ErrTenant,
		errors.Is(kind, context.Canceled), errors.Is(kind, context.DeadlineExceeded):
		return false
	}
	return true
}

// LastError is the last failure that counted against health ("" if none).
// It never carries a guest's own message (code and kind only), which may
// quote the request of the tenant that got it: GET /v1/plugins shows it
// to every agent. The call's own error (its caller's) has the message.
func (p *Plugin) LastError() string {
	if f := p.lastErr.Load(); f != nil {
		return f.text
	}
	return ""
}

// Health is a plugin's health.
type Health struct {
	Healthy             bool
	ConsecutiveFailures int
	UnhealthySince      time.Time // zero when healthy
	// NextTrial is when a quarantined plugin gets its next trial call,
	// and Backoff the quarantine it will get if that trial fails; zero
	// when healthy.
	NextTrial time.Time
	Backoff   time.Duration
	LastError string
}

// Health reports whether calls are served and why not.
func (p *Plugin) Health() Health {
	h := Health{Healthy: p.unhealthyAt.Load() == 0, ConsecutiveFailures: int(p.failures.Load()), LastError: p.LastError()}
	if t := p.unhealthyAt.Load(); t != 0 {
		h.UnhealthySince = time.Unix(0, t)
		p.healthMu.Lock()
		h.NextTrial, h.Backoff = p.nextTrial, p.backoff
		p.healthMu.Unlock()
	}
	return h
}

// resetHealth forgets failures and ends a quarantine (after a reload).
func (p *Plugin) resetHealth() {
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	p.failures.Store(0)
	p.unhealthyAt.Store(0)
	p.nextTrial, p.backoff = time.Time{}, 0
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
	// load plus replacements of discarded ones, pool growth and, with
	// IsolationTenant, fresh instances for a tenant switch).
	InstancesCreated uint64
	// LogLinesDropped counts guest log lines dropped by the plugin's line
	// rate (LogLinesPerSecond), across reloads.
	LogLinesDropped uint64
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
		s.LogLinesDropped = v.limiter.Dropped()
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

const numErrKinds = 17

var errKindNames = [numErrKinds]string{"other", "timeout", "trap", "guest_error", "output_too_large", "bad_output",
	"input_too_large", "unhealthy", "closed", "wrong_kind", "init", "canceled", "fuel_exhausted", "invalid_params", "unsupported",
	"pool_wait", "tenant"}

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
	case errors.Is(err, ErrPoolWait):
		return 15
	case errors.Is(err, ErrTenant):
		return 16
	}
	return 0
}

// ErrorKind names an error for metrics labels: for calls "timeout",
// "trap", "guest_error", "output_too_large", "bad_output",
// "input_too_large", "unhealthy", "closed", "wrong_kind", "init",
// "canceled", "fuel_exhausted", "invalid_params" (the caller's params,
// never a guest error), "unsupported" (never passed to
// Observer.ObserveCall as an error), "pool_wait" (no instance free within
// PoolWaitMax), "tenant" (the tenant resolver failed); for loads also "abi_version",
// "missing_export", "bad_signature", "unknown_import", "bad_manifest",
// "digest_mismatch", "invalid_module", "not_meterable", "read",
// "module_limit", "manifest_changed"; else
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
	{ErrModuleLimit, "module_limit"}, {ErrManifestChanged, "manifest_changed"},
}

func itoa(n int) string { return formatInt(int64(n)) }

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
