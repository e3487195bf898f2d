package enforcer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// The seed's budget strategies, each expressed through the public API.

func noop(context.Context) (any, error) { return nil, nil }

func TestStrategyPerSessionAccounts(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "team", Limit: usdPtr("0.015")})
	s1, err := e.SessionAccount(ctx, "team", "s1", usdPtr("0.01"))
	if err != nil || s1 != "team/s1" {
		t.Fatal(s1, err)
	}
	if again, err := e.SessionAccount(ctx, "team", "s1", nil); err != nil || again != s1 {
		t.Fatalf("second use of a session: %q %v", again, err)
	}
	s2, _ := e.SessionAccount(ctx, "team", "s2", usdPtr("0.01"))
	if res, _ := e.Execute(ctx, s1, "Bash", nil, noop); !res.Decision.Allowed() {
		t.Fatal("s1's first call denied")
	}
	// s2 has its own $0.01, but the team has only $0.005 left.
	res, _ := e.Execute(ctx, s2, "Bash", nil, noop)
	if res.Decision.Verdict != Deny || res.Decision.BudgetAccount != "team" {
		t.Errorf("session spend must roll up to the team: %+v", res.Decision)
	}
	snap, _ := e.Ledger().Snapshot(ctx, s1)
	if snap.Labels["session"] != "s1" || snap.Committed != MustParseUSD("0.01") {
		t.Errorf("session snapshot %+v", snap)
	}
}

func TestStrategyTiers(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	snap, err := e.CreateAccount(ctx, AccountOptions{ID: "low-agent", Tier: "LOW"})
	if err != nil || *snap.Limit != USD(1, 0) || snap.Labels["tier"] != "LOW" {
		t.Fatalf("LOW tier: %+v %v", snap, err)
	}
	if snap, _ := e.CreateAccount(ctx, AccountOptions{ID: "crit", Tier: "CRITICAL"}); *snap.Limit != USD(100, 0) {
		t.Errorf("CRITICAL tier limit %s", snap.Limit)
	}
	if _, err := e.CreateAccount(ctx, AccountOptions{ID: "x", Tier: "PLATINUM"}); !errors.Is(err, ErrUnknownTier) || !strings.Contains(err.Error(), "LOW") {
		t.Errorf("unknown tier: %v", err)
	}
	if _, err := e.CreateAccount(ctx, AccountOptions{ID: "y", Tier: "LOW", Limit: usdPtr("3")}); !errors.Is(err, ErrInvalidAccount) {
		t.Errorf("tier and limit together: %v", err)
	}
}

func TestStrategyDynamicLimits(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("0.02")})
	for range 2 {
		if res, _ := e.Execute(ctx, "a", "Bash", nil, noop); !res.Decision.Allowed() {
			t.Fatal("within limit denied")
		}
	}
	if res, _ := e.Execute(ctx, "a", "Bash", nil, noop); res.Decision.Allowed() {
		t.Fatal("past limit allowed")
	}
	if _, err := e.Ledger().SetLimit(ctx, "a", usdPtr("0.03")); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.Execute(ctx, "a", "Bash", nil, noop); !res.Decision.Allowed() {
		t.Fatal("raised limit not honoured")
	}
	snap, _ := e.Ledger().SetLimit(ctx, "a", usdPtr("0.001"))
	if snap.Committed != MustParseUSD("0.03") {
		t.Errorf("lowering the limit rewrote spend: %s", snap.Committed)
	}
	if snap, _ := e.Ledger().SetLimit(ctx, "a", nil); snap.Limit != nil || snap.Remaining() != MaxNanos {
		t.Errorf("unlimited: %+v", snap)
	}
}

func TestStrategySharedPool(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{Table: CostTable{"T": MustParseUSD("0.01")}})
	mustAccount(t, e, AccountSpec{ID: "pool", Limit: usdPtr("1")})
	for i := range 4 {
		mustAccount(t, e, AccountSpec{ID: "pool/agent" + string(rune('0'+i)), Parent: "pool", Limit: usdPtr("0.40")})
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := "pool/agent" + string(rune('0'+g%4))
			if res, err := e.Execute(ctx, acct, "T", nil, noop); err == nil && res.Decision.Allowed() {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	pool, _ := e.Ledger().Snapshot(ctx, "pool")
	if admitted.Load() != 100 || pool.Committed != USD(1, 0) {
		t.Errorf("pool of $1.00 admitted %d calls of $0.01, committed %s; want exactly 100 and $1.00", admitted.Load(), pool.Committed)
	}
}

func TestStrategySupervisorWorkers(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	if _, err := e.CreateAccount(ctx, AccountOptions{ID: "sup", Limit: usdPtr("1"), Supervisor: true}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"w1", "w2"} {
		if _, err := e.CreateAccount(ctx, AccountOptions{ID: w, Parent: "sup", Limit: usdPtr("0.40")}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.CreateAccount(ctx, AccountOptions{ID: "w3", Parent: "sup", Limit: usdPtr("0.30")})
	if !errors.Is(err, ErrSupervisorBudget) || !strings.Contains(err.Error(), "Insufficient supervisor budget") {
		t.Errorf("over-allocation: %v; want Insufficient supervisor budget", err)
	}
	if _, err := e.CreateAccount(ctx, AccountOptions{ID: "w3", Parent: "sup", Limit: usdPtr("0.20")}); err != nil {
		t.Errorf("exact allocation refused: %v", err)
	}
}

func TestStrategyPercentChildren(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "parent", Limit: usdPtr("10")})
	snap, err := e.CreateAccount(ctx, AccountOptions{ID: "child", Parent: "parent", PercentOfParent: 25})
	if err != nil || *snap.Limit != MustParseUSD("2.50") {
		t.Fatalf("25%% child: %+v %v", snap, err)
	}
	if _, err := e.Ledger().SetLimit(ctx, "parent", usdPtr("100")); err != nil {
		t.Fatal(err)
	}
	if snap, _ := e.Ledger().Snapshot(ctx, "child"); *snap.Limit != MustParseUSD("2.50") {
		t.Errorf("percentage is fixed at creation; child limit now %s", snap.Limit)
	}
}
