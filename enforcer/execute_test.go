package enforcer

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

type billed struct{ cost Nanos }

func (b billed) ActualCost() (Nanos, bool) { return b.cost, true }

func TestExecuteSettles(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})

	res, err := e.Execute(ctx, "a", "Bash", nil, func(context.Context) (any, error) { return billed{MustParseUSD("0.004")}, nil })
	if err != nil || res.Reservation.State != StateCommitted || res.Reservation.Charged != MustParseUSD("0.004") || res.Reservation.CostSource != CostActual {
		t.Fatalf("actual cost: %+v %v", res.Reservation, err)
	}
	res, err = e.Execute(ctx, "a", "Bash", nil, func(context.Context) (any, error) { return "no cost", nil })
	if err != nil || res.Reservation.Charged != MustParseUSD("0.01") || res.Reservation.CostSource != CostEstimated {
		t.Fatalf("no reported cost must charge the estimate: %+v %v", res.Reservation, err)
	}
	toolErr := errors.New("disk full")
	res, err = e.Execute(ctx, "a", "Bash", nil, func(context.Context) (any, error) { return nil, toolErr })
	if !errors.Is(err, toolErr) || res.Reservation.ID == "" {
		t.Fatalf("tool error: %v", err)
	}
	if r, _ := e.Ledger().Reservation(ctx, res.Reservation.ID); r.State != StateReleased {
		t.Errorf("failed tool's hold: %s; want released", r.State)
	}
	extract := WithCostExtractor(func(v any) (Nanos, bool) { return v.(Nanos), true })
	if res, err = e.Execute(ctx, "a", "Read", nil, func(context.Context) (any, error) { return Nanos(7), nil }, extract); err != nil || res.Reservation.Charged != 7 {
		t.Fatalf("extractor: %+v %v", res.Reservation, err)
	}
	snap, _ := e.Ledger().Snapshot(ctx, "a")
	if want := MustParseUSD("0.014") + 7; snap.Committed != want || snap.Pending != 0 {
		t.Errorf("account: committed %s pending %s; want %s and 0", snap.Committed, snap.Pending, want)
	}
}

func TestExecuteReleasesOnPanic(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic was swallowed")
			}
		}()
		_, _ = e.Execute(ctx, "a", "Bash", nil, func(context.Context) (any, error) { panic("tool exploded") })
	}()
	if snap, _ := e.Ledger().Snapshot(ctx, "a"); snap.Pending != 0 || snap.Committed != 0 {
		t.Errorf("after a panicking tool: %+v; want nothing held or charged", snap)
	}
}

func TestExecuteDeniedDoesNotRun(t *testing.T) {
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("0.05")})
	res, err := e.Execute(context.Background(), "a", "Agent", nil, func(context.Context) (any, error) {
		t.Fatal("denied tool ran")
		return nil, nil
	})
	if err != nil || res.Decision.Verdict != Deny || res.Value != nil {
		t.Errorf("%+v %v", res, err)
	}
	if _, err := e.Execute(context.Background(), "missing", "Read", nil, nil); !errors.Is(err, ErrAccountNotFound) {
		t.Errorf("unknown account: err = %v; want ErrAccountNotFound", err)
	}
}

func TestResultCache(t *testing.T) {
	ctx := context.Background()
	clock := &stepClock{t: time.Unix(1_700_000_000, 0)}
	e := newTestEnforcer(t, Config{Clock: clock})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	cache, err := NewResultCache(clock, time.Minute, 2)
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	run := func(context.Context) (any, error) { runs++; return runs, nil }
	p1 := map[string]any{"path": "/x", "opts": map[string]any{"b": 1, "a": 2}}
	p1Reordered := map[string]any{"opts": map[string]any{"a": 2, "b": 1}, "path": "/x"}

	first, _ := e.Execute(ctx, "a", "Read", p1, run, WithCache(cache))
	second, err := e.Execute(ctx, "a", "Read", p1Reordered, run, WithCache(cache))
	if err != nil || !second.Cached || second.Value != 1 || runs != 1 {
		t.Fatalf("identical call: cached=%v value=%v runs=%d err=%v", second.Cached, second.Value, runs, err)
	}
	if second.Reservation.Charged != 0 || second.Reservation.CostSource != CostCache || first.Reservation.Charged == 0 {
		t.Errorf("cache hit settles at 0 with cost_source=cache: %+v", second.Reservation)
	}
	if other, _ := e.Execute(ctx, "a", "Grep", p1, run, WithCache(cache)); other.Cached {
		t.Error("another tool with the same params hit the cache")
	}
	clock.advance(2 * time.Minute)
	if later, _ := e.Execute(ctx, "a", "Read", p1, run, WithCache(cache)); later.Cached {
		t.Error("expired entry served")
	}
	if cache.Len() > 2 {
		t.Errorf("cache holds %d entries; bound is 2", cache.Len())
	}
}

func TestCostLogLine(t *testing.T) {
	var buf bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Debug})
	e := newTestEnforcer(t, Config{Logger: logger})
	mustAccount(t, e, AccountSpec{ID: "a"})
	if _, err := e.Execute(context.Background(), "a", "Read", nil, func(context.Context) (any, error) { return billed{3_000_000}, nil }); err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	for _, want := range []string{"operation cost", "tool=Read", "estimate_usd=0.001", "actual_usd=0.003", "source=table", "account_total_usd=0.003"} {
		if !strings.Contains(line, want) {
			t.Errorf("cost line %q lacks %q", line, want)
		}
	}
}

func TestThresholdAlertsReachNotifier(t *testing.T) {
	var mu sync.Mutex
	var got []Alert
	note := NotifierFunc(func(a Alert) { mu.Lock(); got = append(got, a); mu.Unlock() })
	var buf bytes.Buffer
	logN := LogNotifier{Logger: hclog.New(&hclog.LoggerOptions{Output: &buf})}
	l := NewMemoryLedger(LedgerOptions{Notifier: MultiNotifier{note, logN}})
	e, _ := New(l, Config{Table: CostTable{"T": MustParseUSD("0.30")}})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	for range 3 { // 30%, 60%, 90%
		if res, err := e.Execute(context.Background(), "a", "T", nil, func(context.Context) (any, error) { return nil, nil }); err != nil || !res.Decision.Allowed() {
			t.Fatal(res.Decision, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var pcts []int
	for _, a := range got {
		pcts = append(pcts, a.ThresholdPct)
	}
	if len(pcts) != 3 || pcts[0] != 50 || pcts[1] != 75 || pcts[2] != 90 || got[2].Level != AlertWarning {
		t.Errorf("alerts = %+v; want 50, 75, 90 once each", got)
	}
	if !strings.Contains(buf.String(), "budget threshold crossed") || !strings.Contains(buf.String(), "threshold_pct=90") {
		t.Errorf("log notifier wrote %q", buf.String())
	}
}

func TestNegativeReportedCostChargesTheEstimate(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a"})
	res, err := e.Execute(ctx, "a", "Bash", nil, func(context.Context) (any, error) { return billed{-5}, nil })
	if err == nil || res.Reservation.State != StateCommitted || res.Reservation.Charged != MustParseUSD("0.01") || res.Reservation.CostSource != CostEstimated {
		t.Errorf("negative cost: %+v %v; want the estimate charged and an error", res.Reservation, err)
	}
}

func TestCacheHitThatAsksGoesToTheApprover(t *testing.T) {
	ctx := context.Background()
	asked := 0
	ap := ApproverFunc(func(context.Context, ApprovalRequest) (bool, string, error) { asked++; return true, "", nil })
	e := newTestEnforcer(t, Config{Policies: []PolicySpec{askPolicy()}, Approver: ap})
	mustAccount(t, e, AccountSpec{ID: "a"})
	cache, _ := NewResultCache(SystemClock{}, time.Minute, 8)
	run := func(context.Context) (any, error) { return "v", nil }
	if res, err := e.Execute(ctx, "a", "Bash", nil, run, WithCache(cache)); err != nil || res.Value != "v" {
		t.Fatal(res, err)
	}
	res, err := e.Execute(ctx, "a", "Bash", nil, run, WithCache(cache))
	if err != nil || !res.Cached || res.Value != "v" || asked != 2 || len(e.Approvals().List(ApprovalPending)) != 0 {
		t.Errorf("cached ask: %+v %v asked=%d", res, err, asked)
	}
}
