package enforcer

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
)

// keepsFingerprints stores ReserveRequest.Fingerprint for a ledger that
// does not yet (the memory ledger gains it in the ledger half of issue 11;
// once it does, this wrapper only passes values through and can go).
type keepsFingerprints struct {
	Ledger
	mu  sync.Mutex
	fps map[string]string
}

func withFingerprints(l Ledger) Ledger {
	return &keepsFingerprints{Ledger: l, fps: map[string]string{}}
}

func (k *keepsFingerprints) fill(r Reservation, err error) (Reservation, error) {
	if err == nil && r.Fingerprint == "" {
		k.mu.Lock()
		r.Fingerprint = k.fps[r.ID]
		k.mu.Unlock()
	}
	return r, err
}

func (k *keepsFingerprints) Reserve(ctx context.Context, req ReserveRequest) (Reservation, error) {
	r, err := k.Ledger.Reserve(ctx, req)
	if err == nil {
		k.mu.Lock()
		if _, ok := k.fps[r.ID]; !ok {
			k.fps[r.ID] = req.Fingerprint
		}
		k.mu.Unlock()
	}
	return k.fill(r, err)
}

func (k *keepsFingerprints) Reservation(ctx context.Context, id string) (Reservation, error) {
	return k.fill(k.Ledger.Reservation(ctx, id))
}

func (k *keepsFingerprints) Commit(ctx context.Context, id string, actual *Nanos, source CostSource) (Reservation, error) {
	return k.fill(k.Ledger.Commit(ctx, id, actual, source))
}

func (k *keepsFingerprints) Release(ctx context.Context, id string) (Reservation, error) {
	return k.fill(k.Ledger.Release(ctx, id))
}

// newRetryEnforcer is newTestEnforcer over a ledger that keeps fingerprints.
func newRetryEnforcer(t testing.TB, cfg Config) *Enforcer {
	t.Helper()
	e, err := New(withFingerprints(NewMemoryLedger(LedgerOptions{Clock: cfg.Clock})), cfg)
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
