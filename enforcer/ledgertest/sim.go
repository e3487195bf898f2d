package ledgertest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// seedFlag replays a simulation: go test -run Simulation -ledger.seed=N.
// (PURSER_LEDGER_SEED=N works where flags cannot be passed.)
var seedFlag = flag.Uint64("ledger.seed", 0, "seed for the ledger simulation (0: from time)")

func simSeed() uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	if s, err := strconv.ParseUint(os.Getenv("PURSER_LEDGER_SEED"), 10, 64); err == nil && s != 0 {
		return s
	}
	return uint64(time.Now().UnixNano())
}

// source is where the simulation's choices come from: a seeded PRNG, or
// rapid (which can then shrink a failing sequence).
type source interface{ Intn(n int) int }

type randSource struct{ r *rand.Rand }

func (s randSource) Intn(n int) int { return s.r.IntN(n) }

func runSimulation(t *testing.T, newLedger NewLedger, o RunOptions) {
	seed := simSeed()
	clk := NewFakeClock(Epoch())
	l := newLedger(t, simOptions(clk))
	s := newSim(l, clk, randSource{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}, func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\nseed=%d; replay with: go test -run '%s' -ledger.seed=%d (or PURSER_LEDGER_SEED=%d)",
			fmt.Sprintf(format, args...), seed, t.Name(), seed, seed)
	})
	for range o.SimSteps {
		s.step()
	}
	s.checkAllReservations()
	st := map[enforcer.ReservationState]int{}
	late, exts := 0, 0
	for _, r := range s.m.res {
		st[r.state]++
		if r.late {
			late++
		}
		exts += len(r.exts)
	}
	t.Logf("seed=%d: %d steps, %d accounts, %d reservations: %v, %d late commits, %d extensions",
		seed, o.SimSteps, len(s.m.ids), len(s.m.res), st, late, exts)
}

func simOptions(clk *FakeClock) enforcer.LedgerOptions {
	// Settled reservations must outlive the run so every one can be checked.
	return enforcer.LedgerOptions{Clock: clk, RetainSettled: 10_000 * time.Hour}
}

// sim drives a ledger and the model with the same random operations and
// checks after every step that they agree.
type sim struct {
	ctx   context.Context
	l     enforcer.Ledger
	clk   *FakeClock
	src   source
	fail  func(format string, args ...any)
	m     *model
	steps int
	next  int
}

const (
	cent    = enforcer.Nanos(10_000_000)
	simUnit = time.Second
	maxAcct = 12
)

func newSim(l enforcer.Ledger, clk *FakeClock, src source, fail func(string, ...any)) *sim {
	s := &sim{ctx: context.Background(), l: l, clk: clk, src: src, fail: fail, m: newModel()}
	s.createAccount("root", "", s.randLimit(100))
	s.createAccount("root/a", "root", s.randLimit(60))
	s.createAccount("root/a/x", "root/a", s.randLimit(40))
	return s
}

// randLimit is nil a quarter of the time, else 0..max cents.
func (s *sim) randLimit(maxCents int) *enforcer.Nanos {
	if s.src.Intn(4) == 0 {
		return nil
	}
	n := enforcer.Nanos(s.src.Intn(maxCents+1)) * cent
	return &n
}

func (s *sim) step() {
	s.steps++
	switch k := s.src.Intn(100); {
	case k < 30:
		s.reserve()
	case k < 35:
		s.retry()
	case k < 47:
		s.extend()
	case k < 65:
		s.commit()
	case k < 75:
		s.release()
	case k < 86:
		s.clk.Advance(time.Duration(s.src.Intn(3)) * simUnit)
	case k < 95:
		s.setLimit()
	default:
		s.createChild()
	}
	s.m.expire(s.clk.Now())
	s.checkAccounts()
}

func (s *sim) pickAccount() string { return s.m.ids[s.src.Intn(len(s.m.ids))] }

// pickRes prefers live holds so most commits and releases land.
func (s *sim) pickRes() *mRes {
	if len(s.m.res) == 0 {
		return nil
	}
	id := fmt.Sprintf("s%d", s.src.Intn(s.next))
	if s.src.Intn(4) != 0 && len(s.m.live) > 0 {
		// Sorted, not map order, so a seed replays exactly.
		live := slices.Sorted(maps.Keys(s.m.live))
		id = live[s.src.Intn(len(live))]
	}
	return s.m.res[id]
}

func (s *sim) createAccount(id, parent string, limit *enforcer.Nanos) {
	_, err := s.l.CreateAccount(s.ctx, enforcer.AccountSpec{ID: id, Parent: parent, Limit: limit})
	if err != nil {
		s.fail("step %d: create %s: %v", s.steps, id, err)
	}
	s.m.create(id, parent, limit)
}

func (s *sim) createChild() {
	if len(s.m.ids) >= maxAcct {
		return
	}
	parent := s.pickAccount()
	if s.m.accts[parent].depth >= 2 { // keep three levels
		parent = s.m.accts[parent].parent
	}
	id := fmt.Sprintf("%s/%d", parent, len(s.m.ids))
	s.createAccount(id, parent, s.randLimit(50))
}

func (s *sim) reserve() {
	s.m.expire(s.clk.Now())
	req := enforcer.ReserveRequest{
		ID: fmt.Sprintf("s%d", s.next), Account: s.pickAccount(), Tool: []string{"Bash", "LLM", ""}[s.src.Intn(3)],
		Estimate: enforcer.Nanos(s.src.Intn(11)) * cent / 2, TTL: time.Duration(1+s.src.Intn(8)) * simUnit,
	}
	ok, overdrawn, rem := s.m.admits(req.Account, req.Estimate)
	r, err := s.l.Reserve(s.ctx, req)
	if !ok {
		var ib *enforcer.InsufficientBudgetError
		if !errors.As(err, &ib) || ib.Overdrawn != overdrawn || (!overdrawn && ib.Remaining != rem) {
			s.fail("step %d: reserve %+v: got %v, model denies (overdrawn %v, remaining %s)", s.steps, req, err, overdrawn, rem)
		}
		return // a denial stores nothing; the id is reused next time
	}
	if err != nil || r.State != enforcer.StatePending || r.Estimate != req.Estimate {
		s.fail("step %d: reserve %+v: got %+v, %v; model admits (remaining %s)", s.steps, req, r, err, rem)
	}
	s.next++
	s.m.reserve(req, s.clk.Now())
}

func (s *sim) retry() {
	r := s.pickRes()
	if r == nil {
		return
	}
	s.m.expire(s.clk.Now())
	got, err := s.l.Reserve(s.ctx, r.req)
	if err != nil {
		s.fail("step %d: retry of %s: %v", s.steps, r.req.ID, err)
	}
	s.checkRes(r, got)
}

func (s *sim) commit() {
	r := s.pickRes()
	if r == nil {
		return
	}
	s.m.expire(s.clk.Now())
	var actual *enforcer.Nanos
	switch s.src.Intn(4) {
	case 1:
		a := r.req.Estimate / 2
		actual = &a
	case 2:
		a := r.req.Estimate
		actual = &a
	case 3:
		a := r.req.Estimate + enforcer.Nanos(1+s.src.Intn(10))*cent
		actual = &a
	}
	charge, source := r.held(), enforcer.CostEstimated
	if actual != nil {
		charge, source = *actual, enforcer.CostActual
	}
	req := enforcer.CommitRequest{ID: r.req.ID, Actual: actual}
	if s.src.Intn(3) == 0 { // what the charge was priced from
		req.Usage = &enforcer.TokenUsage{Model: "m", InputTokens: int64(s.steps), OutputTokens: 1}
		req.PriceSource = "sim:" + r.req.ID
	}
	got, err := s.l.CommitWith(s.ctx, req)
	switch r.state {
	case enforcer.StatePending, enforcer.StateExpired:
		if err != nil {
			s.fail("step %d: commit %s (%s): %v", s.steps, r.req.ID, r.state, err)
		}
		s.m.commit(r, charge, source)
		r.usage, r.priceSrc = req.Usage, req.PriceSource
		s.checkRes(r, got)
	case enforcer.StateCommitted:
		if charge == r.charged && source == r.source {
			if err != nil {
				s.fail("step %d: repeated commit %s: %v", s.steps, r.req.ID, err)
			}
			s.checkRes(r, got)
		} else if !errors.Is(err, enforcer.ErrReservationSettled) {
			s.fail("step %d: second commit of %s: %v, want ErrReservationSettled", s.steps, r.req.ID, err)
		}
	default:
		if !errors.Is(err, enforcer.ErrReservationSettled) {
			s.fail("step %d: commit of %s %s: %v, want ErrReservationSettled", s.steps, r.state, r.req.ID, err)
		}
	}
}

// extend grows a hold under one of a few extension ids, so retries and
// conflicts happen, with an occasional invalid amount.
func (s *sim) extend() {
	r := s.pickRes()
	if r == nil {
		return
	}
	s.m.expire(s.clk.Now())
	req := enforcer.ExtendRequest{ID: r.req.ID, ExtensionID: fmt.Sprintf("e%d", s.src.Intn(3)),
		Add: enforcer.Nanos(s.src.Intn(7)) * cent / 2}
	got, err := s.l.Extend(s.ctx, req)
	was, seen := r.exts[req.ExtensionID]
	switch {
	case req.Add <= 0:
		if !errors.Is(err, enforcer.ErrInvalidReservation) {
			s.fail("step %d: extend %+v: %v, want ErrInvalidReservation", s.steps, req, err)
		}
	case seen && was == req.Add:
		if err != nil {
			s.fail("step %d: repeated extend %+v: %v", s.steps, req, err)
		}
		s.checkRes(r, got)
	case seen:
		if !errors.Is(err, enforcer.ErrReservationConflict) {
			s.fail("step %d: extend %+v (was %s): %v, want ErrReservationConflict", s.steps, req, was, err)
		}
	case r.state != enforcer.StatePending:
		if !errors.Is(err, enforcer.ErrReservationSettled) {
			s.fail("step %d: extend %s %s: %v, want ErrReservationSettled", s.steps, r.state, req.ID, err)
		}
	default:
		s.extendPending(r, req, got, err)
	}
}

// extendPending checks an extension of a pending hold against the model's
// budget rule and applies it to the model when admitted.
func (s *sim) extendPending(r *mRes, req enforcer.ExtendRequest, got enforcer.Reservation, err error) {
	ok, overdrawn, rem := s.m.admits(r.req.Account, req.Add)
	if !ok {
		var ib *enforcer.InsufficientBudgetError
		if !errors.As(err, &ib) || ib.Overdrawn != overdrawn || ib.Estimate != req.Add || (!overdrawn && ib.Remaining != rem) {
			s.fail("step %d: extend %+v: got %v, model denies (overdrawn %v, remaining %s)", s.steps, req, err, overdrawn, rem)
		}
		return
	}
	if err != nil {
		s.fail("step %d: extend %+v: %v; model admits (remaining %s)", s.steps, req, err, rem)
	}
	s.m.extend(r, req.ExtensionID, req.Add)
	s.checkRes(r, got)
}

func (s *sim) release() {
	r := s.pickRes()
	if r == nil {
		return
	}
	s.m.expire(s.clk.Now())
	got, err := s.l.Release(s.ctx, r.req.ID)
	if r.state == enforcer.StateReleased { // a repeat returns it unchanged
		if err != nil {
			s.fail("step %d: repeated release of %s: %v", s.steps, r.req.ID, err)
		}
		s.checkRes(r, got)
		return
	}
	if r.state != enforcer.StatePending {
		if !errors.Is(err, enforcer.ErrReservationSettled) {
			s.fail("step %d: release of %s %s: %v, want ErrReservationSettled", s.steps, r.state, r.req.ID, err)
		}
		return
	}
	if err != nil {
		s.fail("step %d: release %s: %v", s.steps, r.req.ID, err)
	}
	s.m.release(r)
	s.checkRes(r, got)
}

func (s *sim) setLimit() {
	id := s.pickAccount()
	// Around the current spend, so accounts keep room and limits are
	// sometimes lowered below what was spent.
	limit := s.randLimit(100)
	if limit != nil {
		a := s.m.accts[id]
		*limit += max(0, a.committed+a.pending-20*cent)
	}
	if _, err := s.l.SetLimit(s.ctx, id, limit); err != nil {
		s.fail("step %d: set limit of %s: %v", s.steps, id, err)
	}
	s.m.expire(s.clk.Now())
	s.m.setLimit(id, limit)
}

// checkRes compares one reservation as the ledger returned it with the
// model, and checks it went through exactly one terminal state (plus a
// late commit after expiry).
func (s *sim) checkRes(r *mRes, got enforcer.Reservation) {
	want := r.state
	if got.ID != r.req.ID || got.State != want || got.Estimate != r.req.Estimate || got.Account != r.req.Account || got.Extended != r.extended {
		s.fail("step %d: reservation %s is %+v, model %s extended %s", s.steps, r.req.ID, got, want, r.extended)
	}
	if (got.Usage == nil) != (r.usage == nil) || (r.usage != nil && *got.Usage != *r.usage) || got.PriceSource != r.priceSrc {
		s.fail("step %d: reservation %s records usage %+v (%q), model %+v (%q)", s.steps, r.req.ID, got.Usage, got.PriceSource, r.usage, r.priceSrc)
	}
	if want == enforcer.StateCommitted && (got.Charged != r.charged || got.CostSource != r.source || got.Late != r.late) {
		s.fail("step %d: reservation %s charged %s (%s, late %v), model %s (%s, late %v)",
			s.steps, r.req.ID, got.Charged, got.CostSource, got.Late, r.charged, r.source, r.late)
	}
	if max := map[bool]int{true: 2, false: 1}[r.late]; r.terminals > max {
		s.fail("step %d: reservation %s reached %d terminal states", s.steps, r.req.ID, r.terminals)
	}
}

func (s *sim) checkAllReservations() {
	for _, r := range s.m.res {
		got, err := s.l.Reservation(s.ctx, r.req.ID)
		if err != nil {
			s.fail("reservation %s: %v", r.req.ID, err)
		}
		s.checkRes(r, got)
	}
}

// checkAccounts compares every account with the model: totals (d), roll-up
// (c) and the limit invariant (a).
func (s *sim) checkAccounts() {
	snaps, err := s.l.Accounts(s.ctx)
	if err != nil || len(snaps) != len(s.m.ids) {
		s.fail("step %d: accounts: %d, %v; model has %d", s.steps, len(snaps), err, len(s.m.ids))
	}
	byID := make(map[string]enforcer.Snapshot, len(snaps))
	for _, sn := range snaps {
		byID[sn.ID] = sn
	}
	for _, id := range s.m.ids {
		a, sn := s.m.accts[id], byID[id]
		if sn.Committed != a.committed || sn.Pending != a.pending || sn.Parent != a.parent {
			s.fail("step %d: %s committed %s pending %s parent %q; model %s, %s, %q",
				s.steps, id, sn.Committed, sn.Pending, sn.Parent, a.committed, a.pending, a.parent)
		}
		if (sn.Limit == nil) != (a.limit == nil) || (a.limit != nil && *sn.Limit != *a.limit) {
			s.fail("step %d: %s limit %v, model %v", s.steps, id, sn.Limit, a.limit)
		}
		wantOver := a.limit != nil && a.committed > *a.limit
		if sn.Overdrawn != wantOver {
			s.fail("step %d: %s overdrawn %v, want %v", s.steps, id, sn.Overdrawn, wantOver)
		}
		s.checkRollUp(id, sn, byID)
		if a.limit == nil || sn.Committed+sn.Pending <= *a.limit {
			a.excused = false // within limits again: any new excess needs a new reason
		} else if !a.excused {
			s.fail("step %d: %s holds %s + %s over its limit %s with no over-estimate commit or lowered limit",
				s.steps, id, sn.Committed, sn.Pending, *a.limit)
		}
	}
}

func (s *sim) checkRollUp(id string, sn enforcer.Snapshot, byID map[string]enforcer.Snapshot) {
	c, p := s.m.accts[id].direct, enforcer.Nanos(0)
	for _, r := range s.m.live {
		if r.req.Account == id {
			p += r.held()
		}
	}
	for _, kid := range s.m.ids {
		if s.m.accts[kid].parent == id {
			c += byID[kid].Committed
			p += byID[kid].Pending
		}
	}
	if sn.Committed != c || sn.Pending != p {
		s.fail("step %d: %s committed %s pending %s, but own + children are %s and %s",
			s.steps, id, sn.Committed, sn.Pending, c, p)
	}
}
