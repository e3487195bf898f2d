package enforcer

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestLedgerRules(t *testing.T) {
	if r := RemainingOf(0, 10, math.MaxInt64); r != math.MinInt64 { // -10 - MaxInt64 would wrap
		t.Errorf("RemainingOf must saturate, got %d", r)
	}
	if err := (ReserveRequest{ID: "r", Account: "a", Estimate: 1, TTL: 0}).Validate(); !errors.Is(err, ErrInvalidReservation) {
		t.Errorf("zero TTL: %v", err)
	}
	th := NewThresholds([]int{90, 50, 0, 50, 100})
	if len(th) != 3 || th[0] != 50 || th[2] != 100 {
		t.Fatalf("normalised thresholds %v; want [50 90 100]", th)
	}
	lim := Nanos(100)
	got := th.Crossings(nil, "a", 40, &lim, 120, &lim, time.Time{})
	if len(got) != 4 || got[0].ThresholdPct != 50 || got[2].ThresholdPct != 100 || !got[3].Overdrawn {
		t.Errorf("crossings 40 -> 120 of 100: %+v; want 50, 90, 100 and overdraft", got)
	}
	if again := th.Crossings(nil, "a", 120, &lim, 130, &lim, time.Time{}); len(again) != 0 {
		t.Errorf("no new crossing, got %+v", again)
	}
	c := NewPathCheck("leaf")
	c.Add("leaf", nil, 0, 0)
	c.Add("parent", &lim, 50, 30)
	if bc := c.Result(20); !bc.OK || bc.Account != "parent" || bc.Remaining != 20 {
		t.Errorf("inclusive fit: %+v", bc)
	}
	if bc := c.Result(21); bc.OK {
		t.Errorf("one nano over: %+v", bc)
	}
}

// TestOverdrawnDenyKeepsTheBudgetSentence: every budget deny starts with
// the one required sentence; an overdraft adds the account and amount,
// even at the extremes of the signed remaining.
func TestOverdrawnDenyKeepsTheBudgetSentence(t *testing.T) {
	for _, c := range []struct {
		err  InsufficientBudgetError
		want string
	}{
		{InsufficientBudgetError{Account: "a", Estimate: USD(0, 100_000_000), Remaining: USD(0, 50_000_000)},
			"Insufficient budget: estimated $0.10 but only $0.05 remaining"},
		{InsufficientBudgetError{Account: "team", Estimate: USD(0, 100_000_000), Remaining: -USD(0, 200_000_000), Overdrawn: true},
			"Insufficient budget: estimated $0.10 but only $0.00 remaining (account team is overdrawn by $0.20)"},
		{InsufficientBudgetError{Account: "x", Estimate: 0, Remaining: math.MinInt64, Overdrawn: true},
			"Insufficient budget: estimated $0.00 but only $0.00 remaining (account x is overdrawn by " + MaxNanos.String() + ")"},
		{InsufficientBudgetError{Account: "y", Estimate: 1, Overdrawn: true}, // built without a remaining
			"Insufficient budget: estimated $0.000000001 but only $0.00 remaining (account y is overdrawn)"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.err, got, c.want)
		}
	}
	lim := Nanos(5)
	if r := (Snapshot{Limit: &lim, Committed: 7, Pending: 1}).Remaining(); r != 0 {
		t.Errorf("overdrawn snapshot remaining %s, want 0", r)
	}
}

// TestReservationFilterValidate: the limit defaults to the maximum and
// anything out of range names what is accepted.
func TestReservationFilterValidate(t *testing.T) {
	f, err := ReservationFilter{Account: "a"}.Validate()
	if err != nil || f.Limit != MaxReservationsLimit {
		t.Errorf("default limit: %+v, %v", f, err)
	}
	_, err = ReservationFilter{Account: "a", State: "done"}.Validate()
	if !errors.Is(err, ErrInvalidReservation) || !strings.Contains(err.Error(), "pending, committed, released, expired") {
		t.Errorf("unknown state: %v", err)
	}
}
