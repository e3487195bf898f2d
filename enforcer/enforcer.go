package enforcer

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config is everything an Enforcer is built from. Zero fields take the
// brief's defaults (see DefaultConfig); the value is copied by New.
type Config struct {
	Table      CostTable
	LLM        LLMRule
	Unknown    UnknownRule
	Estimators map[string]Estimator // by tool name; "*" for any tool
	Policies   []PolicySpec         // evaluated in order
	// PolicyProvider adds run-time policies after Policies (optional).
	PolicyProvider PolicyProvider

	// Approver decides asks in-process; without one, Execute queues the
	// request in Approvals and waits for someone to decide it.
	Approver            Approver
	ApprovalTTL         time.Duration // default 10 minutes
	ApprovalsPendingMax int           // default 1024
	ApprovalPoll        time.Duration // default 100ms

	ReservationTTL time.Duration // default 5 minutes
	Tiers          map[string]Nanos

	// Calibration tunes how LLM holds learn from settled spend.
	Calibration CalibrationConfig
	// CalibrationStore, when set, keeps calibration across restarts and
	// shares it between hosts through SyncCalibration.
	CalibrationStore CalibrationStore

	Clock  Clock        // default SystemClock
	Logger hclog.Logger // default a null logger
	// CostLogLevel is the level of the per-operation cost line (default Debug).
	CostLogLevel hclog.Level
}

// DefaultConfig returns the brief's defaults.
func DefaultConfig() Config {
	return Config{
		Table: DefaultCostTable(), LLM: DefaultLLMRule(), Unknown: DefaultUnknownRule(),
		ApprovalTTL: 10 * time.Minute, ApprovalsPendingMax: 1024, ApprovalPoll: 100 * time.Millisecond,
		ReservationTTL: 5 * time.Minute, Tiers: DefaultTiers(), Calibration: DefaultCalibrationConfig(),
		Clock: SystemClock{}, Logger: hclog.NewNullLogger(), CostLogLevel: hclog.Debug,
	}
}

// DefaultTiers are the example tiers: LOW $1, MEDIUM $5, HIGH $20, CRITICAL $100.
func DefaultTiers() map[string]Nanos {
	return map[string]Nanos{"LOW": USD(1, 0), "MEDIUM": USD(5, 0), "HIGH": USD(20, 0), "CRITICAL": USD(100, 0)}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Table == nil {
		c.Table = d.Table
	}
	c.LLM = c.LLM.withDefaults(d.LLM)
	c.Calibration = c.Calibration.withDefaults()
	if c.Unknown == (UnknownRule{}) {
		c.Unknown = d.Unknown
	}
	if c.ApprovalTTL <= 0 {
		c.ApprovalTTL = d.ApprovalTTL
	}
	if c.ApprovalsPendingMax <= 0 {
		c.ApprovalsPendingMax = d.ApprovalsPendingMax
	}
	if c.ApprovalPoll <= 0 {
		c.ApprovalPoll = d.ApprovalPoll
	}
	if c.ReservationTTL <= 0 {
		c.ReservationTTL = d.ReservationTTL
	}
	if c.Tiers == nil {
		c.Tiers = d.Tiers
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.CostLogLevel == hclog.NoLevel {
		c.CostLogLevel = d.CostLogLevel
	}
	return c
}

// Enforcer estimates, admits, reserves and settles tool calls against a
// Ledger. Its configuration is immutable after New; it is safe for
// concurrent use.
type Enforcer struct {
	cfg       Config
	ledger    Ledger
	chain     *estimationChain
	calib     *calibrator
	policies  []PolicySpec
	approvals *ApprovalQueue
	inflight  *inflightIDs
	logger    hclog.Logger
}

// New builds an Enforcer over ledger.
func New(ledger Ledger, cfg Config) (*Enforcer, error) {
	if ledger == nil {
		return nil, errors.New("enforcer: ledger is nil")
	}
	cfg = cfg.withDefaults()
	chain, err := newEstimationChain(cfg)
	if err != nil {
		return nil, fmt.Errorf("enforcer config: %w", err)
	}
	for i, p := range cfg.Policies {
		if p.Policy == nil {
			return nil, fmt.Errorf("enforcer config: policies[%d] is nil", i)
		}
	}
	return &Enforcer{
		cfg: cfg, ledger: ledger, chain: chain, calib: chain.calib,
		policies:  append([]PolicySpec(nil), cfg.Policies...),
		approvals: NewApprovalQueue(cfg.Clock, cfg.ApprovalTTL, cfg.ApprovalsPendingMax),
		inflight:  newInflightIDs(),
		logger:    cfg.Logger,
	}, nil
}

// Ledger returns the ledger the enforcer settles against.
func (e *Enforcer) Ledger() Ledger { return e.ledger }

// Approvals returns the queue of pending asks.
func (e *Enforcer) Approvals() *ApprovalQueue { return e.approvals }

// NewReservationID returns a fresh reservation id: 128 random bits, so
// ids cannot be guessed and squatted by another tenant. math/rand/v2's
// generator is ChaCha8 seeded from the OS, unpredictable and without the
// ~200 ns system call crypto/rand costs per id on the hot path.
func (e *Enforcer) NewReservationID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], mrand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], mrand.Uint64())
	var out [34]byte
	out[0], out[1] = 'r', '-'
	hex.Encode(out[2:], b[:])
	return string(out[:])
}

// Estimate prices a call through the estimation chain. The only errors are
// a strict-mode unknown tool (ErrStrictUnknownTool), params an estimator
// refused (ErrInvalidParams, an *InvalidParamsError) and a cancelled context.
func (e *Enforcer) Estimate(ctx context.Context, call Call) (Estimate, error) {
	return e.chain.estimate(ctx, call)
}

// Check estimates and admits a call without holding anything. Errors are
// operating failures (unknown account, ledger down); a deny is a Decision.
func (e *Enforcer) Check(ctx context.Context, call Call) (Decision, error) {
	est, err := e.chain.estimate(ctx, call)
	if err != nil {
		if d, ok := strictDeny(est, err); ok {
			return d, nil
		}
		return Decision{}, err
	}
	if d, denied, err := e.tailGuard(ctx, call, est, false); denied || err != nil {
		return d, err // as Reserve would answer a call that cannot extend its hold
	}
	return e.admit(ctx, call, est, false)
}

// ReserveOptions tune Reserve.
type ReserveOptions struct {
	ID  string        // caller-chosen, idempotent; generated when empty
	TTL time.Duration // default Config.ReservationTTL
	// ApprovalID names an approved request for this call: a policy's ask
	// then counts as allowed (the budget is still re-checked).
	ApprovalID string
	// Estimate, when set, skips the estimation chain (e.g. a cache hit).
	Estimate *Estimate
	// Extendable says the caller extends the hold while the call runs and
	// stops the call when an extension is denied (a streaming runtime).
	// An LLM call whose calibrated hold does not fit the remaining budget
	// but whose base estimate does is then held at what remains, instead
	// of being denied: the budget can be spent to its end, and never past
	// it, because the call stops where its extension is refused.
	Extendable bool
}

// Reserve estimates, admits and, when allowed, holds the estimate. When a
// policy asks, the Decision carries a new ApprovalID and nothing is held.
// A reused ID answers with the first reservation as it is now (a retry,
// never admitted again) if the call is the same (account, tool, canonical
// params, explicit estimate, requested TTL), else ErrReservationConflict.
func (e *Enforcer) Reserve(ctx context.Context, call Call, opt ReserveOptions) (Decision, Reservation, error) {
	d, r, _, err := e.reserve(ctx, call, opt, opt.Estimate)
	return d, r, err
}

// reserve is Reserve with the estimate to hold given apart from the one
// the caller asked for (a cache hit holds 0 but is fingerprinted as the
// caller's call); again reports that the id already existed.
func (e *Enforcer) reserve(ctx context.Context, call Call, opt ReserveOptions, given *Estimate) (d Decision, r Reservation, again bool, err error) {
	// Only a caller-chosen id can come back as a retry, so only then is
	// the call fingerprinted (a SHA-256 of the canonical params, two
	// allocations): a generated id keeps the hot path free of it.
	var fp string
	if opt.ID != "" {
		if fp, err = reserveFingerprint(call.Params, opt.Estimate, max(opt.TTL, 0)); err != nil {
			return Decision{}, Reservation{}, false, fmt.Errorf("reserve %s on %q: %w", call.Tool, call.Account, err)
		}
		if d, r, done, err := e.retried(ctx, call, opt.ID, fp); done || err != nil {
			return d, r, done, err
		}
	}
	est, err := e.estimateFor(ctx, call, given)
	if err != nil {
		if d, ok := strictDeny(est, err); ok {
			return d, Reservation{}, false, nil
		}
		return Decision{}, Reservation{}, false, err
	}
	if d, denied, err := e.tailGuard(ctx, call, est, opt.Extendable); denied || err != nil {
		return d, Reservation{}, false, err
	}
	d, err = e.admit(ctx, call, est, opt.ApprovalID != "")
	if trimmed, ok := trimToBudget(est, d); ok && err == nil && opt.Extendable {
		d, err = e.admit(ctx, call, trimmed, opt.ApprovalID != "")
	}
	if err != nil || d.Verdict == Deny {
		return d, Reservation{}, false, err
	}
	if d.Verdict == Ask {
		d, r, err = e.queueAsk(call, d)
		return d, r, false, err
	}
	if opt.ApprovalID == "" {
		d, r, err = e.hold(ctx, call, d, opt, fp)
	} else {
		d, r, err = e.holdApproved(ctx, call, d, opt, fp)
	}
	return d, r, false, err
}

// retried answers a reservation id that already exists with the first
// outcome (idempotent retry) instead of admitting the call again, which
// would count its own hold against it. Any difference in account, tool or
// fingerprint (params, explicit estimate, requested TTL) is a conflict: a
// retry is never admitted, so it must be the same call.
func (e *Enforcer) retried(ctx context.Context, call Call, id, fp string) (Decision, Reservation, bool, error) {
	r, err := e.ledger.Reservation(ctx, id)
	if errors.Is(err, ErrReservationNotFound) {
		return Decision{}, Reservation{}, false, nil
	}
	if err != nil {
		return Decision{}, Reservation{}, true, err
	}
	var why string
	switch {
	case r.Account != call.Account:
		why = "it was first used for another account" // whose name is not this caller's business
	case r.Tool != call.Tool:
		why = fmt.Sprintf("the tool was %q, now %q", r.Tool, call.Tool)
	case r.Fingerprint != fp:
		why = fingerprintDiff(r.Fingerprint, fp)
	default:
		d := Decision{Verdict: Allow, Reason: "retry of reservation " + id, Estimate: Estimate{Nanos: r.Estimate, Source: "retry"}}
		return d, r, true, nil
	}
	return Decision{}, Reservation{}, true, fmt.Errorf("reservation %q: %w: %s", id, ErrReservationConflict, why)
}

// holdApproved checks the approval, holds, and only then marks the
// approval used, so a hold lost to a budget race does not burn it.
func (e *Enforcer) holdApproved(ctx context.Context, call Call, d Decision, opt ReserveOptions, fp string) (Decision, Reservation, error) {
	if err := e.approvals.usable(opt.ApprovalID, call); err != nil {
		return d, Reservation{}, fmt.Errorf("reserve %s on %q: %w", call.Tool, call.Account, err)
	}
	d, r, err := e.hold(ctx, call, d, opt, fp)
	if err != nil || d.Verdict != Allow {
		return d, r, err
	}
	if err := e.approvals.consume(opt.ApprovalID, call); err != nil {
		// Someone used the approval concurrently: undo this hold.
		if _, relErr := e.ledger.Release(detached(ctx), r.ID); relErr != nil {
			e.logger.Error("release after a lost approval race", "reservation", r.ID, "error", relErr)
		}
		return d, Reservation{}, fmt.Errorf("reserve %s on %q: %w", call.Tool, call.Account, err)
	}
	d.ApprovalID = opt.ApprovalID
	return d, r, nil
}

func (e *Enforcer) estimateFor(ctx context.Context, call Call, given *Estimate) (Estimate, error) {
	if given != nil {
		return *given, nil
	}
	return e.chain.estimate(ctx, call)
}

func (e *Enforcer) queueAsk(call Call, d Decision) (Decision, Reservation, error) {
	req, err := e.approvals.Create("a-"+e.NewReservationID()[2:], call, d.Estimate, d.Policy, d.Reason)
	if errors.Is(err, ErrApprovalQueueFull) {
		d.Verdict, d.Layer = Deny, LayerApproval
		d.Reason = fmt.Sprintf("%s; and no approval could be queued: %v", d.Reason, err)
		return d, Reservation{}, nil
	}
	if err != nil {
		return d, Reservation{}, err
	}
	d.ApprovalID = req.ID
	return d, Reservation{}, nil
}

func (e *Enforcer) hold(ctx context.Context, call Call, d Decision, opt ReserveOptions, fp string) (Decision, Reservation, error) {
	id, ttl := opt.ID, opt.TTL
	if id == "" {
		id = e.NewReservationID()
	}
	if ttl <= 0 {
		ttl = e.cfg.ReservationTTL
	}
	req := ReserveRequest{ID: id, Account: call.Account, Tool: call.Tool, Estimate: d.Estimate.Nanos, TTL: ttl, Fingerprint: fp}
	if x := d.Estimate.Explain; x != nil {
		req.BaseEstimate, req.CalibrationKey = x.Base, x.CalibrationKey
	}
	r, err := e.ledger.Reserve(ctx, req)
	var ibe *InsufficientBudgetError
	if errors.As(err, &ibe) {
		// Another call took the room between Check and Reserve.
		d.Verdict, d.Layer, d.Reason, d.Policy = Deny, LayerBudget, ibe.Error(), ""
		d.BudgetAccount, d.Remaining = ibe.Account, ibe.Remaining
		return d, Reservation{}, nil
	}
	if err != nil {
		return d, Reservation{}, fmt.Errorf("reserve %s on %q: %w", call.Tool, call.Account, err)
	}
	if r.CalibrationKey == "" {
		e.calib.remember(r.ID, req.CalibrationKey, req.BaseEstimate)
	}
	return d, r, nil
}

// tailGuard denies a call that cannot extend its hold when the most it may
// cost (its calibrated tail) would pass the remaining budget by more than
// Calibration.TailOverrunBP of the refusing account's limit: committed
// past its hold, it would overdraw the account by more than that. The hold
// itself stays at the target quantile.
func (e *Enforcer) tailGuard(ctx context.Context, call Call, est Estimate, extendable bool) (Decision, bool, error) {
	tail, ok := tailEstimate(est)
	if !ok || extendable {
		return Decision{}, false, nil
	}
	bc, err := e.ledger.Check(ctx, call.Account, tail.Nanos)
	if err != nil {
		return Decision{}, true, fmt.Errorf("admission of %s on account %q: %w", call.Tool, call.Account, err)
	}
	if bc.OK {
		return Decision{}, false, nil
	}
	if ok, err := e.tailWithinTolerance(ctx, bc, tail.Nanos); ok || err != nil {
		return Decision{}, err != nil, err
	}
	ibe := &InsufficientBudgetError{Account: bc.Account, Estimate: tail.Nanos, Remaining: bc.Remaining, Overdrawn: bc.Overdrawn}
	return Decision{Verdict: Deny, Layer: LayerBudget, Reason: ibe.Error(), Estimate: tail, BudgetAccount: bc.Account, Remaining: bc.Remaining}, true, nil
}

// tailWithinTolerance reports whether a tail that does not fit (bc) would
// overrun the refusing account's limit by at most the configured share of
// it. An overdrawn or unlimited account is never within tolerance here
// (the first refuses everything, the second never refuses).
func (e *Enforcer) tailWithinTolerance(ctx context.Context, bc BudgetCheck, tail Nanos) (bool, error) {
	bp := e.cfg.Calibration.TailOverrunBP
	if bp <= 0 || bc.Overdrawn || bc.Remaining < 0 {
		return false, nil
	}
	snap, err := e.ledger.Snapshot(ctx, bc.Account)
	if err != nil {
		return false, fmt.Errorf("tail check on account %q: %w", bc.Account, err)
	}
	if snap.Limit == nil {
		return false, nil
	}
	slack, err := MulRatioCeil(*snap.Limit, bp, 10_000)
	if err != nil {
		return false, nil
	}
	return tail-bc.Remaining <= slack, nil
}
