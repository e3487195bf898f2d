package enforcer

import (
	"context"
	"errors"
	"testing"
)

// An estimator refusing the caller's params is the caller's mistake: the
// chain returns it (naming the param and the estimator) instead of quietly
// pricing the call from the table, which would hide the error.
func TestEstimatorInvalidParamsAreReturnedNotFallenBack(t *testing.T) {
	refused := &InvalidParamsError{Param: "cache_read_tokens", Reason: "want a non-negative integer", Source: "plugin:fake@0123456789ab"}
	f := &fakeEstimator{err: refused}
	e := newTestEnforcer(t, Config{Estimators: map[string]Estimator{"*": f}})
	call := Call{Account: "a", Tool: "LLM", Params: map[string]any{"cache_read_tokens": -1}}
	est, err := e.Estimate(context.Background(), call)
	var ipe *InvalidParamsError
	if !errors.Is(err, ErrInvalidParams) || !errors.As(err, &ipe) || ipe.Param != "cache_read_tokens" {
		t.Fatalf("Estimate = %+v, %v; want an *InvalidParamsError naming cache_read_tokens", est, err)
	}
	if est.Source != "plugin:fake@0123456789ab" || est.Nanos != 0 {
		t.Errorf("estimate %+v: want the refusing source and no price", est)
	}
	if _, err := e.Check(context.Background(), call); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("Check: %v; want ErrInvalidParams", err)
	}
	if _, _, err := e.Reserve(context.Background(), call, ReserveOptions{}); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("Reserve: %v; want ErrInvalidParams", err)
	}
}
