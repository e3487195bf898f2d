package enforcer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// RunFunc runs the tool once admitted.
type RunFunc func(ctx context.Context) (any, error)

// CostReporter is implemented by tool results that know what they cost.
type CostReporter interface {
	// ActualCost returns the real cost and whether it is known.
	ActualCost() (Nanos, bool)
}

// Result is what Execute returns: the tool's value when it ran, and the
// decision and reservation either way.
type Result struct {
	Value       any
	Decision    Decision
	Reservation Reservation
	Cached      bool
}

// ExecOption tunes one Execute call.
type ExecOption func(*execOptions)

type execOptions struct {
	reserve ReserveOptions
	cache   *ResultCache
	actual  func(any) (Nanos, bool)
}

// WithReservationID makes the hold idempotent under the caller's id.
func WithReservationID(id string) ExecOption { return func(o *execOptions) { o.reserve.ID = id } }

// WithTTL sets how long the hold lives if the tool never finishes.
func WithTTL(ttl time.Duration) ExecOption { return func(o *execOptions) { o.reserve.TTL = ttl } }

// WithCache returns cached results for identical (tool, params) calls.
func WithCache(c *ResultCache) ExecOption { return func(o *execOptions) { o.cache = c } }

// WithCostExtractor reads the actual cost from the tool's value; it
// replaces the CostReporter check.
func WithCostExtractor(f func(any) (Nanos, bool)) ExecOption {
	return func(o *execOptions) { o.actual = f }
}

func reportedCost(v any) (Nanos, bool) {
	if cr, ok := v.(CostReporter); ok {
		return cr.ActualCost()
	}
	return 0, false
}

// Execute estimates, admits, reserves, runs the tool, and settles: commit
// with the actual cost the result reports (the estimate when it reports
// none), or release when run fails at no reported cost. A deny is returned
// in Result.Decision with a nil error; errors are operating failures or the
// tool's own error. Under WithReservationID the tool runs at most once per
// id: a retry while the first attempt is pending wraps
// ErrReservationInProgress, after it settled ErrReservationSettled.
func (e *Enforcer) Execute(ctx context.Context, account, tool string, params map[string]any, run RunFunc, opts ...ExecOption) (Result, error) {
	// The options escape to the heap (options are closures) and the
	// tool's context carries a Hold: one allocation for both.
	st := &execState{o: execOptions{actual: reportedCost}}
	o := &st.o
	for _, opt := range opts {
		opt(o)
	}
	call := Call{Account: account, Tool: tool, Params: params}
	if id := o.reserve.ID; id != "" {
		if !e.inflight.claim(id) {
			return Result{}, fmt.Errorf("reservation %q: %w: another Execute with this id is running", id, ErrReservationInProgress)
		}
		defer e.inflight.done(id)
	}
	var cached any
	hit := false
	if o.cache != nil {
		cached, hit = o.cache.get(call)
	}
	hold := o.reserve.Estimate
	if hit {
		hold = &Estimate{Source: string(CostCache)}
	}
	d, r, again, err := e.reserve(ctx, call, o.reserve, hold)
	if err == nil && d.Verdict == Ask {
		d, r, again, err = e.awaitApproval(ctx, call, d, o.reserve, hold)
	}
	switch {
	case err != nil || d.Verdict != Allow:
		return Result{Decision: d}, err
	case again && r.State == StatePending:
		return Result{Decision: d, Reservation: r}, fmt.Errorf("reservation %q: %w: its first attempt has not settled", r.ID, ErrReservationInProgress)
	case again:
		return Result{Decision: d, Reservation: r}, fmt.Errorf("reservation %q is %s: %w", r.ID, r.State, ErrReservationSettled)
	case hit:
		return e.settleCached(ctx, call, d, r, cached)
	}
	value, err := e.run(st.withHold(ctx, e, r.ID), call, r, run)
	if err != nil {
		return e.settleFailed(ctx, call, d, r, value, err, o.actual)
	}
	res, err := e.settle(ctx, call, d, r, value, o.actual)
	if err == nil && o.cache != nil {
		o.cache.put(call, value)
	}
	return res, err
}

// detached keeps ctx's values but not its cancellation, so settlement is
// recorded even when the caller gave up; a context that can never be
// cancelled is used as is (no allocation on the hot path).
func detached(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// run calls the tool; a panic releases the hold (and panics on), an error
// returns the tool's value too, for settleFailed to read a cost from.
func (e *Enforcer) run(ctx context.Context, call Call, r Reservation, run RunFunc) (value any, err error) {
	returned := false
	defer func() {
		if returned {
			return
		}
		if _, relErr := e.ledger.Release(detached(ctx), r.ID); relErr != nil {
			e.logger.Error("release after a panicking tool", "reservation", r.ID, "error", relErr)
		}
	}()
	value, err = run(ctx)
	returned = true
	if err != nil {
		return value, fmt.Errorf("tool %s on account %q: %w", call.Tool, call.Account, err)
	}
	return value, nil
}

// settleFailed settles a tool that returned an error: at the cost it
// reports having spent already (a paid API call that then failed), else
// released at no cost. The tool's error is returned either way.
func (e *Enforcer) settleFailed(ctx context.Context, call Call, d Decision, r Reservation, value any, toolErr error, actualOf func(any) (Nanos, bool)) (Result, error) {
	if value != nil { // an extractor need not expect a nil value
		if _, ok := actualOf(value); ok {
			res, err := e.settle(ctx, call, d, r, value, actualOf)
			return res, errors.Join(toolErr, err)
		}
	}
	rel, err := e.ledger.Release(detached(ctx), r.ID)
	if err != nil {
		e.logger.Error("release after failed tool", "reservation", r.ID, "error", err)
		return Result{Value: value, Decision: d, Reservation: r}, toolErr
	}
	return Result{Value: value, Decision: d, Reservation: rel}, toolErr
}

func (e *Enforcer) settle(ctx context.Context, call Call, d Decision, r Reservation, value any, actualOf func(any) (Nanos, bool)) (Result, error) {
	var actual *Nanos
	src := CostEstimated
	var badCost error
	if n, ok := actualOf(value); ok && n >= 0 {
		actual, src = &n, CostActual
	} else if ok {
		// Charge the estimate rather than leave the hold pending.
		badCost = fmt.Errorf("tool %s reported a negative cost %d nano-USD; the hold (estimate + extended) was charged", call.Tool, n)
	}
	// The money is spent even if the caller gave up: settle regardless.
	// Through e.Commit, so calibration learns from it; without a reported
	// cost the whole hold (extensions included) is charged.
	cr, err := e.Commit(detached(ctx), CommitRequest{ID: r.ID, Actual: actual, Source: src})
	if err != nil {
		return Result{Value: value, Decision: d, Reservation: r}, fmt.Errorf("commit %s: %w", r.ID, err)
	}
	e.logCost(ctx, call, d.Estimate, cr)
	return Result{Value: value, Decision: d, Reservation: cr}, badCost
}

// settleCached commits a cache hit at 0 with cost_source "cache".
func (e *Enforcer) settleCached(ctx context.Context, call Call, d Decision, r Reservation, value any) (Result, error) {
	zero := Nanos(0)
	cr, err := e.ledger.Commit(detached(ctx), r.ID, &zero, CostCache)
	if err != nil {
		return Result{Decision: d, Reservation: r}, fmt.Errorf("commit cached %s: %w", r.ID, err)
	}
	e.logCost(ctx, call, d.Estimate, cr)
	return Result{Value: value, Decision: d, Reservation: cr, Cached: true}, nil
}

// awaitApproval asks the Approver (or waits on the queue), then admits
// again: the budget may have changed while a human thought about it.
func (e *Enforcer) awaitApproval(ctx context.Context, call Call, d Decision, ro ReserveOptions, hold *Estimate) (Decision, Reservation, bool, error) {
	req, err := e.decideApproval(ctx, d.ApprovalID)
	if err != nil {
		return d, Reservation{}, false, err
	}
	if req.State != ApprovalApproved {
		d.Verdict, d.Layer = Deny, LayerApproval
		d.Reason = fmt.Sprintf("approval %s %s: %s", req.ID, req.State, d.Reason)
		return d, Reservation{}, false, nil
	}
	ro.ApprovalID = req.ID
	return e.reserve(ctx, call, ro, hold)
}

func (e *Enforcer) decideApproval(ctx context.Context, id string) (ApprovalRequest, error) {
	if e.cfg.Approver == nil {
		return e.approvals.Wait(ctx, id, e.cfg.ApprovalPoll)
	}
	req, err := e.approvals.Get(id)
	if err != nil {
		return req, err
	}
	ok, note, aerr := e.cfg.Approver.Approve(ctx, req)
	if aerr != nil {
		ok, note = false, "approver failed (fail-closed): "+aerr.Error()
	}
	if ok {
		req, err = e.approvals.Approve(id, note)
	} else {
		req, err = e.approvals.Deny(id, note)
	}
	if errors.Is(err, ErrApprovalDecided) {
		err = nil // someone else decided first; req holds their decision
	}
	return req, err
}

func (e *Enforcer) logCost(ctx context.Context, call Call, est Estimate, r Reservation) {
	lvl := e.cfg.CostLogLevel
	if !logEnabled(e.logger, lvl) {
		return
	}
	args := []any{"tool", call.Tool, "account", call.Account, "estimate_usd", est.Nanos.Decimal(),
		"actual_usd", r.Charged.Decimal(), "source", est.Source, "cost_source", string(r.CostSource)}
	if snap, err := e.ledger.Snapshot(ctx, call.Account); err == nil {
		args = append(args, "account_total_usd", snap.Committed.Decimal())
	}
	if r.Late {
		args = append(args, "late", true)
	}
	e.logger.Log(lvl, "operation cost", args...)
}

// logEnabled asks the logger itself (a null logger reports no level but
// logs nothing), so the hot path skips building the cost line.
func logEnabled(l hclog.Logger, lvl hclog.Level) bool {
	switch lvl {
	case hclog.Trace:
		return l.IsTrace()
	case hclog.Debug:
		return l.IsDebug()
	case hclog.Info:
		return l.IsInfo()
	case hclog.Warn:
		return l.IsWarn()
	default:
		return l.IsError()
	}
}

// Hold is the reservation a tool run by Execute runs under; the tool
// finds it with HoldFrom and may grow it while it runs (a streaming LLM
// call whose output passes the estimate), so an under-estimate is held
// rather than overrun. Safe for concurrent use.
type Hold struct {
	e  *Enforcer
	id string
	mu sync.Mutex
	n  int // extensions granted so far: the next one's number
}

// holdCtx carries a Hold to the tool (a context value and a separate
// Hold would be two allocations).
type holdCtx struct {
	context.Context
	h Hold
}

// execState is what one Execute call keeps on the heap.
type execState struct {
	o  execOptions
	hc holdCtx
}

type holdKey struct{}

func (c *holdCtx) Value(key any) any {
	if key == (holdKey{}) {
		return &c.h
	}
	return c.Context.Value(key)
}

// withHold returns ctx carrying the hold of reservation id.
func (st *execState) withHold(ctx context.Context, e *Enforcer, id string) context.Context {
	st.hc.Context, st.hc.h.e, st.hc.h.id = ctx, e, id
	return &st.hc
}

// HoldFrom returns the hold of the Execute call whose tool ctx was given
// to (false outside one).
func HoldFrom(ctx context.Context) (*Hold, bool) {
	h, ok := ctx.Value(holdKey{}).(*Hold)
	return h, ok
}

// ID is the reservation's id.
func (h *Hold) ID() string { return h.id }

// Extend grows the hold by add on its account and every ancestor (see
// Enforcer.Extend). A denied extension returns the budget deny (errors.Is
// ErrInsufficientBudget, an *InsufficientBudgetError saying what remains)
// or the policy deny (errors.Is ErrPolicyDenied, a *PolicyDeniedError)
// and changes nothing: the tool should stop there. An extension that was
// granted before the hold settled wraps ErrReservationSettled. Extension ids are
// "<id>/x<n>", n counting granted extensions, so an extension retried
// after a lost reply is applied once; a commit without a reported cost
// charges the whole hold.
func (h *Hold) Extend(ctx context.Context, add Nanos) (Reservation, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, err := h.e.Extend(ctx, ExtendRequest{ID: h.id, ExtensionID: extensionID(h.id, h.n), Add: add})
	if errors.Is(err, ErrReservationConflict) {
		// Extension n was granted with another amount and its reply lost
		// (the caller then asked for a different one): it stays held, and
		// this one takes the next number.
		h.n++
		r, err = h.e.Extend(ctx, ExtendRequest{ID: h.id, ExtensionID: extensionID(h.id, h.n), Add: add})
	}
	if err == nil {
		h.n++
	}
	if err == nil && r.State != StatePending {
		// A retry answered after the hold settled: it holds nothing now.
		return r, fmt.Errorf("extend %q: %w: the extension was applied earlier and the reservation is now %s", h.id, ErrReservationSettled, r.State)
	}
	return r, err
}

// extensionID names the n-th extension of reservation id; an id too long
// to prefix leaves "x<n>", which is as unique within one reservation.
func extensionID(id string, n int) string {
	x := "x" + strconv.Itoa(n)
	if len(id)+1+len(x) > MaxExtensionIDLen {
		return x
	}
	return id + "/" + x
}
