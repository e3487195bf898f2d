package enforcer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// paramPriced prices a call at its "usd" param, like an estimator that
// reads the call (an LLM's prompt and model) would.
type paramPriced struct{}

func (paramPriced) Estimate(_ context.Context, c Call) (Quote, error) {
	n, err := ParseUSD(c.Params["usd"].(string))
	return Quote{Nanos: n, Source: "plugin:priced@0123456789ab"}, err
}

func TestExecuteRetryWhilePendingIsInProgress(t *testing.T) {
	ctx := context.Background()
	e := newRetryEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	var runs atomic.Int32
	started, finish := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := e.Execute(ctx, "a", "Bash", nil, func(context.Context) (any, error) {
			runs.Add(1)
			close(started)
			<-finish
			return nil, nil
		}, WithReservationID("r1"))
		first <- err
	}()
	<-started
	res, err := e.Execute(ctx, "a", "Bash", nil, func(context.Context) (any, error) { runs.Add(1); return nil, nil }, WithReservationID("r1"))
	if !errors.Is(err, ErrReservationInProgress) {
		t.Errorf("retry while the first attempt runs: %v; want ErrReservationInProgress", err)
	}
	close(finish)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 1 {
		t.Errorf("the tool ran %d times under one reservation id; want 1 (result %+v)", runs.Load(), res)
	}
}

func TestExecuteRetryOfAPendingHoldFromEarlierIsInProgress(t *testing.T) {
	// The first attempt reserved and then its process went away: the hold
	// is pending in the ledger, not in this process.
	ctx := context.Background()
	e := newRetryEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	if _, _, err := e.Reserve(ctx, Call{Account: "a", Tool: "Bash"}, ReserveOptions{ID: "r1"}); err != nil {
		t.Fatal(err)
	}
	ran := false
	res, err := e.Execute(ctx, "a", "Bash", nil, func(context.Context) (any, error) { ran = true; return nil, nil }, WithReservationID("r1"))
	if !errors.Is(err, ErrReservationInProgress) || ran || res.Reservation.State != StatePending {
		t.Errorf("Execute under a pending id: err=%v ran=%v reservation=%+v; want in progress, not run", err, ran, res.Reservation)
	}
	wantSpend(t, e, "a", 0, MustParseUSD("0.01"))
}

func TestConcurrentExecutesOfOneIDRunTheToolOnce(t *testing.T) {
	ctx := context.Background()
	e := newRetryEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	const callers = 16
	var runs, returned atomic.Int32
	othersDone := make(chan struct{})
	// The first run holds its hold pending until every other caller has
	// returned, so each of them meets a pending reservation.
	tool := func(context.Context) (any, error) {
		if runs.Add(1) == 1 {
			<-othersDone
		}
		return nil, nil
	}
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Execute(ctx, "a", "Read", nil, tool, WithReservationID("same"))
			if err != nil && !errors.Is(err, ErrReservationInProgress) && !errors.Is(err, ErrReservationSettled) {
				t.Error(err)
			}
			if returned.Add(1) == callers-1 {
				close(othersDone)
			}
		}()
	}
	wg.Wait()
	if runs.Load() != 1 {
		t.Errorf("tool ran %d times for one id; want 1", runs.Load())
	}
}

func TestReusedIDWithADearerCallIsAConflictNotAdmitted(t *testing.T) {
	ctx := context.Background()
	e := newRetryEnforcer(t, Config{Estimators: map[string]Estimator{"LLM": paramPriced{}}})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("0.05")})
	cheap, dear := map[string]any{"usd": "0.05"}, map[string]any{"usd": "0.50"}
	if _, err := e.Execute(ctx, "a", "LLM", cheap, noop, WithReservationID("r1")); err != nil {
		t.Fatal(err)
	}
	ran := false
	res, err := e.Execute(ctx, "a", "LLM", dear, func(context.Context) (any, error) { ran = true; return nil, nil }, WithReservationID("r1"))
	if !errors.Is(err, ErrReservationConflict) || !strings.Contains(err.Error(), "params") || ran || res.Reservation.ID != "" {
		t.Fatalf("a $0.50 call under the id of a $0.05 one: err=%v ran=%v reservation=%+v; want a conflict naming the params", err, ran, res.Reservation)
	}
	_, _, err = e.Reserve(ctx, Call{Account: "a", Tool: "LLM", Params: dear}, ReserveOptions{ID: "r1"})
	if !errors.Is(err, ErrReservationConflict) {
		t.Errorf("Reserve: %v; want ErrReservationConflict", err)
	}
	wantSpend(t, e, "a", MustParseUSD("0.05"), 0)
}

func TestReusedIDWithOtherEstimateOrTTLIsAConflict(t *testing.T) {
	ctx := context.Background()
	e := newRetryEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	call := Call{Account: "a", Tool: "Bash", Params: map[string]any{"command": "ls"}}
	five := &Estimate{Nanos: MustParseUSD("0.05"), Source: "caller"}
	if _, _, err := e.Reserve(ctx, call, ReserveOptions{ID: "r1", Estimate: five, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	same := &Estimate{Nanos: five.Nanos, Source: "caller"}
	if d, r, err := e.Reserve(ctx, call, ReserveOptions{ID: "r1", Estimate: same, TTL: time.Minute}); err != nil || !d.Allowed() || r.ID != "r1" {
		t.Fatalf("identical retry: %+v %v", d, err)
	}
	cases := []struct {
		name string
		opt  ReserveOptions
		call Call
		want string
	}{
		{"estimate", ReserveOptions{ID: "r1", Estimate: &Estimate{Nanos: MustParseUSD("0.50")}, TTL: time.Minute}, call, "estimate was $0.05, now $0.50"},
		{"no estimate", ReserveOptions{ID: "r1", TTL: time.Minute}, call, "estimate was $0.05, now none"},
		{"ttl", ReserveOptions{ID: "r1", Estimate: same, TTL: time.Hour}, call, "ttl was 1m0s, now 1h0m0s"},
		{"params", ReserveOptions{ID: "r1", Estimate: same, TTL: time.Minute}, Call{Account: "a", Tool: "Bash", Params: map[string]any{"command": "rm"}}, "params differ"},
		{"tool", ReserveOptions{ID: "r1", Estimate: same, TTL: time.Minute}, Call{Account: "a", Tool: "Read", Params: call.Params}, `tool was "Bash", now "Read"`},
	}
	for _, c := range cases {
		if _, _, err := e.Reserve(ctx, c.call, c.opt); !errors.Is(err, ErrReservationConflict) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want a conflict saying %q", c.name, err, c.want)
		}
	}
}

func TestFailedToolThatReportsItsCostIsCharged(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	toolErr := errors.New("provider timed out after streaming")
	res, err := e.Execute(ctx, "a", "LLM", nil, func(context.Context) (any, error) { return billed{MustParseUSD("0.03")}, toolErr })
	if !errors.Is(err, toolErr) {
		t.Errorf("err = %v; want the tool's error", err)
	}
	if r := res.Reservation; r.State != StateCommitted || r.Charged != MustParseUSD("0.03") || r.CostSource != CostActual {
		t.Errorf("failed tool with a reported cost: %+v; want committed at $0.03", r)
	}
	extract := WithCostExtractor(func(v any) (Nanos, bool) { return v.(Nanos), true })
	res, err = e.Execute(ctx, "a", "Read", nil, func(context.Context) (any, error) { return Nanos(7), toolErr }, extract)
	if !errors.Is(err, toolErr) || res.Reservation.Charged != 7 {
		t.Errorf("extractor on a failed tool: %+v %v; want 7 nano-USD charged", res.Reservation, err)
	}
	res, err = e.Execute(ctx, "a", "Read", nil, func(context.Context) (any, error) { return nil, toolErr }, extract)
	if !errors.Is(err, toolErr) || res.Reservation.State != StateReleased {
		t.Errorf("failed tool reporting nothing: %+v %v; want released", res.Reservation, err)
	}
	wantSpend(t, e, "a", MustParseUSD("0.03")+7, 0)
}

func wantSpend(t *testing.T, e *Enforcer, account string, committed, pending Nanos) {
	t.Helper()
	snap, err := e.Ledger().Snapshot(context.Background(), account)
	if err != nil || snap.Committed != committed || snap.Pending != pending {
		t.Errorf("%s: committed %s pending %s (%v); want %s and %s", account, snap.Committed, snap.Pending, err, committed, pending)
	}
}
