package bridge

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
)

// TestPolicyIsConsultedOnlyForItsManifestTools: a policy declaring
// ["Bash"] is not called for Read (issue 12: it judged every tool).
func TestPolicyIsConsultedOnlyForItsManifestTools(t *testing.T) {
	log := &callLog{calls: map[string]int{}}
	reg := newObservedRegistry(t, log, host.Spec{File: "../testplugins/limit-bash-policy.wasm"})
	e := newEnforcer(t, reg, nil)
	ctx := context.Background()
	d, err := e.Check(ctx, enforcer.Call{Account: "a", Tool: "Read"})
	if err != nil || d.Verdict != enforcer.Allow {
		t.Fatalf("Read: %+v %v", d, err)
	}
	if n := log.snapshot()["bash-policy/"]; n != 0 {
		t.Fatalf("the Bash-only policy was called %d times for Read", n)
	}
	if _, err := e.Check(ctx, enforcer.Call{Account: "a", Tool: "Bash"}); err != nil {
		t.Fatal(err)
	}
	if n := log.snapshot()["bash-policy/"]; n != 1 {
		t.Fatalf("the Bash-only policy was called %d times for Bash, want 1", n)
	}
}

// TestQuotesThatWouldPoisonATreeFallBack: an estimate above the per-call
// maximum, or $0 from a "*" estimator for a tool it does not name, is
// refused; the call is priced by the table and the error recorded.
func TestQuotesThatWouldPoisonATreeFallBack(t *testing.T) {
	reg := newRegistry(t, host.Spec{File: "../testplugins/limit-quotes.wasm"})
	table := enforcer.CostTable{"Huge": 7, "Read": 5, "Free": 3}
	e := newEnforcer(t, reg, table)
	ctx := context.Background()
	for tool, want := range map[string]error{"Huge": ErrEstimateAboveMax, "Read": ErrZeroWildcardEstimate} {
		est, err := e.Estimate(ctx, enforcer.Call{Account: "a", Tool: tool})
		var qe *QuoteError
		if err != nil || est.Source != enforcer.SourceTable || est.Nanos != table[tool] ||
			!errors.Is(est.FallbackErr, want) || !errors.As(est.FallbackErr, &qe) || !strings.Contains(est.FallbackErr.Error(), "plugin:limit-quotes@") {
			t.Errorf("%s: %+v %v; want the table price with %v recorded", tool, est, err, want)
		}
	}
	// A tool it names may cost $0.
	if est, err := e.Estimate(ctx, enforcer.Call{Account: "a", Tool: "Free"}); err != nil || est.Nanos != 0 || est.FallbackErr != nil ||
		!strings.HasPrefix(est.Source, "plugin:limit-quotes@") {
		t.Errorf("Free: %+v %v; want the plugin's $0", est, err)
	}
	// The maximum is configurable.
	low := NewEstimatorWithConfig(reg, EstimatorConfig{EstimatePerCallMaxNanos: 1})
	if _, err := low.Estimate(ctx, enforcer.Call{Tool: "Huge"}); !errors.Is(err, ErrEstimateAboveMax) || !strings.Contains(err.Error(), "maximum $0.000000001") {
		t.Errorf("configured maximum: %v", err)
	}
}
