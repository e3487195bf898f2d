package ledgertest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

const defaultTTL = time.Minute

func runBehaviour(t *testing.T, newLedger NewLedger) {
	cases := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Accounts", testAccounts},
		{"InclusiveLimit", testInclusiveLimit},
		{"DenyMessageAndNothingStored", testDenyStoresNothing},
		{"CheckTightest", testCheckTightest},
		{"Validation", testValidation},
		{"IdempotentRetry", testIdempotentRetry},
		{"Conflict", testConflict},
		{"CommitVariants", testCommitVariants},
		{"SettledErrors", testSettledErrors},
		{"ExpiryWithoutSweep", testExpiry},
		{"LateCommit", testLateCommit},
		{"OverdraftAndAlert", testOverdraft},
		{"Thresholds", testThresholds},
		{"HoldsDoNotFireThresholds", testHoldsDoNotFire},
		{"PoolRollUp", testPool},
		{"Supervisor", testSupervisor},
		{"PercentChild", testPercentChild},
		{"SetLimitKeepsSpend", testSetLimitKeepsSpend},
		{"ToolStatsRollUp", testToolStats},
		{"Labels", testLabels},
		{"Overflow", testOverflow},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newEnv(t, newLedger)) })
	}
	t.Run("CustomThresholds", func(t *testing.T) { testCustomThresholds(t, newEnv(t, newLedger, 10, 200)) })
	t.Run("NoThresholds", func(t *testing.T) { testNoThresholds(t, newLedger) })
	t.Run("Retention", func(t *testing.T) { testRetention(t, newLedger) })
	t.Run("Issue11", func(t *testing.T) { runIssue11(t, newLedger) })
	t.Run("Issue13", func(t *testing.T) { runIssue13(t, newLedger) })
}

// testRetention: settled reservations stay answerable for RetainSettled,
// then Sweep forgets them and their ids may be reused.
func testRetention(t *testing.T, newLedger NewLedger) {
	e := newRetainEnv(t, newLedger, time.Hour)
	clk := e.clk
	e.create("a", "", "10")
	e.reserve("c", "a", "", "1")
	e.commit("c", "")
	e.reserve("x", "a", "", "1") // expires at +1m, retained until +61m
	e.reserve("p", "a", "", "1")
	clk.Advance(30 * time.Second)
	if _, err := e.l.Commit(e.ctx, "p", nil, ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour - 30*time.Second) // c settled exactly 1h ago
	if _, err := e.l.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	_, err := e.l.Reservation(e.ctx, "c")
	wantErr(t, err, enforcer.ErrReservationNotFound)
	for _, id := range []string{"x", "p"} {
		if _, err := e.l.Reservation(e.ctx, id); err != nil {
			t.Errorf("%s forgotten before its retention: %v", id, err)
		}
	}
	if r := e.reserve("c", "a", "Read", "2"); r.State != enforcer.StatePending || r.Estimate != usd("2") {
		t.Errorf("reused id: %+v", r)
	}
	clk.Advance(time.Minute)
	if _, err := e.l.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"x", "p"} {
		_, err := e.l.Reservation(e.ctx, id)
		wantErr(t, err, enforcer.ErrReservationNotFound)
	}
	e.wantTotals("a", "2", "0") // forgetting never changes the books (the new c expired)
}

func testCustomThresholds(t *testing.T, e *env) {
	e.create("a", "", "1")
	e.reserve("r1", "a", "", "0.1")
	e.commit("r1", "")
	e.reserve("r2", "a", "", "0.9")
	e.commit("r2", "1.1") // 120%: overdrawn, 200% not reached
	if got, want := alertKeys(e.takeAlerts()), []string{"a@10:info", "a@overdrawn:critical"}; !slices.Equal(got, want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
}

func testNoThresholds(t *testing.T, newLedger NewLedger) {
	var got []enforcer.Alert
	clk := NewFakeClock(Epoch())
	l := newLedger(t, enforcer.LedgerOptions{Clock: clk, ThresholdsPct: []int{},
		Notifier: enforcer.NotifierFunc(func(a enforcer.Alert) { got = append(got, a) })})
	e := &env{t: t, ctx: t.Context(), l: l, clk: clk}
	e.create("a", "", "1")
	e.reserve("r1", "a", "", "1")
	e.commit("r1", "2")
	if keys := alertKeys(got); !slices.Equal(keys, []string{"a@overdrawn:critical"}) {
		t.Errorf("alerts %v, want only the overdraft", keys)
	}
}

func testOverflow(t *testing.T, e *env) {
	e.create("a", "", "")
	big := enforcer.MaxNanos - 10
	if _, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "r1", Account: "a", Estimate: big, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	_, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "r2", Account: "a", Estimate: 20, TTL: time.Minute})
	wantErr(t, err, enforcer.ErrInvalidAmount)
	if _, err := e.l.Commit(e.ctx, "r1", nil, ""); err != nil {
		t.Fatal(err)
	}
	e.reserve("r3", "a", "", "1")
	_, err = e.l.Commit(e.ctx, "r3", nil, "")
	wantErr(t, err, enforcer.ErrInvalidAmount)
	if s := e.snap("a"); s.Committed != big || s.Pending != usd("1") {
		t.Errorf("after refused overflow: %+v", s)
	}
	if r, _ := e.l.Reservation(e.ctx, "r3"); r.State != enforcer.StatePending {
		t.Errorf("refused commit changed the reservation: %+v", r)
	}
}

func testAccounts(t *testing.T, e *env) {
	e.create("b", "", "10")
	e.create("a", "", "")
	e.create("b/x", "b", "1")
	_, err := e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: "b"})
	wantErr(t, err, enforcer.ErrAccountExists)
	_, err = e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: "c", Parent: "nope"})
	wantErr(t, err, enforcer.ErrAccountNotFound)
	_, err = e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: ""})
	wantErr(t, err, enforcer.ErrInvalidAccount)
	_, err = e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: "neg", Limit: ptr(-1)})
	wantErr(t, err, enforcer.ErrInvalidAccount)
	_, err = e.l.Snapshot(e.ctx, "nope")
	wantErr(t, err, enforcer.ErrAccountNotFound)
	_, err = e.l.SetLimit(e.ctx, "nope", nil)
	wantErr(t, err, enforcer.ErrAccountNotFound)
	_, err = e.l.Check(e.ctx, "nope", 0)
	wantErr(t, err, enforcer.ErrAccountNotFound)
	_, err = e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "r", Account: "nope", TTL: time.Second})
	wantErr(t, err, enforcer.ErrAccountNotFound)
	all, err := e.l.Accounts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range all {
		ids = append(ids, s.ID+"<"+s.Parent)
	}
	if want := []string{"a<", "b<", "b/x<b"}; !slices.Equal(ids, want) {
		t.Errorf("Accounts = %v, want %v", ids, want)
	}
	if all[0].Limit != nil || all[0].Remaining() != enforcer.MaxNanos || *all[1].Limit != usd("10") {
		t.Errorf("limits: a %v, b %v", all[0].Limit, all[1].Limit)
	}
}

func testInclusiveLimit(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.reserve("r1", "a", "Bash", "8")
	e.commit("r1", "")
	if c, _ := e.l.Check(e.ctx, "a", usd("2.01")); c.OK {
		t.Errorf("check $2.01 with $2 left: OK")
	}
	_, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "r2", Account: "a", Estimate: usd("2.01"), TTL: time.Minute})
	wantDenied(t, err, "a", false)
	e.reserve("r3", "a", "Bash", "2")
	e.wantTotals("a", "8", "2")
	_, err = e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "r4", Account: "a", Estimate: 1, TTL: time.Minute})
	ib := wantDenied(t, err, "a", false)
	if ib.Remaining != 0 || ib.Estimate != 1 {
		t.Errorf("denial remaining %s estimate %s", ib.Remaining, ib.Estimate)
	}
	e.reserve("r5", "a", "Bash", "0") // a zero estimate still fits a full account
}

func testDenyStoresNothing(t *testing.T, e *env) {
	e.create("a", "", "0.05")
	req := enforcer.ReserveRequest{ID: "r1", Account: "a", Tool: "Agent", Estimate: usd("0.10"), TTL: time.Minute}
	_, err := e.l.Reserve(e.ctx, req)
	wantDenied(t, err, "a", false)
	if got, want := err.Error(), "Insufficient budget: estimated $0.10 but only $0.05 remaining"; got != want {
		t.Errorf("deny text %q, want %q", got, want)
	}
	_, err = e.l.Reservation(e.ctx, "r1")
	wantErr(t, err, enforcer.ErrReservationNotFound)
	e.wantTotals("a", "0", "0")
	if _, err := e.l.SetLimit(e.ctx, "a", ptr(usd("1"))); err != nil {
		t.Fatal(err)
	}
	r, err := e.l.Reserve(e.ctx, req)
	if err != nil || r.State != enforcer.StatePending {
		t.Fatalf("retry after raise: %+v, %v", r, err)
	}
	e.wantTotals("a", "0", "0.10")
}

func testCheckTightest(t *testing.T, e *env) {
	e.create("root", "", "5")
	e.create("mid", "root", "")
	e.create("leaf", "mid", "3")
	c, err := e.l.Check(e.ctx, "leaf", usd("1"))
	if err != nil || !c.OK || c.Account != "leaf" || c.Remaining != usd("3") || c.Overdrawn {
		t.Errorf("check leaf: %+v %v", c, err)
	}
	e.reserve("r1", "mid", "", "4")
	c, _ = e.l.Check(e.ctx, "leaf", usd("1.5"))
	if c.OK || c.Account != "root" || c.Remaining != usd("1") {
		t.Errorf("check leaf after mid holds $4: %+v", c)
	}
	_, err = e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "r2", Account: "leaf", Estimate: usd("1.5"), TTL: time.Minute})
	wantDenied(t, err, "root", false)
	e.wantTotals("leaf", "0", "0") // all or nothing
	e.wantTotals("mid", "0", "4")
	e.create("free", "", "")
	c, _ = e.l.Check(e.ctx, "free", enforcer.MaxNanos)
	if !c.OK || c.Account != "free" || c.Remaining != enforcer.MaxNanos {
		t.Errorf("check unlimited: %+v", c)
	}
	_, err = e.l.Check(e.ctx, "free", -1)
	wantErr(t, err, enforcer.ErrInvalidAmount)
}

func testValidation(t *testing.T, e *env) {
	e.create("a", "", "1")
	bad := []enforcer.ReserveRequest{
		{ID: "", Account: "a", TTL: time.Minute},
		{ID: "r", Account: "", TTL: time.Minute},
		{ID: "r", Account: "a", Estimate: -1, TTL: time.Minute},
		{ID: "r", Account: "a", TTL: 0},
		{ID: "r", Account: "a", TTL: -time.Second},
		{ID: "r", Account: "a", TTL: enforcer.MaxReservationTTL + 1},
	}
	for _, req := range bad {
		_, err := e.l.Reserve(e.ctx, req)
		wantErr(t, err, enforcer.ErrInvalidReservation)
	}
	e.reserve("r", "a", "", "0.5")
	_, err := e.l.Commit(e.ctx, "r", ptr(-1), "")
	wantErr(t, err, enforcer.ErrInvalidAmount)
	_, err = e.l.Commit(e.ctx, "missing", nil, "")
	wantErr(t, err, enforcer.ErrReservationNotFound)
	_, err = e.l.Release(e.ctx, "missing")
	wantErr(t, err, enforcer.ErrReservationNotFound)
	_, err = e.l.Reservation(e.ctx, "missing")
	wantErr(t, err, enforcer.ErrReservationNotFound)
	e.wantTotals("a", "0", "0.5")
}

func testIdempotentRetry(t *testing.T, e *env) {
	e.create("a", "", "1")
	first := e.reserve("r1", "a", "Bash", "0.4")
	e.clk.Advance(time.Second)
	again := e.reserve("r1", "a", "Bash", "0.4")
	if !again.CreatedAt.Equal(first.CreatedAt) || again.State != enforcer.StatePending || again.Estimate != usd("0.4") {
		t.Errorf("retry returned %+v, want the first %+v", again, first)
	}
	e.wantTotals("a", "0", "0.4") // held once
	e.commit("r1", "0.3")
	after := e.reserve("r1", "a", "Bash", "0.4")
	if after.State != enforcer.StateCommitted || after.Charged != usd("0.3") {
		t.Errorf("retry after commit returned %+v", after)
	}
	e.wantTotals("a", "0.3", "0")
}

func testConflict(t *testing.T, e *env) {
	e.create("a", "", "1")
	e.create("b", "", "1")
	e.reserve("r1", "a", "Bash", "0.4")
	for field, req := range map[string]enforcer.ReserveRequest{
		"account":     {ID: "r1", Account: "b", Tool: "Bash", Estimate: usd("0.4"), TTL: defaultTTL},
		"tool":        {ID: "r1", Account: "a", Tool: "Read", Estimate: usd("0.4"), TTL: defaultTTL},
		"estimate":    {ID: "r1", Account: "a", Tool: "Bash", Estimate: usd("0.5"), TTL: defaultTTL},
		"ttl":         {ID: "r1", Account: "a", Tool: "Bash", Estimate: usd("0.4"), TTL: time.Hour},
		"fingerprint": {ID: "r1", Account: "a", Tool: "Bash", Estimate: usd("0.4"), TTL: defaultTTL, Fingerprint: "params"},
	} {
		_, err := e.l.Reserve(e.ctx, req)
		wantErr(t, err, enforcer.ErrReservationConflict)
		if !strings.Contains(err.Error(), field) {
			t.Errorf("conflict on %s: message %q does not name the field", field, err)
		}
	}
	e.wantTotals("a", "0", "0.4")
	e.wantTotals("b", "0", "0")
}

func testCommitVariants(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.reserve("est", "a", "Bash", "1")
	r := e.commit("est", "")
	if r.Charged != usd("1") || r.CostSource != enforcer.CostEstimated || r.State != enforcer.StateCommitted || r.Late {
		t.Errorf("nil actual: %+v", r)
	}
	e.reserve("low", "a", "Bash", "1")
	r = e.commit("low", "0.25")
	if r.Charged != usd("0.25") || r.CostSource != enforcer.CostActual {
		t.Errorf("actual below: %+v", r)
	}
	e.reserve("cache", "a", "Bash", "1")
	r, err := e.l.Commit(e.ctx, "cache", ptr(0), enforcer.CostCache)
	if err != nil || r.Charged != 0 || r.CostSource != enforcer.CostCache {
		t.Errorf("cache hit: %+v %v", r, err)
	}
	e.reserve("high", "a", "Bash", "1")
	r = e.commit("high", "1.5")
	if r.Charged != usd("1.5") {
		t.Errorf("actual above: %+v", r)
	}
	e.wantTotals("a", "2.75", "0")
	got, err := e.l.Reservation(e.ctx, "low")
	if err != nil || got.State != enforcer.StateCommitted || got.Charged != usd("0.25") || got.SettledAt.IsZero() {
		t.Errorf("Reservation(low) = %+v, %v", got, err)
	}
}

func testSettledErrors(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.reserve("c", "a", "", "1")
	first := e.commit("c", "0.5")
	e.clk.Advance(time.Second)
	same := e.commit("c", "0.5")
	if same != replayed(first) {
		t.Errorf("repeated commit changed the reservation: %+v vs %+v", same, first)
	}
	_, err := e.l.Commit(e.ctx, "c", ptr(usd("0.6")), "")
	wantErr(t, err, enforcer.ErrReservationSettled)
	_, err = e.l.Commit(e.ctx, "c", nil, "")
	wantErr(t, err, enforcer.ErrReservationSettled)
	_, err = e.l.Release(e.ctx, "c")
	wantErr(t, err, enforcer.ErrReservationSettled)
	e.reserve("r", "a", "", "1")
	rel, err := e.l.Release(e.ctx, "r")
	if err != nil || rel.State != enforcer.StateReleased || rel.Charged != 0 {
		t.Fatalf("release: %+v %v", rel, err)
	}
	if again, err := e.l.Release(e.ctx, "r"); err != nil || again != replayed(rel) {
		t.Errorf("repeated release: %+v, %v; want %+v", again, err, rel)
	}
	_, err = e.l.Commit(e.ctx, "r", nil, "")
	wantErr(t, err, enforcer.ErrReservationSettled)
	e.wantTotals("a", "0.5", "0")
}

func testExpiry(t *testing.T, e *env) {
	e.create("root", "", "1")
	e.create("a", "root", "")
	r := e.reserve("r1", "a", "", "0.8")
	if !r.ExpiresAt.Equal(r.CreatedAt.Add(defaultTTL)) {
		t.Errorf("expiry %v, created %v", r.ExpiresAt, r.CreatedAt)
	}
	e.clk.Advance(defaultTTL - time.Nanosecond)
	e.wantTotals("root", "0", "0.8")
	e.clk.Advance(time.Nanosecond) // ExpiresAt <= now: the hold is gone
	e.wantTotals("root", "0", "0")
	e.wantTotals("a", "0", "0")
	got, err := e.l.Reservation(e.ctx, "r1")
	if err != nil || got.State != enforcer.StateExpired {
		t.Errorf("overdue reservation reads %+v, %v", got, err)
	}
	e.reserve("r2", "a", "", "1") // the room is back before any sweep
	e.clk.Advance(defaultTTL)
	n, err := e.l.Sweep(e.ctx)
	if err != nil || n < 1 || n > 2 { // r1 may already be marked
		t.Errorf("sweep: %d, %v", n, err)
	}
	if n, _ := e.l.Sweep(e.ctx); n != 0 {
		t.Errorf("second sweep marked %d", n)
	}
	_, err = e.l.Release(e.ctx, "r1")
	wantErr(t, err, enforcer.ErrReservationSettled)
	e.wantTotals("root", "0", "0")
}

func testLateCommit(t *testing.T, e *env) {
	e.create("a", "", "1")
	e.reserve("r1", "a", "Bash", "0.5")
	e.clk.Advance(2 * defaultTTL)
	if n, err := e.l.Sweep(e.ctx); err != nil || n != 1 {
		t.Errorf("sweep marked %d, %v; want 1", n, err)
	}
	r := e.commit("r1", "0.7")
	if r.State != enforcer.StateCommitted || !r.Late || r.Charged != usd("0.7") {
		t.Errorf("late commit: %+v", r)
	}
	e.wantTotals("a", "0.7", "0")
	e.reserve("r2", "a", "", "0.1")
	e.clk.Advance(2 * defaultTTL) // late commit without a sweep in between
	r = e.commit("r2", "")
	if !r.Late || r.Charged != usd("0.1") || r.CostSource != enforcer.CostEstimated {
		t.Errorf("late commit before sweep: %+v", r)
	}
	e.wantTotals("a", "0.8", "0")
}

func testOverdraft(t *testing.T, e *env) {
	e.create("root", "", "1")
	e.create("kid", "root", "")
	e.create("kid2", "root", "")
	e.takeAlerts()
	e.reserve("r1", "kid", "LLM", "0.5")
	e.commit("r1", "1.5")
	s := e.snap("root")
	if !s.Overdrawn || s.Committed != usd("1.5") || s.Remaining() != 0 {
		t.Errorf("root after overdraft: %+v", s)
	}
	var over []enforcer.Alert
	for _, a := range e.takeAlerts() {
		if a.Overdrawn {
			over = append(over, a)
		}
	}
	if len(over) != 1 || over[0].Account != "root" || over[0].Level != enforcer.AlertCritical ||
		over[0].Committed != usd("1.5") || over[0].Limit != usd("1") || !over[0].At.Equal(e.clk.Now()) {
		t.Errorf("overdraft alerts: %+v", over)
	}
	for _, acct := range []string{"root", "kid", "kid2"} {
		c, err := e.l.Check(e.ctx, acct, 0)
		if err != nil || c.OK || !c.Overdrawn || c.Account != "root" {
			t.Errorf("check %s on overdrawn root: %+v %v", acct, c, err)
		}
		_, err = e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "x-" + acct, Account: acct, Estimate: 0, TTL: time.Minute})
		wantDenied(t, err, "root", true)
	}
	e.create("other", "", "1") // independent trees are unaffected
	e.reserve("o", "other", "", "1")
	if _, err := e.l.SetLimit(e.ctx, "root", ptr(usd("2"))); err != nil {
		t.Fatal(err)
	}
	if s := e.snap("root"); s.Overdrawn {
		t.Errorf("still overdrawn after raise: %+v", s)
	}
	e.reserve("r2", "kid2", "", "0.5")
	e.commit("r2", "0.6") // 2.1 > 2: overdrawn again, one new alert
	n := 0
	for _, a := range e.takeAlerts() {
		if a.Overdrawn {
			n++
		}
	}
	if n != 1 {
		t.Errorf("re-entering overdraft raised %d overdraft alerts, want 1", n)
	}
	if _, err := e.l.SetLimit(e.ctx, "root", ptr(usd("2.1"))); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.l.Check(e.ctx, "kid", 0); !c.OK || c.Overdrawn {
		t.Errorf("limit == committed: %+v, want zero-estimate admitted", c)
	}
}

func testThresholds(t *testing.T, e *env) {
	e.create("root", "", "")
	e.create("a", "root", "1")
	if _, err := e.l.SetLimit(e.ctx, "root", ptr(usd("2"))); err != nil {
		t.Fatal(err)
	}
	e.takeAlerts()
	step := func(id, amount string, want ...string) {
		t.Helper()
		e.reserve(id, "a", "", amount)
		e.commit(id, "")
		if got := alertKeys(e.takeAlerts()); !slices.Equal(got, want) {
			t.Errorf("after %s: alerts %v, want %v", id, got, want)
		}
	}
	step("r1", "0.49")
	step("r2", "0.01", "a@50:info")
	step("r3", "0.01")
	step("r4", "0.30", "a@75:warning")
	step("r5", "0.19", "a@100:critical", "a@90:warning", "root@50:info")
	step("r6", "0") // no repeat at 100%
	// Raising the limit re-arms what the spend fell below; lowering it is
	// a new rising crossing.
	if _, err := e.l.SetLimit(e.ctx, "a", ptr(usd("1.5"))); err != nil {
		t.Fatal(err)
	}
	if got := e.takeAlerts(); len(got) != 0 {
		t.Errorf("raise fired %v", alertKeys(got))
	}
	if _, err := e.l.SetLimit(e.ctx, "a", ptr(usd("1"))); err != nil {
		t.Fatal(err)
	}
	got := e.takeAlerts()
	if keys := alertKeys(got); !slices.Equal(keys, []string{"a@100:critical", "a@75:warning", "a@90:warning"}) {
		t.Errorf("lowering fired %v", keys)
	}
	for _, a := range got {
		if a.Committed != usd("1") || a.Limit != usd("1") || !a.At.Equal(e.clk.Now()) {
			t.Errorf("alert fields: %+v", a)
		}
	}
}

func testHoldsDoNotFire(t *testing.T, e *env) {
	e.create("a", "", "1")
	e.takeAlerts()
	e.reserve("r1", "a", "", "1")
	if got := e.takeAlerts(); len(got) != 0 {
		t.Errorf("a hold fired %v", alertKeys(got))
	}
	if _, err := e.l.Release(e.ctx, "r1"); err != nil {
		t.Fatal(err)
	}
}

func testPool(t *testing.T, e *env) {
	e.create("pool", "", "1")
	e.create("pool/a", "pool", "")
	e.create("pool/b", "pool", "")
	e.reserve("a1", "pool/a", "", "0.6")
	_, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "b1", Account: "pool/b", Estimate: usd("0.5"), TTL: time.Minute})
	ib := wantDenied(t, err, "pool", false)
	if ib.Remaining != usd("0.4") {
		t.Errorf("pool remaining %s", ib.Remaining)
	}
	e.reserve("b2", "pool/b", "", "0.4")
	e.commit("a1", "0.1")
	e.wantTotals("pool", "0.1", "0.4")
	e.wantTotals("pool/a", "0.1", "0")
	e.wantTotals("pool/b", "0", "0.4")
}

func testSupervisor(t *testing.T, e *env) {
	if _, err := e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: "sup", Limit: ptr(usd("1")), AllocateChildren: true}); err != nil {
		t.Fatal(err)
	}
	e.create("w1", "sup", "0.6")
	_, err := e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: "w2", Parent: "sup", Limit: ptr(usd("0.5"))})
	wantErr(t, err, enforcer.ErrSupervisorBudget)
	msg := err.Error()
	if !strings.HasPrefix(msg, "Insufficient supervisor budget:") || !strings.Contains(msg, "$0.50") || !strings.Contains(msg, "$0.40") {
		t.Errorf("supervisor error text %q", msg)
	}
	if _, err := e.l.Snapshot(e.ctx, "w2"); !errors.Is(err, enforcer.ErrAccountNotFound) {
		t.Errorf("refused child exists: %v", err)
	}
	e.create("w2", "sup", "0.4")
	e.create("w3", "sup", "") // unlimited workers draw on the supervisor
	_, err = e.l.SetLimit(e.ctx, "w1", ptr(usd("0.7")))
	wantErr(t, err, enforcer.ErrSupervisorBudget)
	if _, err := e.l.SetLimit(e.ctx, "w1", ptr(usd("0.5"))); err != nil {
		t.Errorf("shrinking a worker: %v", err)
	}
	_, err = e.l.SetLimit(e.ctx, "sup", ptr(usd("0.8")))
	wantErr(t, err, enforcer.ErrSupervisorBudget)
	if !strings.HasPrefix(err.Error(), "Insufficient supervisor budget:") {
		t.Errorf("supervisor error text %q", err)
	}
	if s := e.snap("sup"); *s.Limit != usd("1") || !s.AllocateChildren {
		t.Errorf("refused change applied: %+v", s)
	}
	e.create("w4", "sup", "0.1")
}

func testPercentChild(t *testing.T, e *env) {
	e.create("p", "", "10")
	s, err := e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: "c", Parent: "p", PercentOfParent: 25})
	if err != nil || s.Limit == nil || *s.Limit != usd("2.5") {
		t.Fatalf("25%% of $10: %+v %v", s, err)
	}
	e.create("tiny", "", "0.000000003")
	s, err = e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: "tiny/c", Parent: "tiny", PercentOfParent: 50})
	if err != nil || *s.Limit != 1 {
		t.Fatalf("50%% of 3 nanos: %+v %v (want floor = 1)", s, err)
	}
	if _, err := e.l.SetLimit(e.ctx, "p", ptr(usd("100"))); err != nil {
		t.Fatal(err)
	}
	if s := e.snap("c"); *s.Limit != usd("2.5") {
		t.Errorf("percentage child followed its parent: %s", *s.Limit)
	}
	e.create("free", "", "")
	for _, spec := range []enforcer.AccountSpec{
		{ID: "x", Parent: "free", PercentOfParent: 10},
		{ID: "x", Parent: "p", PercentOfParent: 101},
		{ID: "x", Parent: "p", PercentOfParent: -1},
		{ID: "x", Parent: "p", PercentOfParent: 10, Limit: ptr(1)},
		{ID: "x", PercentOfParent: 10},
	} {
		_, err := e.l.CreateAccount(e.ctx, spec)
		wantErr(t, err, enforcer.ErrInvalidAccount)
	}
}

func testSetLimitKeepsSpend(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.reserve("r1", "a", "", "5")
	e.commit("r1", "")
	s, err := e.l.SetLimit(e.ctx, "a", ptr(usd("3")))
	if err != nil || s.Committed != usd("5") || !s.Overdrawn || s.Remaining() != 0 {
		t.Fatalf("lowered below spend: %+v %v", s, err)
	}
	_, err = e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "r2", Account: "a", Estimate: 0, TTL: time.Minute})
	wantDenied(t, err, "a", true)
	if _, err := e.l.SetLimit(e.ctx, "a", nil); err != nil {
		t.Fatal(err)
	}
	e.reserve("r2", "a", "", "100")
	e.wantTotals("a", "5", "100")
	_, err = e.l.SetLimit(e.ctx, "a", ptr(-1))
	wantErr(t, err, enforcer.ErrInvalidAccount)
}

func testToolStats(t *testing.T, e *env) {
	e.create("root", "", "")
	e.create("mid", "root", "")
	e.create("leaf", "mid", "")
	e.reserve("1", "leaf", "Bash", "0.01")
	e.commit("1", "")
	e.reserve("2", "leaf", "Bash", "0.01")
	e.commit("2", "0.02")
	e.reserve("3", "mid", "Read", "0.001")
	e.commit("3", "")
	e.reserve("4", "leaf", "Bash", "1")
	if _, err := e.l.Release(e.ctx, "4"); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]enforcer.ToolStats{
		"leaf": {"Bash": {Calls: 2, Spent: usd("0.03")}},
		"mid":  {"Bash": {Calls: 2, Spent: usd("0.03")}, "Read": {Calls: 1, Spent: usd("0.001")}},
		"root": {"Bash": {Calls: 2, Spent: usd("0.03")}, "Read": {Calls: 1, Spent: usd("0.001")}},
	}
	for id, tools := range want {
		got := e.snap(id).Tools
		if len(got) != len(tools) {
			t.Errorf("%s tools %v, want %v", id, got, tools)
		}
		for k, v := range tools {
			if got[k] != v {
				t.Errorf("%s tool %s: %+v, want %+v", id, k, got[k], v)
			}
		}
	}
}

func testLabels(t *testing.T, e *env) {
	labels := map[string]string{"tier": "gold"}
	if _, err := e.l.CreateAccount(e.ctx, enforcer.AccountSpec{ID: "a", Labels: labels}); err != nil {
		t.Fatal(err)
	}
	labels["tier"] = "mutated"
	if s := e.snap("a"); s.Labels["tier"] != "gold" {
		t.Errorf("labels aliased the caller's map: %v", s.Labels)
	}
	if _, err := e.l.SetLabels(e.ctx, "a", map[string]string{"owner": "ops"}); err != nil {
		t.Fatal(err)
	}
	s := e.snap("a")
	if len(s.Labels) != 1 || s.Labels["owner"] != "ops" {
		t.Errorf("labels not replaced: %v", s.Labels)
	}
	s.Labels["owner"] = "x"
	if e.snap("a").Labels["owner"] != "ops" {
		t.Errorf("snapshot aliased the ledger's labels")
	}
	_, err := e.l.SetLabels(e.ctx, "nope", nil)
	wantErr(t, err, enforcer.ErrAccountNotFound)
}
