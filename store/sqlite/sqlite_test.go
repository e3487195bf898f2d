package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/sqlite"
)

// TestNotifierMayWrite: alerts are delivered after the write transaction
// committed and outside the writer, so a notifier may itself write to the
// ledger (inside the writer this would deadlock).
func TestNotifierMayWrite(t *testing.T) {
	ctx := context.Background()
	var l *sqlite.Ledger
	var seen atomic.Int64
	notifier := enforcer.NotifierFunc(func(a enforcer.Alert) {
		if _, err := l.SetLabels(ctx, a.Account, map[string]string{"alert": fmt.Sprint(a.ThresholdPct)}); err != nil {
			t.Errorf("notifier writing: %v", err)
		}
		seen.Add(1)
	})
	l = openTemp(t, enforcer.LedgerOptions{Notifier: notifier})
	limit := enforcer.USD(1, 0)
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a", Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "a", Estimate: limit, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Commit(ctx, "r", nil, ""); err != nil {
		t.Fatal(err)
	}
	if n := seen.Load(); n != 4 {
		t.Errorf("%d alerts at 100%%, want 4 (50, 75, 90, 100)", n)
	}
	if s, _ := l.Snapshot(ctx, "a"); s.Labels["alert"] == "" {
		t.Errorf("notifier's write is missing: %v", s.Labels)
	}
}

// TestTwoLedgersOneFile: two Ledgers on one file (separate connections, as
// two processes would have) never overspend a shared limit, and callers
// never see SQLITE_BUSY: BEGIN IMMEDIATE plus the busy timeout serialise
// the two writers, and every check reads inside the write transaction.
func TestTwoLedgersOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	open := func() *sqlite.Ledger {
		l, err := sqlite.Open(ctx, path, enforcer.LedgerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b := open(), open()
	limit := enforcer.USD(1, 0)
	if _, err := a.CreateAccount(ctx, enforcer.AccountSpec{ID: "pool", Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 300 {
		l := []*sqlite.Ledger{a, b}[i%2]
		wg.Go(func() {
			_, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: fmt.Sprint("r", i), Account: "pool",
				Estimate: enforcer.USD(0, 10_000_000), TTL: time.Hour})
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, enforcer.ErrInsufficientBudget):
				t.Errorf("reserve r%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 100 {
		t.Errorf("admitted %d reservations of $0.01 against $1, want 100", ok.Load())
	}
	for _, l := range []*sqlite.Ledger{a, b} {
		if s, err := l.Snapshot(ctx, "pool"); err != nil || s.Pending != limit {
			t.Errorf("pool pending %s, %v; want %s", s.Pending, err, limit)
		}
	}
}

// TestBatchIsolation: in a group commit, requests that fail (denied,
// conflicting, settled) roll back to their savepoint and leave no trace,
// while the requests batched with them are all kept.
func TestBatchIsolation(t *testing.T) {
	ctx := context.Background()
	l := openTemp(t, enforcer.LedgerOptions{})
	limit := enforcer.USD(1, 0)
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a", Limit: &limit}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "free"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var okFree atomic.Int64
	for i := range 400 {
		wg.Go(func() {
			var err error
			switch i % 4 {
			case 0: // fits in "free" always
				_, err = l.Reserve(ctx, enforcer.ReserveRequest{ID: fmt.Sprint("f", i), Account: "free", Estimate: 7, TTL: time.Hour})
				if err == nil {
					okFree.Add(1)
				}
			case 1: // denied: larger than the limit
				_, err = l.Reserve(ctx, enforcer.ReserveRequest{ID: fmt.Sprint("d", i), Account: "a", Estimate: limit + 1, TTL: time.Hour})
				if errors.Is(err, enforcer.ErrInsufficientBudget) {
					err = nil
				}
			case 2: // unknown reservation
				_, err = l.Commit(ctx, fmt.Sprint("missing", i), nil, "")
				if errors.Is(err, enforcer.ErrReservationNotFound) {
					err = nil
				}
			case 3: // unknown account
				_, err = l.Reserve(ctx, enforcer.ReserveRequest{ID: fmt.Sprint("g", i), Account: "ghost", Estimate: 1, TTL: time.Hour})
				if errors.Is(err, enforcer.ErrAccountNotFound) {
					err = nil
				}
			}
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if okFree.Load() != 100 {
		t.Errorf("%d of 100 good reservations succeeded", okFree.Load())
	}
	if s, _ := l.Snapshot(ctx, "free"); s.Pending != 700 {
		t.Errorf("free pending %d, want 700", s.Pending)
	}
	if s, _ := l.Snapshot(ctx, "a"); s.Pending != 0 || s.Committed != 0 {
		t.Errorf("denied requests left %+v", s)
	}
	for i := 1; i < 400; i += 4 {
		if _, err := l.Reservation(ctx, fmt.Sprint("d", i)); !errors.Is(err, enforcer.ErrReservationNotFound) {
			t.Fatalf("denied d%d stored: %v", i, err)
		}
	}
}

// TestCancelledContext: a write whose context is already done does
// nothing and says so; the ledger carries on for everyone else.
func TestCancelledContext(t *testing.T) {
	l := openTemp(t, enforcer.LedgerOptions{})
	ctx := context.Background()
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err := l.Reserve(done, enforcer.ReserveRequest{ID: "r", Account: "a", Estimate: 1, TTL: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("reserve with a cancelled context: %v", err)
	}
	if _, err := l.Reservation(ctx, "r"); !errors.Is(err, enforcer.ErrReservationNotFound) {
		t.Errorf("cancelled reserve stored something: %v", err)
	}
	if _, err := l.Snapshot(done, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("snapshot with a cancelled context: %v", err)
	}
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "a", Estimate: 1, TTL: time.Minute}); err != nil {
		t.Errorf("reserve after a cancelled one: %v", err)
	}
}
