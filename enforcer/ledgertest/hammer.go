package ledgertest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

func runHammer(t *testing.T, newLedger NewLedger, o RunOptions) {
	t.Run("ExactAdmission", func(t *testing.T) { hammerExact(t, newEnv(t, newLedger), o.Goroutines) })
	t.Run("PoolFamily", func(t *testing.T) { hammerPool(t, newEnv(t, newLedger), o.Goroutines) })
	t.Run("SettleTotals", func(t *testing.T) { hammerSettle(t, newEnv(t, newLedger), o.Goroutines) })
	t.Run("RetrySameID", func(t *testing.T) { hammerRetry(t, newEnv(t, newLedger), o.Goroutines) })
	t.Run("Mixed", func(t *testing.T) { hammerMixed(t, newEnv(t, newLedger), o.Goroutines) })
	t.Run("Forgetting", func(t *testing.T) { hammerForgetting(t, newLedger, o.Goroutines) })
	t.Run("ListWhileSettling", func(t *testing.T) { hammerList(t, newLedger, o.Goroutines) })
	t.Run("Extend", func(t *testing.T) { hammerExtend(t, newEnv(t, newLedger), o.Goroutines) })
}

// hammerList: listings taken while other goroutines reserve, settle, let
// holds expire and forget them show each id once, only the account's own,
// each in a state it really had.
func hammerList(t *testing.T, newLedger NewLedger, n int) {
	e := newRetainEnv(t, newLedger, time.Millisecond)
	e.create("t", "", "")
	e.create("t/a", "t", "")
	parallel(max(4, n/50), func(g int) {
		for k := range 20 {
			switch id := fmt.Sprintf("g%d-%d", g, k); g % 4 {
			case 0, 1:
				acct := []string{"t", "t/a"}[g%2]
				if _, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: id, Account: acct, Estimate: 1, TTL: time.Duration(1+k%3) * time.Millisecond}); err != nil {
					t.Errorf("reserve %s: %v", id, err)
				}
				var err error
				if k%2 == 0 {
					_, err = e.l.Commit(e.ctx, id, nil, "")
				} else {
					_, err = e.l.Release(e.ctx, id)
				}
				if err != nil && !errors.Is(err, enforcer.ErrReservationSettled) && !errors.Is(err, enforcer.ErrReservationNotFound) {
					t.Errorf("settle %s: %v", id, err)
				}
			case 2:
				e.clk.Advance(time.Millisecond)
				if _, err := e.l.Sweep(e.ctx); err != nil {
					t.Errorf("sweep: %v", err)
				}
			default:
				rs, err := e.l.Reservations(e.ctx, enforcer.ReservationFilter{Account: "t"})
				if err != nil {
					t.Errorf("list: %v", err)
				}
				seen := map[string]bool{}
				for _, r := range rs {
					if r.Account != "t" || seen[r.ID] || r.State == "" {
						t.Errorf("listing of t has %+v (seen before: %v)", r, seen[r.ID])
					}
					seen[r.ID] = true
				}
			}
		}
	})
}

// hammerForgetting: with a tiny retention, ids are forgotten and reused
// while other goroutines look them up; the books must stay exact.
func hammerForgetting(t *testing.T, newLedger NewLedger, n int) {
	e := newRetainEnv(t, newLedger, time.Nanosecond)
	clk := e.clk
	e.create("t0", "", "")
	e.create("t1", "", "")
	workers := max(2, n/50)
	var charged [2]atomic.Int64
	parallel(workers, func(g int) {
		acct := g % 2
		for k := range 50 {
			id := fmt.Sprintf("g%d-%d", g, k%3) // reused once forgotten
			other := fmt.Sprintf("g%d-%d", (g+1)%workers, k%3)
			_, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: id, Account: fmt.Sprintf("t%d", acct), Estimate: 5, TTL: time.Hour})
			if err != nil && !errors.Is(err, enforcer.ErrReservationConflict) {
				t.Errorf("reserve %s: %v", id, err)
			}
			if _, err := e.l.Reservation(e.ctx, other); err != nil && !errors.Is(err, enforcer.ErrReservationNotFound) {
				t.Errorf("lookup %s: %v", other, err)
			}
			if k%5 == 0 {
				clk.Advance(time.Millisecond)
				if _, err := e.l.Sweep(e.ctx); err != nil {
					t.Errorf("sweep: %v", err)
				}
			}
			a := enforcer.Nanos(1 + k)
			r, err := e.l.Commit(e.ctx, id, &a, "")
			switch {
			case err == nil && r.Charged == a:
				charged[acct].Add(int64(a))
			case err == nil, errors.Is(err, enforcer.ErrReservationSettled), errors.Is(err, enforcer.ErrReservationNotFound):
				// an earlier reservation under this id, not yet forgotten
			default:
				t.Errorf("commit %s: %v", id, err)
			}
		}
	})
	for i := range 2 {
		s := e.snap(fmt.Sprintf("t%d", i))
		if s.Committed != enforcer.Nanos(charged[i].Load()) {
			t.Errorf("t%d committed %s, commits reported %s", i, s.Committed, enforcer.Nanos(charged[i].Load()))
		}
	}
}

// hammerMixed races every operation, the clock and sweeps on one tree and
// checks the books balance once everything has settled or expired.
func hammerMixed(t *testing.T, e *env, n int) {
	e.create("root", "", "5")
	e.create("root/a", "root", "2")
	e.create("root/b", "root", "")
	var charged atomic.Int64
	parallel(n, func(i int) {
		acct := []string{"root", "root/a", "root/b"}[i%3]
		id := fmt.Sprintf("m%d", i)
		_, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: id, Account: acct, Tool: "T", Estimate: usd("0.01"), TTL: time.Duration(1+i%5) * time.Second})
		if err != nil {
			if !errors.Is(err, enforcer.ErrInsufficientBudget) {
				t.Errorf("reserve %s: %v", id, err)
			}
			return
		}
		switch i % 7 {
		case 0:
			e.clk.Advance(time.Second)
		case 1:
			if _, err := e.l.Sweep(e.ctx); err != nil {
				t.Errorf("sweep: %v", err)
			}
		case 2:
			if _, err := e.l.Accounts(e.ctx); err != nil {
				t.Errorf("accounts: %v", err)
			}
		case 3:
			if _, err := e.l.Release(e.ctx, id); err != nil && !errors.Is(err, enforcer.ErrReservationSettled) {
				t.Errorf("release %s: %v", id, err)
			}
			return
		}
		a := enforcer.Nanos(i)
		r, err := e.l.Commit(e.ctx, id, &a, "")
		if err != nil {
			t.Errorf("commit %s: %v", id, err)
			return
		}
		charged.Add(int64(r.Charged))
	})
	e.clk.Advance(time.Hour)
	if _, err := e.l.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	root, a, b := e.snap("root"), e.snap("root/a"), e.snap("root/b")
	if root.Pending != 0 || a.Pending != 0 || b.Pending != 0 {
		t.Errorf("pending left after every hold expired: %s %s %s", root.Pending, a.Pending, b.Pending)
	}
	if root.Committed != enforcer.Nanos(charged.Load()) || root.Tools["T"].Spent != root.Committed {
		t.Errorf("root committed %s (tool %s), charged %s", root.Committed, root.Tools["T"].Spent, enforcer.Nanos(charged.Load()))
	}
	if a.Committed+b.Committed > root.Committed {
		t.Errorf("children %s + %s exceed root %s", a.Committed, b.Committed, root.Committed)
	}
}

// parallel runs fn(i) for i in [0, n) on n goroutines released together.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// hammerExact: n goroutines reserve $0.01 against $1.00; exactly 100 fit.
func hammerExact(t *testing.T, e *env, n int) {
	e.create("a", "", "1")
	var ok, denied atomic.Int64
	parallel(n, func(i int) {
		_, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: fmt.Sprintf("r%d", i), Account: "a", Estimate: usd("0.01"), TTL: time.Hour})
		switch {
		case err == nil:
			ok.Add(1)
		case errors.Is(err, enforcer.ErrInsufficientBudget):
			denied.Add(1)
		default:
			t.Errorf("reserve r%d: %v", i, err)
		}
	})
	want := min(int64(n), 100)
	if ok.Load() != want || ok.Load()+denied.Load() != int64(n) {
		t.Errorf("admitted %d, denied %d of %d; want %d admitted", ok.Load(), denied.Load(), n, want)
	}
	e.wantTotals("a", "0", fmt.Sprintf("%d.%02d", want/100, want%100))
}

// hammerPool: a $1.00 pool with four $0.40 children; reserves racing on
// the children admit exactly $1.00 in total, no child beyond $0.40.
func hammerPool(t *testing.T, e *env, n int) {
	e.create("pool", "", "1")
	for c := range 4 {
		e.create(fmt.Sprintf("pool/%d", c), "pool", "0.4")
	}
	var admitted atomic.Int64
	parallel(n, func(i int) {
		est := usd("0.01")
		_, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: fmt.Sprintf("p%d", i), Account: fmt.Sprintf("pool/%d", i%4), Estimate: est, TTL: time.Hour})
		if err == nil {
			admitted.Add(int64(est))
		} else if !errors.Is(err, enforcer.ErrInsufficientBudget) {
			t.Errorf("reserve p%d: %v", i, err)
		}
	})
	s := e.snap("pool")
	if s.Pending != enforcer.Nanos(admitted.Load()) || s.Pending > usd("1") {
		t.Errorf("pool pending %s, admitted %s", s.Pending, enforcer.Nanos(admitted.Load()))
	}
	if n >= 400 && s.Pending != usd("1") { // costs divide $0.40 and $1.00 evenly
		t.Errorf("pool admitted %s, want exactly $1.00", s.Pending)
	}
	var sum enforcer.Nanos
	for c := range 4 {
		cs := e.snap(fmt.Sprintf("pool/%d", c))
		if cs.Pending > usd("0.4") {
			t.Errorf("child %s holds %s > $0.40", cs.ID, cs.Pending)
		}
		sum += cs.Pending
	}
	if sum != s.Pending {
		t.Errorf("children hold %s, pool %s", sum, s.Pending)
	}
}

// hammerSettle: concurrent commits and releases keep totals exact.
func hammerSettle(t *testing.T, e *env, n int) {
	e.create("root", "", "")
	e.create("root/a", "root", "")
	e.create("root/b", "root", "")
	for i := range n {
		e.reserve(fmt.Sprintf("s%d", i), []string{"root/a", "root/b"}[i%2], "Bash", "0.01")
	}
	var charged atomic.Int64
	parallel(n, func(i int) {
		id := fmt.Sprintf("s%d", i)
		var err error
		switch i % 4 {
		case 0:
			_, err = e.l.Release(e.ctx, id)
		case 1:
			_, err = e.l.Commit(e.ctx, id, nil, "")
			charged.Add(int64(usd("0.01")))
		case 2:
			a := enforcer.Nanos(i) // distinct actual costs
			_, err = e.l.Commit(e.ctx, id, &a, "")
			charged.Add(int64(a))
		case 3:
			a := usd("0.03") // above the estimate
			_, err = e.l.Commit(e.ctx, id, &a, "")
			charged.Add(int64(a))
		}
		if err != nil {
			t.Errorf("settle %s: %v", id, err)
		}
	})
	s := e.snap("root")
	if s.Pending != 0 || s.Committed != enforcer.Nanos(charged.Load()) {
		t.Errorf("root committed %s pending %s, want %s and 0", s.Committed, s.Pending, enforcer.Nanos(charged.Load()))
	}
	a, b := e.snap("root/a"), e.snap("root/b")
	if a.Committed+b.Committed != s.Committed {
		t.Errorf("children committed %s + %s != root %s", a.Committed, b.Committed, s.Committed)
	}
	if calls := s.Tools["Bash"].Calls; calls != int64(n-(n+3)/4) {
		t.Errorf("Bash calls %d, want %d", calls, n-(n+3)/4)
	}
}

// hammerRetry: many goroutines reserving one id hold it once.
func hammerRetry(t *testing.T, e *env, n int) {
	e.create("a", "", "1")
	parallel(n, func(i int) {
		_, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "same", Account: "a", Estimate: usd("0.5"), TTL: time.Hour})
		if err != nil {
			t.Errorf("retry %d: %v", i, err)
		}
	})
	e.wantTotals("a", "0", "0.5")
}
