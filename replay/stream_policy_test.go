package replay

import (
	"context"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

// A policy capping one call's cost cuts a streamed call where its
// extension would pass the cap, as a budget deny does.
func TestStreamCutByPolicy(t *testing.T) {
	clock := NewStepClock()
	l := enforcer.NewMemoryLedger(enforcer.LedgerOptions{Clock: clock})
	e, err := enforcer.New(l, enforcer.Config{Clock: clock, Estimators: map[string]enforcer.Estimator{"*": paramEstimator{}},
		Policies: []enforcer.PolicySpec{{Policy: enforcer.MaxCostPerCall{Limit: enforcer.MustParseUSD("0.5")}}}})
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Enforcer: e, Clock: clock, Stream: true}
	limit := enforcer.MustParseUSD("10")
	r.TraceBudget = &limit
	rep, err := r.Run(context.Background(), []*Trace{trace("b", step("0.1", "0.9"))})
	if err != nil {
		t.Fatal(err)
	}
	c := committed(t, l, "replay/0000")
	if len(c) != 1 || c[0].Charged > enforcer.MustParseUSD("0.5") || rep.Budget.CutCalls != 1 {
		t.Errorf("a call past the $0.50 cap streamed: commits %+v, budget %+v", c, rep.Budget)
	}
}
