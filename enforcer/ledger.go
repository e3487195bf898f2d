package enforcer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Ledger holds budgets and reservations. Implementations (in-memory here,
// SQLite and PostgreSQL under store/) share one contract, checked by the
// conformance suite in enforcer/ledgertest:
//
//   - Reserve checks and holds atomically on the account and every ancestor
//     (all or nothing): committed + pending + estimate <= limit, inclusive.
//     An overdrawn account (committed > limit) refuses everything, even a
//     zero estimate, for itself and every descendant.
//   - Reservation ids are chosen by the caller; a retry with the same id and
//     fields (account, tool, estimate, TTL and Fingerprint) returns the
//     first reservation as it is now (whatever its state), also when it
//     races the first attempt; different fields are a conflict
//     (ErrReservationConflict). A denied Reserve stores nothing, so a retry
//     is evaluated afresh.
//   - A reservation moves pending -> committed | released | expired once;
//     the one exception is a late Commit, which moves expired -> committed
//     (Late) because the money was spent.
//   - Expired holds stop counting at ExpiresAt, before any sweep runs.
//   - SetLimit never rewrites what was spent; a limit below the spend makes
//     the account overdrawn until it is raised again. Entering overdraft (by
//     a commit or a lowered limit) raises one critical Alert (Overdrawn).
//   - Thresholds are measured on committed spend (holds come and go and
//     would re-fire), once per rising crossing, re-armed when the spend
//     falls back below. Alerts go to the Notifier outside every lock, so a
//     notifier may call back into the ledger.
//   - Settled reservations are remembered for LedgerOptions.RetainSettled
//     from when they settled (a late commit counts from the commit, not
//     the expiry); after that their ids are forgotten (a reuse is a new
//     reservation).
//   - A failure of the store itself to read or write wraps
//     ErrLedgerUnavailable; denials and refusals never do.
type Ledger interface {
	// CreateAccount adds an account; the parent must exist. A child of a
	// supervisor that does not fit is a *SupervisorBudgetError.
	CreateAccount(ctx context.Context, spec AccountSpec) (Snapshot, error)
	// SetLimit changes an account's limit (nil = unlimited). It never
	// changes committed spend. It fails with a *SupervisorBudgetError if a
	// supervisor's children would be allocated more than its limit.
	SetLimit(ctx context.Context, account string, limit *Nanos) (Snapshot, error)
	// SetLabels replaces an account's labels.
	SetLabels(ctx context.Context, account string, labels map[string]string) (Snapshot, error)
	// Check reports whether estimate fits the account and all its ancestors
	// now, without holding anything.
	Check(ctx context.Context, account string, estimate Nanos) (BudgetCheck, error)
	// Reserve holds estimate on the account and every ancestor. A budget
	// shortfall is an *InsufficientBudgetError (errors.Is
	// ErrInsufficientBudget) and stores nothing. A malformed request wraps
	// ErrInvalidReservation.
	Reserve(ctx context.Context, req ReserveRequest) (Reservation, error)
	// Commit settles a pending (or expired: Late) reservation and releases
	// the rest of the hold. A nil actual charges the estimate (CostSource
	// "estimated"); otherwise *actual (>= 0) is charged in full with source
	// (CostActual if empty). Repeating the same commit (same actual and
	// source) returns the reservation unchanged; any other commit or release
	// of a settled reservation wraps ErrReservationSettled.
	Commit(ctx context.Context, id string, actual *Nanos, source CostSource) (Reservation, error)
	// CommitWith is Commit with what the charge was priced from: the token
	// usage and price source are recorded on the reservation (they do not
	// take part in the repeated-commit comparison, which is actual and
	// source as for Commit). req.Actual nil charges the whole hold.
	CommitWith(ctx context.Context, req CommitRequest) (Reservation, error)
	// Extend grows a pending hold by req.Add on the account and every
	// ancestor, atomically and under the same rule and deny (an
	// *InsufficientBudgetError whose Estimate is req.Add) as Reserve; a
	// denied extension changes nothing. It is idempotent under
	// req.ExtensionID: the same id and amount returns the reservation as
	// it is now (even once settled), the same id with another amount wraps
	// ErrReservationConflict. A settled or expired reservation wraps
	// ErrReservationSettled, an unknown one ErrReservationNotFound. At most
	// MaxExtensions extensions per reservation (ErrInvalidReservation past it).
	Extend(ctx context.Context, req ExtendRequest) (Reservation, error)
	// Release ends a pending reservation at no cost. Releasing a released
	// one again returns it unchanged (a retry after a lost reply, like a
	// repeated Commit); releasing a committed or expired one wraps
	// ErrReservationSettled (an expired hold already stopped counting).
	Release(ctx context.Context, id string) (Reservation, error)
	// Reservation returns the current state of a reservation; a pending hold
	// past its expiry reads as StateExpired even before a sweep.
	Reservation(ctx context.Context, id string) (Reservation, error)
	// Reservations lists the reservations the ledger still remembers on
	// one account (exactly that account, not its descendants), optionally
	// in one state (a pending hold past its expiry counts as expired),
	// oldest first (CreatedAt, then id), at most f.Limit of them. It lets
	// a client that lost a Reserve reply find and settle its own holds.
	Reservations(ctx context.Context, f ReservationFilter) ([]Reservation, error)
	// Snapshot returns one account's totals.
	Snapshot(ctx context.Context, account string) (Snapshot, error)
	// Accounts returns every account's totals, sorted by id.
	Accounts(ctx context.Context) ([]Snapshot, error)
	// Long-running processes should call Sweep periodically (purser serve
	// does every minute): settled ids are forgotten only there, so without
	// it a ledger remembers every reservation it ever settled.
	//
	// Sweep marks every hold whose expiry has passed as expired and
	// returns how many it marked (holds already dropped lazily by another
	// operation are not counted again); it also forgets reservations
	// settled longer than RetainSettled ago. Correctness never depends on
	// it running, but memory does.
	Sweep(ctx context.Context) (int, error)
}

// Sentinel errors callers branch on.
var (
	ErrAccountNotFound     = errors.New("account not found")
	ErrAccountExists       = errors.New("account already exists")
	ErrReservationNotFound = errors.New("reservation not found")
	ErrReservationConflict = errors.New("reservation id reused with different fields")
	ErrReservationSettled  = errors.New("reservation already settled")
	ErrInsufficientBudget  = errors.New("insufficient budget")
	ErrInvalidAccount      = errors.New("invalid account")
	ErrSupervisorBudget    = errors.New("insufficient supervisor budget")
	ErrInvalidReservation  = errors.New("invalid reservation request")
	// ErrReservationInProgress: a reservation id that is still pending was
	// used again to run the call (Execute); the first attempt is running.
	ErrReservationInProgress = errors.New("reservation in progress")
	// ErrLedgerUnavailable wraps every failure of a store to read or write
	// (database down, disk full, I/O error): nothing was changed, or the
	// store says otherwise in the error. Servers answer it with 503.
	ErrLedgerUnavailable = errors.New("ledger unavailable")
)

// MaxReservationsLimit bounds ReservationFilter.Limit.
const MaxReservationsLimit = 1000

// ReservationFilter selects reservations for Ledger.Reservations.
type ReservationFilter struct {
	Account string           // required
	State   ReservationState // "" for every state
	Limit   int              // 1..MaxReservationsLimit; 0 means MaxReservationsLimit
}

// SupervisorBudgetError says a supervisor's children would be allocated
// more than its limit.
type SupervisorBudgetError struct {
	Supervisor string
	Account    string // the child being created or changed ("" when the supervisor's own limit changed)
	Requested  Nanos  // the child's limit, or the supervisor's new limit
	Allocated  Nanos  // the other children's fixed limits
	Limit      Nanos  // the supervisor's limit
}

func (e *SupervisorBudgetError) Error() string {
	if e.Account == "" {
		return fmt.Sprintf("Insufficient supervisor budget: children of %s are allocated %s but the new limit is %s",
			e.Supervisor, e.Allocated, e.Requested)
	}
	return fmt.Sprintf("Insufficient supervisor budget: %s requests %s but supervisor %s has only %s unallocated (limit %s, allocated %s)",
		e.Account, e.Requested, e.Supervisor, clampZero(e.Limit-e.Allocated), e.Limit, e.Allocated)
}

func (e *SupervisorBudgetError) Unwrap() error { return ErrSupervisorBudget }

// AccountSpec describes an account to create.
type AccountSpec struct {
	ID     string
	Parent string // "" for a root account
	// Limit is nil for unlimited.
	Limit *Nanos
	// PercentOfParent, when > 0, sets Limit to that share of the parent's
	// limit at creation time, rounded down (basis points would be overkill:
	// whole percent, 1..100). Limit must then be nil and the parent must
	// have a limit; later changes to the parent's limit do not follow.
	PercentOfParent int
	// AllocateChildren makes this a supervisor: the fixed limits of its
	// children (unlimited children count as 0) may not sum past its own
	// limit, and its own limit may not be lowered below that sum.
	AllocateChildren bool
	Labels           map[string]string
}

// Snapshot is an account's state at one instant.
type Snapshot struct {
	ID               string
	Parent           string
	Limit            *Nanos
	Committed        Nanos
	Pending          Nanos
	Overdrawn        bool
	AllocateChildren bool
	Labels           map[string]string
	// Tools holds per-tool counts and spend, rolled up from descendants.
	Tools map[string]ToolStats
}

// Remaining is what may still be held: limit - committed - pending, never
// below 0 (an overdrawn account has nothing left; Overdrawn says so), or
// MaxNanos when unlimited. Budget decisions use the signed RemainingOf.
func (s Snapshot) Remaining() Nanos {
	if s.Limit == nil {
		return MaxNanos
	}
	return clampZero(RemainingOf(*s.Limit, s.Committed, s.Pending))
}

// UtilizationBP is (committed+pending)/limit in basis points (10000 = 100%),
// or 0 when unlimited.
func (s Snapshot) UtilizationBP() int64 {
	if s.Limit == nil || *s.Limit == 0 {
		if s.Limit != nil && s.Committed+s.Pending > 0 {
			return 10000
		}
		return 0
	}
	u, err := MulRatioCeil(s.Committed+s.Pending, 10000, int64(*s.Limit))
	if err != nil {
		return 1 << 62
	}
	return int64(u)
}

// ToolStats counts committed calls of one tool (calls reserved with an
// empty tool name are not counted).
type ToolStats struct {
	Calls int64
	Spent Nanos
}

// BudgetCheck is the answer of Ledger.Check.
type BudgetCheck struct {
	OK bool
	// Account is the tightest account on the path (the one that refused,
	// or the one with the least remaining).
	Account   string
	Remaining Nanos
	Overdrawn bool
}

// MaxReservationTTL bounds ReserveRequest.TTL: a hold is for one call, and
// expiry times must stay representable as Unix nanoseconds.
const MaxReservationTTL = 365 * 24 * time.Hour

// ReserveRequest asks to hold Estimate on Account until TTL passes
// (0 < TTL <= MaxReservationTTL).
type ReserveRequest struct {
	ID       string
	Account  string
	Tool     string
	Estimate Nanos
	TTL      time.Duration
	// Fingerprint is an opaque digest of everything else the caller asked
	// for (the enforcer puts the canonical params, an explicit estimate
	// and the requested TTL in it; at most MaxFingerprintLen bytes). A
	// retry with a different fingerprint is a conflict, like any other
	// field; "" compares equal only to "".
	Fingerprint string
	// BaseEstimate and CalibrationKey are recorded, never compared: the
	// uncalibrated estimate and the calibration key it was scaled under,
	// so a commit (on any host, after any restart) can teach calibration
	// how the actual compared. Zero and "" when the hold was not calibrated.
	BaseEstimate   Nanos
	CalibrationKey string
}

// MaxFingerprintLen bounds ReserveRequest.Fingerprint.
const MaxFingerprintLen = 128

// Bounds on what a reservation records.
const (
	MaxCalibrationKeyLen = 256 // ReserveRequest.CalibrationKey
	MaxExtensionIDLen    = 128 // ExtendRequest.ExtensionID
	MaxExtensions        = 1000
	MaxPriceSourceLen    = 256 // CommitRequest.PriceSource
)

// ExtendRequest asks to grow a pending hold.
type ExtendRequest struct {
	ID string // the reservation
	// ExtensionID makes the extension idempotent (unique per reservation;
	// 1..MaxExtensionIDLen bytes, required).
	ExtensionID string
	Add         Nanos // > 0
}

// CommitRequest settles a reservation (see Ledger.CommitWith).
type CommitRequest struct {
	ID     string
	Actual *Nanos // nil: the hold (Estimate + Extended) is charged, CostEstimated
	Source CostSource
	// Usage and PriceSource say what Actual was priced from; recorded only.
	Usage       *TokenUsage
	PriceSource string
}

// ReservationState is where a reservation is in its life.
type ReservationState string

// Reservation states; the last three are terminal.
const (
	StatePending   ReservationState = "pending"
	StateCommitted ReservationState = "committed"
	StateReleased  ReservationState = "released"
	StateExpired   ReservationState = "expired"
)

// CostSource says where a settled cost came from.
type CostSource string

// Cost sources.
const (
	CostActual    CostSource = "actual"
	CostEstimated CostSource = "estimated"
	CostCache     CostSource = "cache"
)

// Reservation is a hold and, once settled, its charge.
type Reservation struct {
	ID         string
	Account    string
	Tool       string
	Estimate   Nanos
	State      ReservationState
	CreatedAt  time.Time
	ExpiresAt  time.Time
	SettledAt  time.Time // for an expired hold, its ExpiresAt
	Charged    Nanos
	CostSource CostSource
	Late       bool // committed after its expiry
	// Fingerprint is the ReserveRequest's, kept to recognise retries.
	Fingerprint string
	// Extended is what Extend added to the hold; the hold is Estimate +
	// Extended while pending.
	Extended Nanos
	// BaseEstimate and CalibrationKey are the ReserveRequest's.
	BaseEstimate   Nanos
	CalibrationKey string
	// Usage and PriceSource are the committed CommitRequest's (nil and ""
	// when the commit carried none).
	Usage       *TokenUsage
	PriceSource string
	// Replayed says this answer repeats an earlier commit, release or
	// extension (a retry after a lost reply): nothing changed now. Only
	// those answers set it; reads never do.
	Replayed bool
}

// Held is what the reservation holds while pending: Estimate + Extended.
func (r Reservation) Held() Nanos { return r.Estimate + r.Extended }

// InsufficientBudgetError says which account refused a hold and by how much.
type InsufficientBudgetError struct {
	Account  string
	Estimate Nanos
	// Remaining is signed: below 0 when spend and holds exceed the limit.
	Remaining Nanos
	Overdrawn bool
}

// Error is the user-facing deny reason. Every budget deny starts with the
// one required sentence; an overdrawn account (which refuses everything)
// shows $0.00 remaining and adds which account is overdrawn and by how
// much its spend and holds exceed its limit:
//
//	Insufficient budget: estimated $0.10 but only $0.05 remaining
//	Insufficient budget: estimated $0.10 but only $0.00 remaining (account team is overdrawn by $0.20)
func (e *InsufficientBudgetError) Error() string {
	msg := fmt.Sprintf("Insufficient budget: estimated %s but only %s remaining", e.Estimate, clampZero(e.Remaining))
	if !e.Overdrawn {
		return msg
	}
	over := MaxNanos // -MinInt64 does not fit
	if e.Remaining > math.MinInt64 {
		over = -e.Remaining
	}
	if over <= 0 { // not computed by the caller: say only that it is overdrawn
		return fmt.Sprintf("%s (account %s is overdrawn)", msg, e.Account)
	}
	return fmt.Sprintf("%s (account %s is overdrawn by %s)", msg, e.Account, over)
}

func (e *InsufficientBudgetError) Unwrap() error { return ErrInsufficientBudget }

func clampZero(n Nanos) Nanos {
	if n < 0 {
		return 0
	}
	return n
}

// Clock is the time source; tests inject a fake one.
type Clock interface{ Now() time.Time }

// SystemClock reads the real time.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// LedgerOptions are what every Ledger implementation is built with.
type LedgerOptions struct {
	Clock    Clock    // default SystemClock
	Notifier Notifier // default none
	// ThresholdsPct are the percentages of the limit that committed spend
	// raises alerts at; nil means DefaultThresholdsPct, an empty slice
	// none (overdraft alerts still fire). Values <= 0 are ignored.
	ThresholdsPct []int
	// RetainSettled is how long settled reservations stay answerable (for
	// idempotent retries and late lookups); default DefaultRetainSettled.
	RetainSettled time.Duration
}

// DefaultRetainSettled keeps settled reservations for an hour: long enough
// for idempotent retries and late lookups, short enough that a busy ledger
// (its memory is one record per call within the window) stays small.
const DefaultRetainSettled = time.Hour

// DefaultThresholdsPct returns a fresh copy of the brief's alert levels.
func DefaultThresholdsPct() []int { return []int{50, 75, 90, 100} }
