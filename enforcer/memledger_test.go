package enforcer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/enforcer/ledgertest"
)

func newMemoryLedger(_ *testing.T, opts enforcer.LedgerOptions) enforcer.Ledger {
	return enforcer.NewMemoryLedger(opts)
}

func TestMemoryLedgerConformance(t *testing.T) {
	ledgertest.Run(t, newMemoryLedger)
}

// Library users may never call Sweep: settled reservations must still be
// forgotten once their retention passes, or memory grows forever.
func TestMemoryLedgerForgetsWithoutSweep(t *testing.T) {
	ctx := context.Background()
	clock := ledgertest.NewFakeClock(ledgertest.Epoch())
	l := enforcer.NewMemoryLedger(enforcer.LedgerOptions{Clock: clock, RetainSettled: time.Minute})
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		id := fmt.Sprintf("old-%d", i)
		if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "a", Estimate: 1, TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Commit(ctx, id, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Minute)
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "new", Account: "a", Estimate: 1, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reservation(ctx, "old-3"); !errors.Is(err, enforcer.ErrReservationNotFound) {
		t.Errorf("settled reservation past retention still held without a Sweep: %v", err)
	}
	if snap, _ := l.Snapshot(ctx, "a"); snap.Committed != 10 {
		t.Errorf("forgetting records must not change totals: committed %d", snap.Committed)
	}
}
