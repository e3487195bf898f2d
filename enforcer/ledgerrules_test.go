package enforcer

import (
	"errors"
	"math"
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
