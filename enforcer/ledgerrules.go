package enforcer

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Rules every Ledger implementation applies the same way. They live here,
// beside the contract, so the memory, SQLite and PostgreSQL ledgers share
// one definition instead of three copies.

// Validate checks a reservation request's fields; the error wraps
// ErrInvalidReservation and names the id, the account and the problem.
func (r ReserveRequest) Validate() error {
	var why string
	switch {
	case r.ID == "":
		why = "empty reservation id"
	case r.Account == "":
		why = "empty account"
	case r.Estimate < 0:
		why = "negative estimate " + r.Estimate.String()
	case r.TTL <= 0:
		why = fmt.Sprintf("ttl %s is not positive", r.TTL)
	case r.TTL > MaxReservationTTL:
		why = fmt.Sprintf("ttl %s is above the maximum %s", r.TTL, MaxReservationTTL)
	case len(r.Fingerprint) > MaxFingerprintLen:
		why = fmt.Sprintf("fingerprint of %d bytes is above the maximum %d", len(r.Fingerprint), MaxFingerprintLen)
	case r.BaseEstimate < 0:
		why = "negative base estimate " + r.BaseEstimate.String()
	case len(r.CalibrationKey) > MaxCalibrationKeyLen:
		why = fmt.Sprintf("calibration key of %d bytes is above the maximum %d", len(r.CalibrationKey), MaxCalibrationKeyLen)
	default:
		return nil
	}
	return fmt.Errorf("reserve %q on account %q: %w: %s", r.ID, r.Account, ErrInvalidReservation, why)
}

// Validate checks an account spec's own fields and its name against its
// parent (CheckAccountName); the error wraps ErrInvalidAccount.
func (spec AccountSpec) Validate() error {
	switch {
	case spec.ID == "":
		return fmt.Errorf("%w: empty id", ErrInvalidAccount)
	case spec.Parent == spec.ID:
		return fmt.Errorf("%w: account is its own parent", ErrInvalidAccount)
	case spec.Limit != nil && *spec.Limit < 0:
		return fmt.Errorf("%w: negative limit %s", ErrInvalidAccount, *spec.Limit)
	case spec.PercentOfParent < 0 || spec.PercentOfParent > 100:
		return fmt.Errorf("%w: percent of parent %d is outside 1..100", ErrInvalidAccount, spec.PercentOfParent)
	case spec.PercentOfParent > 0 && spec.Limit != nil:
		return fmt.Errorf("%w: both a limit and a percent of parent", ErrInvalidAccount)
	case spec.PercentOfParent > 0 && spec.Parent == "":
		return fmt.Errorf("%w: percent of parent without a parent", ErrInvalidAccount)
	}
	return CheckAccountName(spec.ID, spec.Parent)
}

// RemainingOf is limit - committed - pending, saturating at MinInt64
// instead of wrapping (limit and committed are never negative).
func RemainingOf(limit, committed, pending Nanos) Nanos {
	r := limit - committed
	if pending > 0 && r < math.MinInt64+pending {
		return math.MinInt64
	}
	return r - pending
}

// PathCheck computes Ledger.Check over an account's path: the tightest
// account decides, an overdrawn one (which refuses everything) before any
// other, else the one with the least remaining.
type PathCheck struct{ bc BudgetCheck }

// NewPathCheck starts a check for account.
func NewPathCheck(account string) PathCheck {
	return PathCheck{bc: BudgetCheck{Account: account, Remaining: MaxNanos}}
}

// Add folds in one account of the path (nil limit = unlimited).
func (c *PathCheck) Add(id string, limit *Nanos, committed, pending Nanos) {
	if limit == nil {
		return
	}
	rem := RemainingOf(*limit, committed, pending)
	switch {
	case committed > *limit && !c.bc.Overdrawn:
		c.bc = BudgetCheck{Account: id, Remaining: rem, Overdrawn: true}
	case !c.bc.Overdrawn && rem < c.bc.Remaining:
		c.bc.Account, c.bc.Remaining = id, rem
	}
}

// Result says whether estimate fits.
func (c PathCheck) Result(estimate Nanos) BudgetCheck {
	bc := c.bc
	bc.OK = !bc.Overdrawn && estimate <= bc.Remaining
	return bc
}

// Thresholds are alert percentages, sorted, unique and positive.
type Thresholds []int

// NewThresholds normalises LedgerOptions.ThresholdsPct: nil means the
// defaults, an empty slice means no threshold alerts.
func NewThresholds(pcts []int) Thresholds {
	if pcts == nil {
		pcts = DefaultThresholdsPct()
	}
	var t Thresholds
	for _, p := range pcts {
		if p > 0 {
			t = append(t, p)
		}
	}
	slices.Sort(t)
	return slices.Compact(t)
}

// Level is how many thresholds committed spend has reached under limit.
// It depends on nothing else, so an alert fires exactly when the level
// rises, with no per-account alert state to keep.
func (t Thresholds) Level(committed Nanos, limit *Nanos) int {
	if limit == nil || committed <= 0 {
		return 0
	}
	n := 0
	for _, p := range t {
		at, err := MulRatioCeil(*limit, int64(p), 100)
		if err != nil {
			at = MaxNanos
		}
		if committed < at {
			break
		}
		n++
	}
	return n
}

// Crossings appends the alerts for an account whose committed spend and
// limit went from (oldC, oldLim) to (newC, newLim): each threshold risen
// past, then overdraft if it just began.
func (t Thresholds) Crossings(alerts []Alert, account string, oldC Nanos, oldLim *Nanos, newC Nanos, newLim *Nanos, now time.Time) []Alert {
	for i := t.Level(oldC, oldLim); i < t.Level(newC, newLim); i++ {
		p := t[i]
		alerts = append(alerts, Alert{Account: account, ThresholdPct: p, Level: LevelFor(p), Committed: newC, Limit: *newLim, At: now})
	}
	wasOver := oldLim != nil && oldC > *oldLim
	if newLim != nil && newC > *newLim && !wasOver {
		alerts = append(alerts, Alert{Account: account, Level: AlertCritical, Committed: newC, Limit: *newLim, Overdrawn: true, At: now})
	}
	return alerts
}

// CommitSource checks a commit's actual cost and settles its cost source:
// no actual means the estimate is charged ("estimated"); an actual without
// a source is "actual". A negative actual is an error naming the id.
func CommitSource(id string, actual *Nanos, source CostSource) (CostSource, error) {
	switch {
	case actual != nil && *actual < 0:
		return "", fmt.Errorf("commit %q: %w: negative actual cost %s", id, ErrInvalidAmount, *actual)
	case actual == nil:
		return CostEstimated, nil
	case source == "":
		return CostActual, nil
	}
	return source, nil
}

// SameRequest accepts req as a retry of the reservation r (held for ttl)
// and otherwise names the first field that differs; the error wraps
// ErrReservationConflict.
func SameRequest(r Reservation, ttl time.Duration, req ReserveRequest) error {
	var field, was, now string
	switch {
	case r.Account != req.Account:
		field, was, now = "account", r.Account, req.Account
	case r.Tool != req.Tool:
		field, was, now = "tool", r.Tool, req.Tool
	case r.Estimate != req.Estimate:
		field, was, now = "estimate", r.Estimate.String(), req.Estimate.String()
	case ttl != req.TTL:
		field, was, now = "ttl", ttl.String(), req.TTL.String()
	case r.Fingerprint != req.Fingerprint:
		field, was, now = "fingerprint (params)", r.Fingerprint, req.Fingerprint
	default:
		return nil
	}
	return fmt.Errorf("reserve %q on account %q: %w: %s was %q, now %q",
		req.ID, req.Account, ErrReservationConflict, field, was, now)
}

// Validate checks a filter and returns it with Limit settled (0 means
// MaxReservationsLimit); the error wraps ErrInvalidReservation and says
// what is accepted.
func (f ReservationFilter) Validate() (ReservationFilter, error) {
	var why string
	switch f.State {
	case "", StatePending, StateCommitted, StateReleased, StateExpired:
	default:
		why = fmt.Sprintf("state %q is not one of pending, committed, released, expired (or empty for all)", f.State)
	}
	switch {
	case why != "":
	case f.Account == "":
		why = "account is required"
	case f.Limit < 0 || f.Limit > MaxReservationsLimit:
		why = fmt.Sprintf("limit %d is outside 1..%d (0 for the maximum)", f.Limit, MaxReservationsLimit)
	case f.Limit == 0:
		f.Limit = MaxReservationsLimit
	}
	if why != "" {
		return f, fmt.Errorf("list reservations of account %q: %w: %s", f.Account, ErrInvalidReservation, why)
	}
	return f, nil
}
