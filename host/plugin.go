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
	sig        sigState    // signature check (signature.go)

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
	var c callOut
	if err := p.run(ctx, opEstimate, &req, nil, req.EncodedSize(), &c); err != nil {
		return abi.EstimateResult{}, c.info, err
	}
	res, err := c.res.Estimate()
	if err != nil {
		return res, c.info, p.fail(c.v, opEstimate, ErrBadOutput, 0, err.Error())
	}
	return res, c.info, nil
}

// Admit asks a policy plugin for a verdict.
func (p *Plugin) Admit(ctx context.Context, req abi.AdmitRequest) (abi.AdmitResult, CallInfo, error) {
	var c callOut
	if err := p.run(ctx, opAdmit, nil, &req, req.EncodedSize(), &c); err != nil {
		return abi.AdmitResult{}, c.info, err
	}
	res, err := c.res.Admit()
	if err != nil {
		return res, c.info, p.fail(c.v, opAdmit, ErrBadOutput, 0, err.Error())
	}
	return res, c.info, nil
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

// callOut is what run fills in: written in place, not copied back
// through return values.
type callOut struct {
	res   abi.Result
	v     *version // the version that answered; nil when the plugin is closed
	info  CallInfo
	trial bool      // a quarantined plugin's trial call
	start time.Time // set only with an Observer
}

// run performs one call on the current version: health gate, tenant,
// pool, limits, the call, classification of failures, health and stats
// bookkeeping. It is one frame on purpose: on a ~160 ns policy call every
// extra frame and copied result shows (BENCHMARKS.md, "Isolation"). Work
// only a failing or quarantined call needs is in the helpers called on
// those paths; every return goes through end.
func (p *Plugin) run(ctx context.Context, o op, est *abi.EstimateRequest, adm *abi.AdmitRequest, size int, c *callOut) error {
	if p.h.observing() {
		c.start = time.Now()
	}
	v := p.acquire()
	if v == nil {
		return p.end(o, c, &CallError{Plugin: p.spec.provisionalName(), Op: o.String(), Err: ErrClosed})
	}
	defer v.unref()
	c.v = v
	want, account := abi.KindEstimator, ""
	if o == opAdmit {
		want, account = abi.KindPolicy, adm.Account
	} else {
		account = est.Account
	}
	if v.manifest.Kind != want {
		return p.end(o, c, p.fail(v, o, ErrWrongKind, 0, "plugin kind is "+string(v.manifest.Kind)))
	}
	if size > v.limits.InputBytesMax {
		return p.end(o, c, p.fail(v, o, ErrInputTooLarge, 0, "request is "+itoa(size)+" bytes, limit "+itoa(v.limits.InputBytesMax)))
	}
	c.info.FuelLimit = v.limits.fuelFor(size) // size is bounded now: no overflow
	if p.unhealthyAt.Load() != 0 {
		// Quarantined: fail fast rather than queue for an instance,
		// unless this is the trial call.
		var ok bool
		if c.trial, ok = p.admitTrial(); !ok {
			return p.end(o, c, p.fail(v, o, ErrUnhealthy, 0, p.quarantineText()))
		}
	}
	tenant := ""
	if v.isolation != IsolationShared {
		var err error
		if tenant, err = p.h.tenantOf(ctx, v.isolation, account); err != nil {
			return p.end(o, c, p.tenantFailed(v, o, account, err))
		}
	}
	in, err := v.get(ctx, tenant)
	if err != nil {
		return p.end(o, c, p.getFailed(ctx, v, o, err))
	}
	// Health again: the plugin may have been quarantined while we waited
	// (a trial call goes ahead).
	if !c.trial && p.unhealthyAt.Load() != 0 {
		v.put(in, true)
		return p.end(o, c, p.fail(v, o, ErrUnhealthy, 0, p.quarantineText()))
	}
	in.claim(tenant)
	if est != nil {
		in.scratch = abi.AppendEstimateRequest(in.scratch[:0], est)
	} else {
		in.scratch = abi.AppendAdmitRequest(in.scratch[:0], adm)
	}
	cctx := p.h.stop.begin(ctx, in, v.limits.CallTimeout)
	in.sink.reset()
	c.res, err = in.invoke(cctx, in.call, in.scratch, c.info.FuelLimit)
	c.info.Fuel = in.fuelUsed()
	if err == nil && c.info.Fuel > c.info.FuelLimit {
		// The guest tests its fuel only at loop headers and function
		// entries, so it can finish a loop-free stretch past the budget;
		// the budget holds all the same.
		err = ErrFuelExhausted
	}
	in.flushLogs()
	if err != nil {
		return p.end(o, c, p.callFailed(ctx, cctx, v, in, o, size, c, err))
	}
	p.h.stop.end(in, cctx)
	if c.res.Status != abi.CodeOK {
		msg := string(c.res.Text) // fail makes it safe
		v.put(in, true)
		return p.end(o, c, p.fail(v, o, guestErrorKind(c.res.Status), uint32(c.res.Status), msg))
	}
	if len(c.res.Text) > 0 {
		// A copy (guest memory is reused by the next call), made safe for
		// the caller and the decision log: one line, bounded.
		c.res.Text = safeBytes(c.res.Text, v.limits.ReasonBytesMax)
	}
	v.put(in, true)
	if p.failures.Load() != 0 || p.unhealthyAt.Load() != 0 {
		p.succeed(v)
	}
	return p.end(o, c, nil)
}

// end is run's common exit: a failed trial extends the quarantine, and
// the call is counted, labelled and observed.
func (p *Plugin) end(o op, c *callOut, err error) error {
	if c.trial && err != nil && countsAsFailure(errors.Unwrap(err)) {
		p.trialFailed(c.v)
	}
	p.calls.Add(1)
	if c.v != nil {
		c.info.Source = c.v.label
	}
	if p.h.observing() {
		oerr := err
		if errors.Is(err, ErrUnsupported) {
			oerr = nil // the plugin answered "not mine": not an error
		}
		p.h.cfg.Observer.ObserveCall(nameOr(c.v, p.Name()), o.String(), time.Since(c.start), c.info.Fuel, oerr)
	}
	return err
}

// tenantFailed reports a failed tenant lookup. The resolver's error comes
// from the ledger and may name its database; callers see only that the
// lookup failed, the log the rest.
func (p *Plugin) tenantFailed(v *version, o op, account string, err error) error {
	v.logger.Warn("tenant of a call not resolved", "account", account, "error", err)
	return p.fail(v, o, ErrTenant, 0, "account "+strconv.Quote(account)+": its root account could not be looked up (details in the host log)")
}

// getFailed reports why no instance could be had.
func (p *Plugin) getFailed(ctx context.Context, v *version, o op, err error) error {
	switch {
	case errors.Is(err, errPoolWait):
		return p.fail(v, o, ErrPoolWait, 0, "no instance was free within limits.pool_wait_max "+v.limits.PoolWaitMax.String())
	case ctx.Err() != nil:
		return p.fail(v, o, ctx.Err(), 0, "waiting for an instance")
	}
	return p.fail(v, o, ErrInit, 0, "creating an instance: "+firstLine(err.Error()))
}

// callFailed classifies a failed guest call and discards the instance,
// whose state is unknown now.
func (p *Plugin) callFailed(ctx context.Context, cctx context.Context, v *version, in *instance, o op, size int, c *callOut, err error) error {
	msg, kind := classify(ctx, p.h.stop.stopped(in, cctx), err)
	if c.info.Fuel > c.info.FuelLimit {
		kind, msg = ErrFuelExhausted, fmt.Sprintf("used more than its %d-unit budget (limits.fuel_per_call_max %d + fuel_per_input_byte %d x %d request bytes)",
			c.info.FuelLimit, v.limits.FuelPerCallMax, max(v.limits.FuelPerInputByte, 0), size)
	}
	p.h.stop.end(in, cctx)
	v.put(in, false)
	if kind == ErrTrap {
		v.logger.Debug("guest trapped", "op", o.String(), "error", safeText([]byte(err.Error()), v.limits.LogLineBytesMax))
	}
	return p.fail(v, o, kind, 0, msg)
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

// admitTrial is the health gate of a quarantined plugin (run checks
// unhealthyAt first, so a healthy call never gets here): it gets one trial
// call when it is due (trial reports it; the next one is due only after
// the back-off, whatever happens to this one). run checks health again
// once it holds an instance.
func (p *Plugin) admitTrial() (trial, ok bool) {
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	if p.unhealthyAt.Load() == 0 {
		return false, true // healed meanwhile
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
	// LastError is shown to every agent, so it keeps only the kind: a
	// guest's words, its error code, exit code or a bad number it returned
	// could all carry bytes of its caller's request. The host log has all.
	pub := *e
	pub.Message, pub.Code = "", 0
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
