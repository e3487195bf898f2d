package enforcer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// holdTool returns a tool that extends its own hold by each amount in
// turn and reports cost (no cost when cost < 0), recording what it saw.
type holdTool struct {
	adds []Nanos
	cost Nanos
	errs []error
	id   string
}

func (h *holdTool) run(ctx context.Context) (any, error) {
	hold, ok := HoldFrom(ctx)
	if !ok {
		return nil, errors.New("no hold in the tool's context")
	}
	h.id = hold.ID()
	for _, add := range h.adds {
		_, err := hold.Extend(ctx, add)
		h.errs = append(h.errs, err)
		if err != nil {
			break // a streaming tool stops at a denied extension
		}
	}
	if h.cost < 0 {
		return "no cost", nil
	}
	return billed{h.cost}, nil
}

func TestExecuteToolExtendsItsHold(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	tool := &holdTool{adds: []Nanos{MustParseUSD("0.02"), MustParseUSD("0.03")}, cost: -1}
	res, err := e.Execute(ctx, "a", "Bash", nil, tool.run)
	if err != nil || tool.errs[0] != nil || tool.errs[1] != nil {
		t.Fatalf("execute: %v, extensions %v", err, tool.errs)
	}
	r := res.Reservation
	if r.Extended != MustParseUSD("0.05") || r.Charged != MustParseUSD("0.06") || r.CostSource != CostEstimated {
		t.Errorf("no reported cost must charge the whole hold ($0.01 + $0.05): %+v", r)
	}
	// The ids are deterministic: <id>/x0, <id>/x1 (a retry is idempotent).
	again, err := e.Extend(ctx, ExtendRequest{ID: tool.id, ExtensionID: tool.id + "/x1", Add: MustParseUSD("0.03")})
	if err != nil || again.Extended != MustParseUSD("0.05") {
		t.Errorf("retry of the second extension: %+v, %v", again, err)
	}
	if snap, _ := e.Ledger().Snapshot(ctx, "a"); snap.Committed != MustParseUSD("0.06") || snap.Pending != 0 {
		t.Errorf("account: %+v", snap)
	}
}

func TestExecuteDeniedExtensionStopsTheTool(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("0.05")})
	tool := &holdTool{adds: []Nanos{MustParseUSD("0.03"), MustParseUSD("0.03"), MustParseUSD("0.01")}, cost: MustParseUSD("0.045")}
	res, err := e.Execute(ctx, "a", "Bash", nil, tool.run)
	if err != nil {
		t.Fatal(err)
	}
	if len(tool.errs) != 2 || tool.errs[0] != nil {
		t.Fatalf("extensions %v; want one granted, then a deny that stops the tool", tool.errs)
	}
	var ib *InsufficientBudgetError
	if !errors.As(tool.errs[1], &ib) || ib.Estimate != MustParseUSD("0.03") || ib.Remaining != MustParseUSD("0.01") {
		t.Errorf("deny %v, want the budget deny for $0.03 with $0.01 remaining", tool.errs[1])
	}
	if r := res.Reservation; r.Extended != MustParseUSD("0.03") || r.Charged != MustParseUSD("0.045") || r.CostSource != CostActual {
		t.Errorf("reservation %+v: the denied extension must change nothing, the reported cost is charged", r)
	}
}

func TestExecuteFailedToolReleasesExtendedHold(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	toolErr := errors.New("stream broke")
	_, err := e.Execute(ctx, "a", "Bash", nil, func(ctx context.Context) (any, error) {
		h, _ := HoldFrom(ctx)
		if _, err := h.Extend(ctx, MustParseUSD("0.5")); err != nil {
			return nil, err
		}
		return nil, toolErr
	})
	if !errors.Is(err, toolErr) {
		t.Fatalf("execute: %v", err)
	}
	if snap, _ := e.Ledger().Snapshot(ctx, "a"); snap.Pending != 0 || snap.Committed != 0 {
		t.Errorf("after a failed tool: %+v; the whole hold must be released", snap)
	}
}

// TestHoldExtendAfterLostReply: extension x0 was granted with another
// amount (its reply lost); the hold keeps it and takes the next number.
func TestHoldExtendAfterLostReply(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	_, err := e.Execute(ctx, "a", "Bash", nil, func(ctx context.Context) (any, error) {
		h, _ := HoldFrom(ctx)
		if _, err := e.Extend(ctx, ExtendRequest{ID: h.ID(), ExtensionID: h.ID() + "/x0", Add: 7}); err != nil {
			return nil, err
		}
		r, err := h.Extend(ctx, 5)
		if err != nil || r.Extended != 12 {
			t.Errorf("extend after a lost reply: %+v, %v; want both held", r, err)
		}
		return billed{1}, nil
	}, WithReservationID("lost"))
	if err != nil {
		t.Fatal(err)
	}
}

func TestHoldConcurrentExtensions(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	res, err := e.Execute(ctx, "a", "Bash", nil, func(ctx context.Context) (any, error) {
		h, _ := HoldFrom(ctx)
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := h.Extend(ctx, 1); err != nil {
					t.Errorf("extend: %v", err)
				}
			}()
		}
		wg.Wait()
		return "no cost", nil
	})
	if err != nil || res.Reservation.Extended != 20 || res.Reservation.Charged != MustParseUSD("0.01")+20 {
		t.Errorf("20 concurrent extensions of 1 nano-USD: %+v, %v", res.Reservation, err)
	}
}

func TestHoldFromOutsideExecute(t *testing.T) {
	if h, ok := HoldFrom(context.Background()); ok || h != nil {
		t.Errorf("HoldFrom outside Execute = %v, %v", h, ok)
	}
}

func TestExtensionIDFitsItsBound(t *testing.T) {
	if got := extensionID("res-1", 3); got != "res-1/x3" {
		t.Errorf("extensionID = %q", got)
	}
	long := strings.Repeat("r", MaxExtensionIDLen)
	if got := extensionID(long, 12); got != "x12" {
		t.Errorf("extensionID of a long id = %q, want x12", got)
	}
	if got := extensionID(strings.Repeat("r", MaxExtensionIDLen-3), 0); len(got) != MaxExtensionIDLen {
		t.Errorf("an id that just fits: %q (%d bytes)", got, len(got))
	}
}
