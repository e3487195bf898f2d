package enforcer

import (
	"context"
	"math"
	"strings"
	"testing"
)

// newRetryEnforcer is newTestEnforcer over the memory ledger, which keeps
// fingerprints (the library path the retry tests exercise).
func newRetryEnforcer(t testing.TB, cfg Config) *Enforcer {
	t.Helper()
	e, err := New(NewMemoryLedger(LedgerOptions{Clock: cfg.Clock}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestFingerprintFitsTheLedgerBound(t *testing.T) {
	worst := &Estimate{Nanos: math.MinInt64}
	fp, err := reserveFingerprint(map[string]any{"p": strings.Repeat("x", 1<<16)}, worst, math.MaxInt64)
	if err != nil || len(fp) > MaxFingerprintLen {
		t.Errorf("fingerprint %q (%d bytes, %v); at most %d", fp, len(fp), err, MaxFingerprintLen)
	}
	same, _ := reserveFingerprint(map[string]any{"p": strings.Repeat("x", 1<<16)}, &Estimate{Nanos: math.MinInt64, Source: "other"}, math.MaxInt64)
	if same != fp {
		t.Error("the estimate's source changed the fingerprint; only its amount is the caller's request")
	}
}

// Only a caller-chosen id can be retried, so Execute and Reserve with a
// generated id skip the fingerprint: the hot path keeps the allocations it
// had before fingerprints (6 here, with the ledger growing unswept; the
// benchmark, which sweeps, shows 5); fingerprinting every call took 8.
func TestGeneratedIDIsNotFingerprinted(t *testing.T) {
	e := steadyEnforcer(t)
	mustAccount(t, e, AccountSpec{ID: "a"})
	ctx := context.Background()
	params := map[string]any{"path": "/tmp/x"}
	_, r, err := e.Reserve(ctx, Call{Account: "a", Tool: "Read", Params: params}, ReserveOptions{})
	if err != nil || r.Fingerprint != "" {
		t.Fatalf("generated-id reservation fingerprint %q (%v), want none", r.Fingerprint, err)
	}
	if testing.Short() {
		return // -short is the race run, whose detector allocates on its own
	}
	allocs := testing.AllocsPerRun(200, func() {
		if res, err := e.Execute(ctx, "a", "Read", nil, noop); err != nil || !res.Decision.Allowed() {
			t.Fatal(res.Decision, err)
		}
	})
	if allocs > 6 {
		t.Fatalf("Execute with a generated id allocates %.1f times, want at most 6", allocs)
	}
}
