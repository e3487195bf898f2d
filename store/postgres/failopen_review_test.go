package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// Review finding: a charge the shared ledger refuses for good (an account
// the outage could not check does not exist) stayed unwritten for ever, so
// the exposure bound shrank and the journal was never emptied. It now goes
// to the rejected file, kept for an operator, and stops counting.
func TestChargeRefusedForGoodGoesToTheRejectedFile(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	jp := filepath.Join(t.TempDir(), "journal")
	f := newFailOpen(t, l, jp, 0)
	defer f.Close()
	ctx := context.Background()
	p.setDown(true)
	if _, err := f.Reserve(ctx, enforcer.ReserveRequest{ID: "typo", Account: "no-such", Estimate: 5, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	act := enforcer.Nanos(5)
	if _, err := f.Commit(ctx, "typo", &act, ""); err != nil {
		t.Fatal(err)
	}
	p.setDown(false)
	for range 3 {
		f.Sync(ctx)
	}
	if f.Unwritten() != 0 {
		t.Fatalf("a charge the ledger refuses for good still counts as unwritten: %s", f.Unwritten())
	}
	raw, err := os.ReadFile(jp + ".rejected")
	if err != nil || !strings.Contains(string(raw), `"typo"`) || !strings.Contains(string(raw), "no-such") {
		t.Fatalf("rejected file = %q, %v; want the charge kept for an operator", raw, err)
	}
}

// Review finding: a retry of a call committed before the outage was
// admitted again during it (the host cannot see the shared ledger), the
// tool ran again, and its charge was dropped at write-back. Money spent is
// never dropped: it is written under another id.
func TestRetryOfACommittedCallDuringAnOutageIsCharged(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{})
	f := newFailOpen(t, l, filepath.Join(t.TempDir(), "journal"), 0)
	defer f.Close()
	ctx := context.Background()
	if _, err := f.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	req := enforcer.ReserveRequest{ID: "x", Account: "a", Tool: "Read", Estimate: 5, TTL: time.Minute}
	if _, err := f.Reserve(ctx, req); err != nil {
		t.Fatal(err)
	}
	three := enforcer.Nanos(3)
	if _, err := f.Commit(ctx, "x", &three, ""); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	r, err := f.Reserve(ctx, req)
	if err != nil || r.State != enforcer.StatePending {
		t.Skipf("the retry was not re-admitted during the outage (%v, %s): nothing to charge", err, r.State)
	}
	four := enforcer.Nanos(4)
	if _, err := f.Commit(ctx, "x", &four, ""); err != nil {
		t.Fatal(err)
	}
	p.setDown(false)
	syncUntilWritten(t, f)
	s, err := l.Snapshot(ctx, "a")
	if err != nil || s.Committed != 7 {
		t.Fatalf("committed %s (%v), want 7: the outage run's 4 must not be dropped", s.Committed, err)
	}
}
