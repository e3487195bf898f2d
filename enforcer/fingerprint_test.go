package enforcer

import (
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
