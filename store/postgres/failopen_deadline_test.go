package postgres_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// A caller whose own deadline passes (while its operation is queued or in
// flight) is not an outage: it must not switch a healthy host into fail-open,
// where later calls would skip the budget.
func TestCallerDeadlineDoesNotSwitchAHealthyHostToFailOpen(t *testing.T) {
	l, _ := viaProxy(t, enforcer.LedgerOptions{})
	f := newFailOpen(t, l, filepath.Join(t.TempDir(), "journal"), 0)
	defer f.Close()
	ctx := context.Background()
	zero := enforcer.Nanos(0)
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "broke", Limit: &zero}); err != nil {
		t.Fatal(err)
	}
	expired, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-expired.Done()
	if _, err := f.Reserve(expired, enforcer.ReserveRequest{ID: "s1", Account: "broke", Estimate: 5, TTL: time.Minute}); err == nil {
		t.Fatal("a reserve whose deadline had passed was admitted on a $0 account")
	}
	_, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: "s2", Account: "broke", Estimate: 5, TTL: time.Minute})
	if !errors.Is(err, enforcer.ErrInsufficientBudget) {
		t.Fatalf("database healthy, limit $0: reserve s2 = %v, want a budget refusal (the earlier deadline put the host in fail-open)", err)
	}
}
