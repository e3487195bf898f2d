package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/postgres"
)

// During an outage a hold in the shared ledger cannot grow (refused as
// unavailable: its budget is read there), while a hold admitted by
// fail-open grows within CallMax (10) and TotalMax (25), idempotently.
func TestFailOpenExtendBounded(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	f := newFailOpen(t, l, filepath.Join(t.TempDir(), "journal"), 0)
	defer f.Close()
	ctx := context.Background()
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: "shared", Account: "a", Estimate: 2, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	if _, err := f.Extend(ctx, enforcer.ExtendRequest{ID: "shared", ExtensionID: "e", Add: 1}); !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		t.Errorf("extend a shared-ledger hold while unreachable: %v; want ErrLedgerUnavailable", err)
	}
	for _, id := range []string{"o1", "o2"} {
		if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "a", Estimate: 4, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	ext := enforcer.ExtendRequest{ID: "o1", ExtensionID: "e1", Add: 6}
	for range 2 {
		if r, err := f.Extend(ctx, ext); err != nil || r.Held() != 10 {
			t.Fatalf("extend an outage hold to CallMax (and retry): %+v %v", r, err)
		}
	}
	if _, err := f.Extend(ctx, enforcer.ExtendRequest{ID: "o1", ExtensionID: "e1", Add: 5}); !errors.Is(err, enforcer.ErrReservationConflict) {
		t.Errorf("same extension id, other amount: %v; want a conflict", err)
	}
	if _, err := f.Extend(ctx, enforcer.ExtendRequest{ID: "o1", ExtensionID: "e2", Add: 1}); !errors.Is(err, postgres.ErrUnavailable) {
		t.Errorf("extend past CallMax: %v; want refused as unavailable", err)
	}
	if got := f.Unwritten(); got != 14 {
		t.Errorf("unwritten %s; want the two holds, 10 + 4", got)
	}
	// 14 held: o2 may grow to 10 per call, but only 11 more fit TotalMax 25.
	if r, err := f.Extend(ctx, enforcer.ExtendRequest{ID: "o2", ExtensionID: "e", Add: 6}); err != nil || r.Held() != 10 {
		t.Fatalf("extend o2 within both limits: %+v %v", r, err)
	}
	if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: "o3", Account: "a", Estimate: 5, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Extend(ctx, enforcer.ExtendRequest{ID: "o3", ExtensionID: "e", Add: 1}); !errors.Is(err, postgres.ErrUnavailable) {
		t.Errorf("extend past TotalMax: %v; want refused as unavailable", err)
	}
	if _, err := f.Release(ctx, "o2"); err != nil {
		t.Fatal(err)
	}
	if got := f.Unwritten(); got != 15 {
		t.Errorf("unwritten %s after releasing o2; want 15 (its whole hold gone)", got)
	}
}

// A commit during an outage journals the charge with its usage and price
// source; written back, the shared ledger records them with the hold's
// extension, and so does a restart that replays the journal.
func TestFailOpenCommitWithUsageWrittenBack(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	journal := filepath.Join(t.TempDir(), "journal")
	f := newFailOpen(t, l, journal, 0)
	ctx := context.Background()
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: "o", Account: "a", Tool: "llm", Estimate: 4, TTL: time.Minute,
		BaseEstimate: 3, CalibrationKey: "a|llm|m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Extend(ctx, enforcer.ExtendRequest{ID: "o", ExtensionID: "e", Add: 2}); err != nil {
		t.Fatal(err)
	}
	u := enforcer.TokenUsage{Model: "m", InputTokens: 10, OutputTokens: 20}
	actual := enforcer.Nanos(5)
	c, err := f.CommitWith(ctx, enforcer.CommitRequest{ID: "o", Actual: &actual, Usage: &u, PriceSource: "table:m"})
	if err != nil || c.Usage == nil || *c.Usage != u || c.Extended != 2 {
		t.Fatalf("commit with usage during the outage: %+v %v", c, err)
	}
	if err := f.Close(); err != nil { // still down: the charge stays in the journal
		t.Fatal(err)
	}
	p.setDown(false)
	l2, err := postgres.Open(ctx, p.dsn, enforcer.LedgerOptions{}, postgres.WithSchema(p.schema))
	if err != nil {
		t.Fatal(err)
	}
	f2 := newFailOpen(t, l2, journal, 0)
	defer f2.Close()
	syncUntilWritten(t, f2)
	r, err := l2.Reservation(ctx, "o")
	if err != nil || r.State != enforcer.StateCommitted || r.Charged != 5 || r.Usage == nil || *r.Usage != u ||
		r.PriceSource != "table:m" || r.Extended != 2 || r.BaseEstimate != 3 || r.CalibrationKey != "a|llm|m" {
		t.Errorf("written back after a restart: %+v %v; want the charge with its usage, price source and hold", r, err)
	}
}

// Many callers reserving, extending (each extension sent twice), committing
// and releasing outage holds at once never take a hold past CallMax or
// the host past TotalMax, and every extension is added once.
func TestFailOpenExtendHammer(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	f, err := postgres.NewFailOpen(l, postgres.FailOpenOptions{CallMax: 100, TotalMax: 1000, SyncEvery: time.Hour,
		JournalPath: filepath.Join(t.TempDir(), "journal")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	var wg sync.WaitGroup
	for g := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("h", g)
			if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "a", Estimate: 10, TTL: time.Minute}); err != nil {
				return // the total is full: refused as unavailable
			}
			var inner sync.WaitGroup
			var mu sync.Mutex
			granted := map[int]bool{} // extension ids that succeeded
			for e := range 12 {
				for range 2 {
					inner.Add(1)
					go func() {
						defer inner.Done()
						r, err := f.Extend(ctx, enforcer.ExtendRequest{ID: id, ExtensionID: fmt.Sprint(e), Add: 10})
						if err == nil && r.Held() > 100 {
							t.Errorf("%s holds %s, above CallMax", id, r.Held())
						}
						if err == nil {
							mu.Lock()
							granted[e] = true
							mu.Unlock()
						}
						if err != nil && !errors.Is(err, enforcer.ErrLedgerUnavailable) {
							t.Errorf("extend %s/%d: %v", id, e, err)
						}
						if u := f.Unwritten(); u > 1000 {
							t.Errorf("unwritten %s, above TotalMax", u)
						}
					}()
				}
			}
			inner.Wait()
			r, _ := f.Reservation(ctx, id)
			if r.Extended != enforcer.Nanos(10*len(granted)) || r.Held() > 100 {
				t.Errorf("%s: %+v: %d extensions granted: one added twice, or past CallMax", id, r, len(granted))
			}
			var err error
			if g%2 == 0 {
				_, err = f.Commit(ctx, id, nil, "")
			} else {
				_, err = f.Release(ctx, id)
			}
			if err != nil {
				t.Errorf("settle %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	var committed enforcer.Nanos
	for g := 0; g < 40; g += 2 {
		if r, err := f.Reservation(ctx, fmt.Sprint("h", g)); err == nil && r.State == enforcer.StateCommitted {
			committed += r.Charged
		}
	}
	if u := f.Unwritten(); u != committed || u > 1000 {
		t.Errorf("unwritten %s, committed outage charges %s (TotalMax 1000)", u, committed)
	}
}
