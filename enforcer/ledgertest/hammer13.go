package ledgertest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// hammerExtend: pairs of goroutines share a hold on a $1.00 pool with
// four children. Both reserve it (one hold), grow it a cent at a time
// under the same extension ids until denied, and commit the whole hold
// or release it, while another goroutine watches the pool. The pool
// never holds or spends past its limit, an extension retried by the
// other side counts once, and the books balance at the end.
func hammerExtend(t *testing.T, e *env, n int) {
	e.create("pool", "", "1")
	for c := range 4 {
		e.create(fmt.Sprintf("pool/%d", c), "pool", "0.4")
	}
	holds := max(1, n/2)
	var watching, over atomic.Bool
	watching.Store(true)
	done := make(chan struct{})
	go func() { // the limit holds at every instant, not only at the end
		defer close(done)
		for watching.Load() {
			if s, err := e.l.Snapshot(e.ctx, "pool"); err == nil && s.Committed+s.Pending > usd("1") {
				over.Store(true)
			}
		}
	}()
	granted := make([][extendSteps]atomic.Bool, holds)
	parallel(2*holds, func(g int) { extendWorker(t, e, g/2, &granted[g/2]) })
	watching.Store(false)
	<-done
	if over.Load() {
		t.Error("the pool held more than its limit at some instant")
	}
	checkExtendBooks(t, e, granted)
}

// extendSteps is how many cent extensions each hold asks for.
const extendSteps = 6

// extendWorker is one side of hold h. Both sides send the same requests
// (the same ids and amounts), each a retry of the other's, and both
// settle it the same way, so a hold whose one side was denied (the pool
// was full then) is still settled by the other. granted records which
// extension ids the ledger accepted.
func extendWorker(t *testing.T, e *env, h int, granted *[extendSteps]atomic.Bool) {
	id := fmt.Sprintf("h%d", h)
	req := enforcer.ReserveRequest{ID: id, Account: fmt.Sprintf("pool/%d", h%4), Tool: "LLM", Estimate: usd("0.01"), TTL: time.Hour}
	if _, err := e.l.Reserve(e.ctx, req); err != nil {
		if !errors.Is(err, enforcer.ErrInsufficientBudget) {
			t.Errorf("reserve %s: %v", id, err)
		}
		return // both sides may be denied, or one before the other reserved
	}
	for x := range extendSteps {
		_, err := e.l.Extend(e.ctx, enforcer.ExtendRequest{ID: id, ExtensionID: fmt.Sprintf("%s/x%d", id, x), Add: usd("0.01")})
		if errors.Is(err, enforcer.ErrInsufficientBudget) || errors.Is(err, enforcer.ErrReservationSettled) {
			break // a streaming caller stops here
		}
		if err != nil {
			t.Errorf("extend %s: %v", id, err)
			return
		}
		granted[x].Store(true)
	}
	var err error
	if h%5 == 4 {
		_, err = e.l.Release(e.ctx, id)
	} else {
		_, err = e.l.Commit(e.ctx, id, nil, "") // the whole hold
	}
	if err != nil {
		t.Errorf("settle %s: %v", id, err)
	}
}

// checkExtendBooks: every hold is settled, each was charged exactly its
// estimate plus its distinct granted extensions, and the totals add up.
func checkExtendBooks(t *testing.T, e *env, granted [][extendSteps]atomic.Bool) {
	var charged enforcer.Nanos
	for h := range granted {
		r, err := e.l.Reservation(e.ctx, fmt.Sprintf("h%d", h))
		if errors.Is(err, enforcer.ErrReservationNotFound) {
			continue // denied
		}
		if err != nil {
			t.Fatalf("h%d: %v", h, err)
		}
		n := 0
		for x := range granted[h] {
			if granted[h][x].Load() {
				n++
			}
		}
		if r.Extended != enforcer.Nanos(n)*usd("0.01") {
			t.Errorf("h%d extended %s by %d distinct cent extensions", h, r.Extended, n)
		}
		switch {
		case r.State == enforcer.StateCommitted && r.Charged == r.Held():
			charged += r.Charged
		case r.State == enforcer.StateReleased:
		default:
			t.Errorf("h%d ended %+v", h, r)
		}
	}
	s := e.snap("pool")
	if s.Pending != 0 || s.Committed != charged || s.Committed > usd("1") || s.Tools["LLM"].Spent != charged {
		t.Errorf("pool committed %s pending %s (tool %s), holds charged %s", s.Committed, s.Pending, s.Tools["LLM"].Spent, charged)
	}
	var kids enforcer.Nanos
	for c := range 4 {
		cs := e.snap(fmt.Sprintf("pool/%d", c))
		if cs.Committed > usd("0.4") || cs.Pending != 0 {
			t.Errorf("%s committed %s pending %s", cs.ID, cs.Committed, cs.Pending)
		}
		kids += cs.Committed
	}
	if kids != s.Committed {
		t.Errorf("children committed %s, pool %s", kids, s.Committed)
	}
}
