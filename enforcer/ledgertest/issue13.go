package ledgertest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// runIssue13 checks hold extension (Extend) and what a commit records
// (CommitWith usage and price source, a hold's calibration fields).
func runIssue13(t *testing.T, newLedger NewLedger) {
	cases := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"ExtendGrowsPath", testExtendGrowsPath},
		{"ExtendDenyChangesNothing", testExtendDeny},
		{"ExtendParentLimit", testExtendParentLimit},
		{"ExtendOverdrawn", testExtendOverdrawn},
		{"ExtendIdempotent", testExtendIdempotent},
		{"ExtendSettledStates", testExtendSettled},
		{"ExtendExpiryDropsHeld", testExtendExpiry},
		{"ExtendBounds", testExtendBounds},
		{"ExtendMaxExtensions", testExtendMax},
		{"ExtendOverflow", testExtendOverflow},
		{"CommitChargesHeld", testCommitChargesHeld},
		{"ReleaseFreesHeld", testReleaseFreesHeld},
		{"CommitWithRecordsUsage", testCommitWithUsage},
		{"CommitWithValidation", testCommitWithValidation},
		{"CalibrationFields", testCalibrationFields},
		{"RepeatsSayReplayed", testRepeatsReplayed},
		{"ExtensionLookup", testExtensionLookup},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newEnv(t, newLedger)) })
	}
	t.Run("ExtensionsForgottenWithReservation", func(t *testing.T) { testExtendForgotten(t, newLedger) })
	t.Run("CalibrationStore", func(t *testing.T) { runCalibrationStore(t, newLedger) })
}

// testExtendForgotten: once a reservation is forgotten, neither its id
// nor anything reusing its storage remembers its extensions.
func testExtendForgotten(t *testing.T, newLedger NewLedger) {
	e := newRetainEnv(t, newLedger, time.Hour)
	e.create("a", "", "10")
	for _, id := range []string{"r", "q"} {
		e.reserve(id, "a", "", "1")
		e.extend(id, "x1", "0.5")
		e.commit(id, "")
	}
	e.clk.Advance(time.Hour)
	if _, err := e.l.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"s", "r"} { // a new id, and a reused one
		e.reserve(id, "a", "", "1")
		if r := e.extend(id, "x1", "0.7"); r.Extended != usd("0.7") {
			t.Errorf("%s: a fresh hold's extension x1: %+v", id, r)
		}
	}
	e.wantTotals("a", "3", "3.4")
}

func (e *env) extend(id, ext, add string) enforcer.Reservation {
	e.t.Helper()
	r, err := e.l.Extend(e.ctx, enforcer.ExtendRequest{ID: id, ExtensionID: ext, Add: usd(add)})
	if err != nil {
		e.t.Fatalf("extend %s by %s (%s): %v", id, add, ext, err)
	}
	return r
}

func (e *env) extendErr(id, ext, add string) error {
	e.t.Helper()
	r, err := e.l.Extend(e.ctx, enforcer.ExtendRequest{ID: id, ExtensionID: ext, Add: usd(add)})
	if err == nil {
		e.t.Fatalf("extend %s by %s (%s) = %+v, want an error", id, add, ext, r)
	}
	return err
}

// wantHeld asserts a reservation's state, estimate and extension.
func (e *env) wantHeld(id string, state enforcer.ReservationState, est, extended string) enforcer.Reservation {
	e.t.Helper()
	r, err := e.l.Reservation(e.ctx, id)
	if err != nil {
		e.t.Fatalf("reservation %s: %v", id, err)
	}
	if r.State != state || r.Estimate != usd(est) || r.Extended != usd(extended) || r.Held() != usd(est)+usd(extended) {
		e.t.Errorf("%s: %s estimate %s extended %s, want %s, %s and %s", id, r.State, r.Estimate, r.Extended, state, usd(est), usd(extended))
	}
	return r
}

// testExtendGrowsPath: an extension is held on the account and every
// ancestor, and the hold reads Estimate + Extended.
func testExtendGrowsPath(t *testing.T, e *env) {
	e.create("root", "", "10")
	e.create("root/a", "root", "2")
	e.create("root/a/x", "root/a", "")
	e.reserve("r", "root/a/x", "LLM", "0.3")
	r := e.extend("r", "x1", "0.2")
	if r.State != enforcer.StatePending || r.Estimate != usd("0.3") || r.Extended != usd("0.2") || r.Held() != usd("0.5") {
		t.Errorf("extended: %+v", r)
	}
	e.extend("r", "x2", "0.25")
	e.wantHeld("r", enforcer.StatePending, "0.3", "0.45")
	for _, id := range []string{"root", "root/a", "root/a/x"} {
		e.wantTotals(id, "0", "0.75")
	}
	if alerts := e.takeAlerts(); len(alerts) != 0 {
		t.Errorf("holds raise no threshold alerts, got %v", alertKeys(alerts))
	}
}

// testExtendDeny: a denied extension is the Reserve deny (Estimate is
// the addition, Remaining what is left), changes nothing, and stores no
// extension id, so a retry is evaluated afresh.
func testExtendDeny(t *testing.T, e *env) {
	e.create("a", "", "1")
	e.reserve("r", "a", "", "0.6")
	err := e.extendErr("r", "x1", "0.5")
	ib := wantDenied(t, err, "a", false)
	if ib.Estimate != usd("0.5") || ib.Remaining != usd("0.4") {
		t.Errorf("deny %+v, want estimate $0.50 and remaining $0.40", ib)
	}
	if want := "Insufficient budget: estimated $0.50 but only $0.40 remaining"; err.Error() != want {
		t.Errorf("deny text %q, want %q", err, want)
	}
	e.wantHeld("r", enforcer.StatePending, "0.6", "0")
	e.wantTotals("a", "0", "0.6")
	e.extend("r", "x1", "0.4") // same id, smaller: not a conflict, nothing was stored
	e.wantHeld("r", enforcer.StatePending, "0.6", "0.4")
	e.wantTotals("a", "0", "1") // inclusive: exactly the limit
	wantDenied(t, e.extendErr("r", "x2", "0.000000001"), "a", false)
}

// testExtendParentLimit: an ancestor's limit (here used by a sibling)
// refuses an extension the account itself would allow.
func testExtendParentLimit(t *testing.T, e *env) {
	e.create("root", "", "1")
	e.create("root/a", "root", "5")
	e.create("root/b", "root", "")
	e.reserve("sib", "root/b", "", "0.5")
	e.reserve("r", "root/a", "", "0.3")
	ib := wantDenied(t, e.extendErr("r", "x1", "0.3"), "root", false)
	if ib.Remaining != usd("0.2") || ib.Estimate != usd("0.3") {
		t.Errorf("deny %+v, want remaining $0.20 on root", ib)
	}
	e.wantTotals("root/a", "0", "0.3")
	e.wantTotals("root", "0", "0.8")
	e.extend("r", "x2", "0.2")
	e.wantTotals("root/a", "0", "0.5")
	e.wantTotals("root", "0", "1")
	e.wantTotals("root/b", "0", "0.5")
}

// testExtendOverdrawn: an overdrawn account on the path refuses every
// extension, as it refuses every hold.
func testExtendOverdrawn(t *testing.T, e *env) {
	e.create("root", "", "1")
	e.create("root/a", "root", "")
	e.reserve("r1", "root", "", "0.1")
	e.reserve("r2", "root/a", "", "0.1")
	e.commit("r1", "1.5")
	ib := wantDenied(t, e.extendErr("r2", "x1", "0.000000001"), "root", true)
	if !strings.Contains(ib.Error(), "overdrawn") {
		t.Errorf("overdrawn deny text %q", ib)
	}
	e.wantHeld("r2", enforcer.StatePending, "0.1", "0")
}

// testExtendIdempotent: the same extension id and amount returns the
// reservation as it is now (even settled); another amount is a conflict.
func testExtendIdempotent(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.reserve("r", "a", "", "1")
	e.extend("r", "x1", "0.5")
	e.clk.Advance(time.Second)
	again := e.extend("r", "x1", "0.5")
	if again.Extended != usd("0.5") {
		t.Errorf("retried extension counted twice: %+v", again)
	}
	e.wantTotals("a", "0", "1.5")
	err := e.extendErr("r", "x1", "0.6")
	wantErr(t, err, enforcer.ErrReservationConflict)
	if !strings.Contains(err.Error(), "x1") {
		t.Errorf("conflict %q does not name the extension", err)
	}
	e.commit("r", "")
	after := e.extend("r", "x1", "0.5") // a retry after the commit
	if after.State != enforcer.StateCommitted || after.Charged != usd("1.5") || after.Extended != usd("0.5") {
		t.Errorf("retry after commit: %+v", after)
	}
	wantErr(t, e.extendErr("r", "x1", "0.7"), enforcer.ErrReservationConflict)
	e.wantTotals("a", "1.5", "0")
	// Extension ids are per reservation.
	e.reserve("s", "a", "", "1")
	if r := e.extend("s", "x1", "0.7"); r.Extended != usd("0.7") {
		t.Errorf("same extension id on another reservation: %+v", r)
	}
}

// testExtendSettled: a new extension of a committed, released or
// expired hold wraps ErrReservationSettled and says which; an unknown
// reservation is not found.
func testExtendSettled(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.reserve("c", "a", "", "1")
	e.commit("c", "0.5")
	e.reserve("rel", "a", "", "1")
	if _, err := e.l.Release(e.ctx, "rel"); err != nil {
		t.Fatal(err)
	}
	e.reserve("exp", "a", "", "1")
	e.clk.Advance(defaultTTL)
	for id, state := range map[string]string{"c": "committed", "rel": "released", "exp": "expired"} {
		err := e.extendErr(id, "x1", "0.1")
		wantErr(t, err, enforcer.ErrReservationSettled)
		if !strings.Contains(err.Error(), state) {
			t.Errorf("extending %s: %q does not say %s", id, err, state)
		}
	}
	wantErr(t, e.extendErr("missing", "x1", "0.1"), enforcer.ErrReservationNotFound)
	e.wantTotals("a", "0.5", "0")
}

// testExtendExpiry: an extended hold stops counting at its expiry, the
// extension included; a late commit still charges.
func testExtendExpiry(t *testing.T, e *env) {
	e.create("root", "", "10")
	e.create("root/a", "root", "")
	e.reserve("r", "root/a", "", "1")
	e.extend("r", "x1", "2")
	e.wantTotals("root", "0", "3")
	e.clk.Advance(defaultTTL - time.Nanosecond)
	e.wantTotals("root", "0", "3")
	e.clk.Advance(time.Nanosecond)
	e.wantTotals("root", "0", "0")
	e.wantTotals("root/a", "0", "0")
	e.wantHeld("r", enforcer.StateExpired, "1", "2")
	if again := e.extend("r", "x1", "2"); again.State != enforcer.StateExpired {
		t.Errorf("retry of an extension after expiry: %+v", again)
	}
	r := e.commit("r", "")
	if !r.Late || r.Charged != usd("3") {
		t.Errorf("late commit of an extended hold: %+v", r)
	}
	e.wantTotals("root", "3", "0")
}

// testExtendBounds: malformed extensions wrap ErrInvalidReservation and
// change nothing.
func testExtendBounds(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.reserve("r", "a", "", "1")
	long := strings.Repeat("x", enforcer.MaxExtensionIDLen)
	for _, req := range []enforcer.ExtendRequest{
		{ID: "r", ExtensionID: "x", Add: 0},
		{ID: "r", ExtensionID: "x", Add: -1},
		{ID: "r", ExtensionID: "", Add: 1},
		{ID: "r", ExtensionID: long + "x", Add: 1},
		{ID: "", ExtensionID: "x", Add: 1},
	} {
		_, err := e.l.Extend(e.ctx, req)
		wantErr(t, err, enforcer.ErrInvalidReservation)
	}
	e.wantHeld("r", enforcer.StatePending, "1", "0")
	if r, err := e.l.Extend(e.ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: long, Add: 1}); err != nil || r.Extended != 1 {
		t.Errorf("extension id of the maximum length: %+v, %v", r, err)
	}
}

// testExtendMax: a reservation takes at most MaxExtensions extensions;
// retries of the ones it has still answer.
func testExtendMax(t *testing.T, e *env) {
	e.create("a", "", "")
	e.reserve("r", "a", "", "0")
	for i := range enforcer.MaxExtensions {
		if _, err := e.l.Extend(e.ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: extID(i), Add: 1}); err != nil {
			t.Fatalf("extension %d: %v", i, err)
		}
	}
	_, err := e.l.Extend(e.ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "one-more", Add: 1})
	wantErr(t, err, enforcer.ErrInvalidReservation)
	r, err := e.l.Extend(e.ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: extID(7), Add: 1})
	if err != nil || r.Extended != enforcer.MaxExtensions {
		t.Errorf("retry at the maximum: %+v, %v", r, err)
	}
	e.wantTotals("a", "0", "0.000001") // 1000 nano-USD
}

func extID(i int) string { return fmt.Sprintf("r/x%d", i) }

// testExtendOverflow: a hold that would pass MaxNanos is refused, not
// wrapped, and nothing changes.
func testExtendOverflow(t *testing.T, e *env) {
	e.create("a", "", "")
	big := enforcer.MaxNanos - 10
	if _, err := e.l.Reserve(e.ctx, enforcer.ReserveRequest{ID: "r", Account: "a", Estimate: big, TTL: defaultTTL}); err != nil {
		t.Fatal(err)
	}
	_, err := e.l.Extend(e.ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "x", Add: 20})
	wantErr(t, err, enforcer.ErrInvalidAmount)
	if s := e.snap("a"); s.Pending != big {
		t.Errorf("after a refused overflow: %+v", s)
	}
}

// testCommitChargesHeld: a commit without an actual charges the whole
// hold; any commit or release drops the whole hold from pending.
func testCommitChargesHeld(t *testing.T, e *env) {
	e.create("root", "", "10")
	e.create("root/a", "root", "")
	e.reserve("est", "root/a", "LLM", "0.3")
	e.extend("est", "x1", "0.2")
	r := e.commit("est", "")
	if r.Charged != usd("0.5") || r.CostSource != enforcer.CostEstimated || r.Extended != usd("0.2") {
		t.Errorf("commit without actual: %+v", r)
	}
	if again := e.commit("est", ""); again.Charged != usd("0.5") {
		t.Errorf("repeated commit: %+v", again)
	}
	e.reserve("act", "root/a", "LLM", "0.3")
	e.extend("act", "x1", "0.4")
	e.commit("act", "0.6") // above the estimate, within the hold
	e.wantTotals("root", "1.1", "0")
	e.wantTotals("root/a", "1.1", "0")
	if st := e.snap("root").Tools["LLM"]; st.Calls != 2 || st.Spent != usd("1.1") {
		t.Errorf("tool stats %+v", st)
	}
}

func testReleaseFreesHeld(t *testing.T, e *env) {
	e.create("root", "", "1")
	e.create("root/a", "root", "")
	e.reserve("r", "root/a", "", "0.3")
	e.extend("r", "x1", "0.7")
	wantDenied(t, e.extendErr("r", "x2", "0.1"), "root", false)
	r, err := e.l.Release(e.ctx, "r")
	if err != nil || r.State != enforcer.StateReleased || r.Extended != usd("0.7") {
		t.Fatalf("release: %+v, %v", r, err)
	}
	e.wantTotals("root", "0", "0")
	e.wantTotals("root/a", "0", "0")
	e.reserve("s", "root/a", "", "1") // the whole limit is free again
}

var testUsage = enforcer.TokenUsage{Model: "claude-sonnet-4-5", InputTokens: 1200, OutputTokens: 340,
	CacheReadTokens: 50_000, CacheWriteTokens: 800, CacheWrite1hTokens: 2}

// testCommitWithUsage: usage and price source come back from the commit,
// Reservation and Reservations; a repeat keeps the first record; the
// ledger keeps its own copy.
func testCommitWithUsage(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.reserve("u", "a", "LLM", "1")
	u := testUsage
	actual := usd("0.25")
	req := enforcer.CommitRequest{ID: "u", Actual: &actual, Usage: &u, PriceSource: "litellm:claude-sonnet-4-5"}
	r, err := e.l.CommitWith(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	u.OutputTokens = 999_999 // the caller's value is the caller's
	wantUsage(t, "commit", r, usd("0.25"))
	got, err := e.l.Reservation(e.ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	wantUsage(t, "Reservation", got, usd("0.25"))
	list, err := e.l.Reservations(e.ctx, enforcer.ReservationFilter{Account: "a", State: enforcer.StateCommitted})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	wantUsage(t, "Reservations", list[0], usd("0.25"))
	got.Usage.InputTokens = 7 // nor does a reader's write reach the ledger
	again, err := e.l.CommitWith(e.ctx, enforcer.CommitRequest{ID: "u", Actual: &actual, PriceSource: "other"})
	if err != nil {
		t.Fatalf("repeated commit with other usage: %v", err)
	}
	wantUsage(t, "repeated commit", again, usd("0.25"))
	e.reserve("plain", "a", "LLM", "1")
	if p := e.commit("plain", "0.5"); p.Usage != nil || p.PriceSource != "" {
		t.Errorf("commit without usage records %+v / %q", p.Usage, p.PriceSource)
	}
	e.wantTotals("a", "0.75", "0")
}

func wantUsage(t *testing.T, where string, r enforcer.Reservation, charged enforcer.Nanos) {
	t.Helper()
	if r.Usage == nil || *r.Usage != testUsage || r.PriceSource != "litellm:claude-sonnet-4-5" || r.Charged != charged {
		t.Errorf("%s: usage %+v source %q charged %s; want %+v, litellm:claude-sonnet-4-5, %s", where, r.Usage, r.PriceSource, r.Charged, testUsage, charged)
	}
}

// testCommitWithValidation: what a commit records is bounded; a refused
// commit changes nothing.
func testCommitWithValidation(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.reserve("r", "a", "", "1")
	one := usd("1")
	for name, req := range map[string]enforcer.CommitRequest{
		"price source": {ID: "r", Actual: &one, PriceSource: strings.Repeat("s", enforcer.MaxPriceSourceLen+1)},
		"usage model":  {ID: "r", Actual: &one, Usage: &enforcer.TokenUsage{Model: strings.Repeat("m", enforcer.MaxUsageModelLen+1)}},
	} {
		_, err := e.l.CommitWith(e.ctx, req)
		if !errors.Is(err, enforcer.ErrInvalidReservation) {
			t.Errorf("%s too long: %v, want ErrInvalidReservation", name, err)
		}
	}
	_, err := e.l.CommitWith(e.ctx, enforcer.CommitRequest{ID: "r", Actual: &one, Usage: &enforcer.TokenUsage{Model: "m", OutputTokens: -1}})
	var ue *enforcer.UsageError
	if !errors.As(err, &ue) || ue.Field != "usage.output_tokens" {
		t.Errorf("negative usage: %v, want a *UsageError naming usage.output_tokens", err)
	}
	e.wantHeld("r", enforcer.StatePending, "1", "0")
	e.wantTotals("a", "0", "1")
	r, err := e.l.CommitWith(e.ctx, enforcer.CommitRequest{ID: "r", PriceSource: strings.Repeat("s", enforcer.MaxPriceSourceLen)})
	if err != nil || r.Charged != one || r.CostSource != enforcer.CostEstimated {
		t.Errorf("commit at the bounds: %+v, %v", r, err)
	}
}

// testCalibrationFields: BaseEstimate and CalibrationKey are recorded and
// returned everywhere, never compared on retry, and bounded.
func testCalibrationFields(t *testing.T, e *env) {
	e.create("a", "", "10")
	key := strings.Repeat("k", enforcer.MaxCalibrationKeyLen)
	req := enforcer.ReserveRequest{ID: "r", Account: "a", Tool: "LLM", Estimate: usd("0.3"), TTL: defaultTTL,
		BaseEstimate: usd("0.1"), CalibrationKey: key}
	check := func(where string, r enforcer.Reservation) {
		t.Helper()
		if r.BaseEstimate != usd("0.1") || r.CalibrationKey != key {
			t.Errorf("%s: base %s key %q", where, r.BaseEstimate, r.CalibrationKey)
		}
	}
	r, err := e.l.Reserve(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	check("reserve", r)
	retry := req
	retry.BaseEstimate, retry.CalibrationKey = usd("0.2"), "other"
	r, err = e.l.Reserve(e.ctx, retry)
	if err != nil {
		t.Fatalf("retry with other calibration fields: %v", err)
	}
	check("retry", r)
	check("commit", e.commit("r", "0.2"))
	got, err := e.l.Reservation(e.ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	check("Reservation", got)
	list, err := e.l.Reservations(e.ctx, enforcer.ReservationFilter{Account: "a"})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	check("Reservations", list[0])
	for _, bad := range []enforcer.ReserveRequest{
		{ID: "b1", Account: "a", TTL: defaultTTL, CalibrationKey: key + "k"},
		{ID: "b2", Account: "a", TTL: defaultTTL, BaseEstimate: -1},
	} {
		_, err := e.l.Reserve(e.ctx, bad)
		wantErr(t, err, enforcer.ErrInvalidReservation)
	}
}

// testRepeatsReplayed: a repeated commit, release or extension (a retry
// after a lost reply) says Replayed, so a reader counting what changed
// does not count it twice; the first answer does not.
func testRepeatsReplayed(t *testing.T, e *env) {
	e.create("a", "", "10")
	e.reserve("r", "a", "", "1")
	first := []enforcer.Reservation{e.extend("r", "x1", "0.5")}
	again := []enforcer.Reservation{e.extend("r", "x1", "0.5")}
	first = append(first, e.commit("r", "0.7"))
	again = append(again, e.commit("r", "0.7"), e.extend("r", "x1", "0.5"))
	e.reserve("q", "a", "", "1")
	for range 2 {
		r, err := e.l.Release(e.ctx, "q")
		if err != nil {
			t.Fatalf("release q: %v", err)
		}
		if len(first) < 3 {
			first = append(first, r)
		} else {
			again = append(again, r)
		}
	}
	for i, r := range first {
		if r.Replayed {
			t.Errorf("first answer %d (%s %s) says Replayed", i, r.ID, r.State)
		}
	}
	for i, r := range again {
		if !r.Replayed {
			t.Errorf("repeat %d (%s %s) does not say Replayed", i, r.ID, r.State)
		}
	}
	if r := e.wantHeld("r", enforcer.StateCommitted, "1", "0.5"); r.Replayed {
		t.Errorf("a plain read says Replayed: %+v", r)
	}
	e.wantTotals("a", "0.7", "0")
}

// replayed is r as a repeat of the operation that answered r answers it.
func replayed(r enforcer.Reservation) enforcer.Reservation {
	r.Replayed = true
	return r
}

// testExtensionLookup: a ledger that implements ExtensionLookup says
// what a recorded extension added, also once settled, and nothing of an
// unknown id or a denied extension.
func testExtensionLookup(t *testing.T, e *env) {
	lk, ok := e.l.(enforcer.ExtensionLookup)
	if !ok {
		t.Skipf("%T does not implement enforcer.ExtensionLookup", e.l)
	}
	e.create("a", "", "2")
	e.reserve("r", "a", "", "1")
	e.extend("r", "x1", "0.5")
	e.extendErr("r", "x2", "5") // denied: records nothing
	want := func(ext string, add enforcer.Nanos, known bool) {
		t.Helper()
		got, k, err := lk.ExtensionAdded(e.ctx, "r", ext)
		if err != nil || k != known || got != add {
			t.Errorf("extension %s: %s, %v, %v; want %s, %v", ext, got, k, err, add, known)
		}
	}
	want("x1", usd("0.5"), true)
	want("x2", 0, false)
	e.commit("r", "")
	want("x1", usd("0.5"), true)
}
