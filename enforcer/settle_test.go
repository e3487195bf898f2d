package enforcer

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// settleEnforcer has a two-model price table and a pending $1.00 hold "r"
// on account "a" ($10 limit).
func settleEnforcer(t *testing.T) *Enforcer {
	t.Helper()
	per := func(s string) PerMTok {
		p, err := ParsePerMTokUSD(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	prices := PriceTable{
		"cheap": {Input: per("1"), Output: per("2")},
		"dear":  {Input: per("3"), Output: per("15"), CacheRead: per("0.3"), CacheWrite: per("3.75")},
		"huge":  {Input: per("1"), Output: PerMTok(math.MaxInt64 / 4)},
	}
	e := newTestEnforcer(t, Config{LLM: LLMRule{Prices: prices}})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("10")})
	if _, err := e.Ledger().Reserve(context.Background(), ReserveRequest{ID: "r", Account: "a", Tool: "LLM", Estimate: MustParseUSD("1"), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	return e
}

// wantPending asserts a refused commit left the hold as it was.
func wantPending(t *testing.T, e *Enforcer, id string) {
	t.Helper()
	r, err := e.Ledger().Reservation(context.Background(), id)
	if err != nil || r.State != StatePending || r.Charged != 0 {
		t.Errorf("after a refused commit %s is %+v, %v; want it pending", id, r, err)
	}
}

func TestEnforcerCommitPricesUsage(t *testing.T) {
	e := settleEnforcer(t)
	u := TokenUsage{Model: "dear", InputTokens: 1000, OutputTokens: 500, CacheReadTokens: 10_000, CacheWriteTokens: 2000}
	r, err := e.Commit(context.Background(), CommitRequest{ID: "r", Usage: &u})
	if err != nil {
		t.Fatal(err)
	}
	// $3/M x 1000 + $15/M x 500 + $0.30/M x 10,000 + $3.75/M x 2000
	want := MustParseUSD("0.003") + MustParseUSD("0.0075") + MustParseUSD("0.003") + MustParseUSD("0.0075")
	if r.Charged != want || r.CostSource != CostActual || r.State != StateCommitted {
		t.Errorf("charged %s (%s, %s), want %s actual", r.Charged, r.CostSource, r.State, want)
	}
	if r.Usage == nil || *r.Usage != u || r.PriceSource != "table:dear" || IsFallbackPriceSource(r.PriceSource) {
		t.Errorf("recorded usage %+v source %q", r.Usage, r.PriceSource)
	}
}

func TestEnforcerCommitUnknownModelIsFlaggedFallback(t *testing.T) {
	e := settleEnforcer(t)
	r, err := e.Commit(context.Background(), CommitRequest{ID: "r", Usage: &TokenUsage{Model: "gpt-99", InputTokens: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if !IsFallbackPriceSource(r.PriceSource) || !strings.Contains(r.PriceSource, "dear") {
		t.Errorf("price source %q, want the fallback (the dearest input price: dear)", r.PriceSource)
	}
	if r.Charged != MustParseUSD("0.003") || r.CostSource != CostActual {
		t.Errorf("charged %s (%s) at the fallback's $3/M input, want $0.003 actual", r.Charged, r.CostSource)
	}
}

func TestEnforcerCommitBadUsageNamesTheField(t *testing.T) {
	for _, c := range []struct {
		usage TokenUsage
		field string
	}{
		{TokenUsage{Model: "cheap", InputTokens: -1}, "usage.input_tokens"},
		{TokenUsage{Model: "cheap", OutputTokens: -5}, "usage.output_tokens"},
		{TokenUsage{Model: "cheap", CacheReadTokens: MaxUsageTokens + 1}, "usage.cache_read_tokens"},
		{TokenUsage{Model: "cheap", CacheWrite1hTokens: math.MaxInt64}, "usage.cache_write_1h_tokens"},
		{TokenUsage{InputTokens: 1}, "usage.model"},
		// 1e9 output tokens at a price near MaxInt64/4 per million overflows int64.
		{TokenUsage{Model: "huge", OutputTokens: MaxUsageTokens}, "usage"},
	} {
		e := settleEnforcer(t)
		u := c.usage
		_, err := e.Commit(context.Background(), CommitRequest{ID: "r", Usage: &u})
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Field != c.field || !errors.Is(err, ErrInvalidParams) {
			t.Errorf("usage %+v: %v, want a *UsageError naming %s", c.usage, err, c.field)
			continue
		}
		if c.field == "usage" && !strings.Contains(err.Error(), "overflow") {
			t.Errorf("overflow error %q does not say so", err)
		}
		wantPending(t, e, "r")
	}
}

func TestEnforcerCommitActualBesideUsage(t *testing.T) {
	e := settleEnforcer(t)
	actual := MustParseUSD("0.02")
	u := TokenUsage{Model: "cheap", InputTokens: 1000, OutputTokens: 1000}
	r, err := e.Commit(context.Background(), CommitRequest{ID: "r", Actual: &actual, Usage: &u})
	if err != nil {
		t.Fatal(err)
	}
	if r.Charged != actual || r.CostSource != CostActual {
		t.Errorf("charged %s (%s), want the actual $0.02", r.Charged, r.CostSource)
	}
	if r.Usage == nil || *r.Usage != u || r.PriceSource != "table:cheap" {
		t.Errorf("usage beside an actual: %+v %q", r.Usage, r.PriceSource)
	}
}

func TestEnforcerCommitChargesExtendedHold(t *testing.T) {
	e := settleEnforcer(t)
	ctx := context.Background()
	if _, err := e.Extend(ctx, ExtendRequest{ID: "r", ExtensionID: "r/x0", Add: MustParseUSD("0.5")}); err != nil {
		t.Fatal(err)
	}
	r, err := e.Commit(ctx, CommitRequest{ID: "r"})
	if err != nil || r.Charged != MustParseUSD("1.5") || r.CostSource != CostEstimated {
		t.Errorf("commit without actual or usage: %+v, %v; want the $1.50 hold", r, err)
	}
}
