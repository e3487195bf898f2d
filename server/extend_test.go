package server

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/enforcer/ledgertest"
	"github.com/purser-dev/purser/server/decisionlog"
)

// fakeExtendLedger is a memory ledger whose Extend and CommitWith follow
// the Ledger contract on a single budget of room, so the handlers can be
// tested on their own (the stores' Extend has its conformance suite).
type fakeExtendLedger struct {
	*enforcer.MemoryLedger
	mu       sync.Mutex
	room     enforcer.Nanos
	exts     map[string]enforcer.Nanos // reservation id + "\x00" + extension id -> add
	extended map[string]enforcer.Nanos
	commits  map[string]enforcer.CommitRequest
}

func newFakeExtendLedger(room enforcer.Nanos, clock enforcer.Clock) *fakeExtendLedger {
	return &fakeExtendLedger{MemoryLedger: enforcer.NewMemoryLedger(enforcer.LedgerOptions{Clock: clock}), room: room,
		exts: map[string]enforcer.Nanos{}, extended: map[string]enforcer.Nanos{}, commits: map[string]enforcer.CommitRequest{}}
}

func (l *fakeExtendLedger) Reservation(ctx context.Context, id string) (enforcer.Reservation, error) {
	r, err := l.MemoryLedger.Reservation(ctx, id)
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Extended = l.extended[id]
	if c, ok := l.commits[id]; ok {
		r.Usage, r.PriceSource = c.Usage, c.PriceSource
	}
	return r, err
}

func (l *fakeExtendLedger) Reservations(ctx context.Context, f enforcer.ReservationFilter) ([]enforcer.Reservation, error) {
	list, err := l.MemoryLedger.Reservations(ctx, f)
	for i := range list {
		list[i], _ = l.Reservation(ctx, list[i].ID)
	}
	return list, err
}

func (l *fakeExtendLedger) Extend(ctx context.Context, req enforcer.ExtendRequest) (enforcer.Reservation, error) {
	r, err := l.Reservation(ctx, req.ID)
	if err != nil {
		return r, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key := req.ID + "\x00" + req.ExtensionID
	if prev, ok := l.exts[key]; ok {
		if prev != req.Add {
			return r, fmt.Errorf("extension %q of %q added %s, not %s: %w", req.ExtensionID, req.ID, prev, req.Add, enforcer.ErrReservationConflict)
		}
		return r, nil
	}
	if r.State != enforcer.StatePending {
		return r, fmt.Errorf("extend %q: it is %s: %w", req.ID, r.State, enforcer.ErrReservationSettled)
	}
	if req.Add > l.room {
		return r, &enforcer.InsufficientBudgetError{Account: r.Account, Estimate: req.Add, Remaining: l.room}
	}
	l.room -= req.Add
	l.exts[key] = req.Add
	l.extended[req.ID] += req.Add
	r.Extended = l.extended[req.ID]
	return r, nil
}

func (l *fakeExtendLedger) CommitWith(ctx context.Context, req enforcer.CommitRequest) (enforcer.Reservation, error) {
	if _, err := l.MemoryLedger.Commit(ctx, req.ID, req.Actual, req.Source); err != nil {
		return enforcer.Reservation{}, err
	}
	l.mu.Lock()
	l.commits[req.ID] = req
	l.mu.Unlock()
	return l.Reservation(ctx, req.ID)
}

func newExtendFixture(t *testing.T, room enforcer.Nanos, cfg enforcer.Config) (*fixture, *ledgertest.FakeClock) {
	t.Helper()
	clock := ledgertest.NewFakeClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	cfg.Clock = clock
	l := newFakeExtendLedger(room, clock)
	f := newFixtureOn(t, l, cfg, true, nil)
	f.mustDo(adminToken, "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "10"}, 201)
	f.mustDo(adminToken, "PUT", "/v1/accounts/team-b", map[string]any{"limit_usd": "10"}, 201)
	return f, clock
}

func (f *fixture) reserveRead(id string) {
	f.t.Helper()
	out := f.mustDo(agentA, "POST", "/v1/reservations", map[string]any{"id": id, "account": "team-a", "tool": "Read"}, 200)
	if out["decision"] != "allow" {
		f.t.Fatalf("reserve %s: %v", id, out)
	}
}

func resOf(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	r, ok := out["reservation"].(map[string]any)
	if !ok {
		t.Fatalf("no reservation in %v", out)
	}
	return r
}

func TestExtendGrowsTheHoldAndIsIdempotent(t *testing.T) {
	f, _ := newExtendFixture(t, 1_000_000_000, enforcer.Config{})
	f.reserveRead("r1") // Read: $0.001
	out := f.mustDo(agentA, "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.05"}, 200)
	r := resOf(t, out)
	if out["decision"] != "allow" || out["add_nanos"] != float64(50_000_000) || out["add_usd"] != "0.05" || out["extension_id"] != "e1" ||
		r["estimate_nanos"] != float64(1_000_000) || r["extended_nanos"] != float64(50_000_000) || r["held_nanos"] != float64(51_000_000) ||
		r["held_usd"] != "0.051" || out["remaining_nanos"] != nil {
		t.Fatalf("extend: %v", out)
	}
	// A retry after a lost reply: same answer, nothing added twice.
	again := f.mustDo(agentA, "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_nanos": 50_000_000}, 200)
	if resOf(t, again)["held_nanos"] != float64(51_000_000) {
		t.Errorf("retried extension added again: %v", again)
	}
	st, out := f.do(agentA, "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.06"})
	if msg := errMsg(out); st != 409 || errCode(out) != "conflict" || !strings.Contains(msg, "extension id only to retry") {
		t.Errorf("reused extension id with another amount: %d %v", st, out)
	}
	got := f.mustDo(agentA, "GET", "/v1/reservations/r1", nil, 200)
	if got["extended_nanos"] != float64(50_000_000) || got["held_nanos"] != float64(51_000_000) {
		t.Errorf("GET after extend: %v", got)
	}
	list := f.mustDo(agentA, "GET", "/v1/reservations?account=team-a", nil, 200)
	if l := list["reservations"].([]any); len(l) != 1 || l[0].(map[string]any)["held_nanos"] != float64(51_000_000) {
		t.Errorf("list after extend: %v", list)
	}
}

func TestExtendDeniedLeavesTheHoldAndSaysWhatRemains(t *testing.T) {
	f, _ := newExtendFixture(t, 50_000_000, enforcer.Config{})
	f.reserveRead("r1")
	out := f.mustDo(agentA, "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.5"}, 200)
	r := resOf(t, out)
	if out["decision"] != "deny" || out["layer"] != "budget" || out["reason"] != "Insufficient budget: estimated $0.50 but only $0.05 remaining" ||
		out["remaining_nanos"] != float64(50_000_000) || r["held_nanos"] != float64(1_000_000) || r["state"] != "pending" {
		t.Fatalf("denied extend: %v", out)
	}
	// The same extension id may try again with another amount: a deny
	// recorded nothing.
	ok := f.mustDo(agentA, "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.05"}, 200)
	if ok["decision"] != "allow" || resOf(t, ok)["held_nanos"] != float64(51_000_000) {
		t.Errorf("extend after a deny: %v", ok)
	}
}

func TestExtendRefusesSettledExpiredUnknownAndForeign(t *testing.T) {
	f, clock := newExtendFixture(t, 1_000_000_000, enforcer.Config{})
	body := map[string]any{"extension_id": "e1", "add_usd": "0.01"}
	f.reserveRead("done")
	f.mustDo(agentA, "POST", "/v1/reservations/done/commit", nil, 200)
	st, out := f.do(agentA, "POST", "/v1/reservations/done/extend", body)
	if st != 409 || errCode(out) != "already_settled" || !strings.Contains(errMsg(out), `"done" is committed`) {
		t.Errorf("extend committed: %d %v", st, out)
	}
	f.reserveRead("old")
	clock.Advance(6 * time.Minute) // past the 5-minute default TTL
	st, out = f.do(agentA, "POST", "/v1/reservations/old/extend", body)
	if st != 409 || errCode(out) != "already_settled" || !strings.Contains(errMsg(out), `"old" is expired`) {
		t.Errorf("extend expired: %d %v", st, out)
	}
	st, out = f.do(agentA, "POST", "/v1/reservations/nope/extend", body)
	if st != 404 || errCode(out) != "reservation_not_found" {
		t.Errorf("extend unknown: %d %v", st, out)
	}
	f.mustDo(agentB, "POST", "/v1/reservations", map[string]any{"id": "theirs", "account": "team-b", "tool": "Read"}, 200)
	st, out = f.do(agentA, "POST", "/v1/reservations/theirs/extend", body)
	if st != 404 || errCode(out) != "reservation_not_found" {
		t.Errorf("extend another tenant's: %d %v; want 404 like an unknown id", st, out)
	}
	if st, _ := f.do("", "POST", "/v1/reservations/theirs/extend", body); st != 401 {
		t.Errorf("extend without a token: %d", st)
	}
}

func TestExtendBadBodyNamesTheField(t *testing.T) {
	f, _ := newExtendFixture(t, 1_000_000_000, enforcer.Config{})
	f.reserveRead("r1")
	for _, c := range []struct {
		body any
		want string
	}{
		{map[string]any{"add_usd": "0.01"}, `"extension_id" is required`},
		{map[string]any{"extension_id": strings.Repeat("x", 129), "add_usd": "0.01"}, `"extension_id" is 129 bytes`},
		{map[string]any{"extension_id": "e"}, `"add_usd" or "add_nanos" is required`},
		{map[string]any{"extension_id": "e", "add_usd": "0.01", "add_nanos": 1}, `either "add_usd" or "add_nanos"`},
		{map[string]any{"extension_id": "e", "add_usd": "-1"}, `"add_usd"`},
		{map[string]any{"extension_id": "e", "add_usd": "abc"}, `"add_usd"`},
		{map[string]any{"extension_id": "e", "add_nanos": -5}, `"add_nanos" must be >= 0`},
		{map[string]any{"extension_id": "e", "add_nanos": 0}, `"add_nanos" must be above 0`},
		{map[string]any{"extension_id": "e", "add_usd": "0"}, `"add_usd" must be above 0`},
		{`{"extension_id": "e", "add_nanos": 1.5}`, `"add_nanos"`},
		{`{"extension_id": "e", "add_nanos": 1e30}`, `"add_nanos"`},
		{`{"extension_id": "e", "add": 1}`, `unknown field "add"`},
		{`{"extension_id": 7, "add_nanos": 1}`, `"extension_id"`},
		{"", "empty"},
	} {
		st, out := f.do(agentA, "POST", "/v1/reservations/r1/extend", c.body)
		if st != 400 || !strings.Contains(errMsg(out), c.want) {
			t.Errorf("%v: %d %v; want 400 naming %s", c.body, st, out, c.want)
		}
	}
	if got := f.mustDo(agentA, "GET", "/v1/reservations/r1", nil, 200); got["held_nanos"] != float64(1_000_000) {
		t.Errorf("bad extensions changed the hold: %v", got)
	}
}

func TestCommitWithUsagePricesItAndShowsIt(t *testing.T) {
	f, _ := newExtendFixture(t, 1_000_000_000, enforcer.Config{})
	f.reserveRead("r1")
	usage := map[string]any{"model": "claude-sonnet-4-5", "input_tokens": 1000, "output_tokens": 500,
		"cache_read_tokens": 2000, "cache_write_tokens": 100}
	out := f.mustDo(agentA, "POST", "/v1/reservations/r1/commit", map[string]any{"usage": usage}, 200)
	// $3/M input, $15/M output, $0.30/M cache read, $3.75/M cache write.
	const want = 3_000_000 + 7_500_000 + 600_000 + 375_000
	if out["charged_nanos"] != float64(want) || out["cost_source"] != "actual" || out["price_source"] != "table:claude-sonnet-4-5" ||
		out["price_fallback"] != false {
		t.Fatalf("commit with usage: %v", out)
	}
	got := f.mustDo(agentA, "GET", "/v1/reservations/r1", nil, 200)
	u, _ := got["usage"].(map[string]any)
	if u["model"] != "claude-sonnet-4-5" || u["output_tokens"] != float64(500) || u["cache_write_1h_tokens"] != float64(0) ||
		got["price_source"] != "table:claude-sonnet-4-5" {
		t.Errorf("GET after a usage commit: %v", got)
	}

	// An unknown model is priced by the fallback rule, and flagged.
	f.reserveRead("r2")
	out = f.mustDo(agentA, "POST", "/v1/reservations/r2/commit", map[string]any{"usage": map[string]any{"model": "no-such-model", "output_tokens": 10}}, 200)
	if out["price_fallback"] != true || !strings.HasPrefix(fmt.Sprint(out["price_source"]), "fallback:") || out["charged_nanos"] == float64(0) {
		t.Errorf("unknown model: %v", out)
	}

	// Beside an amount, the amount is charged and the usage recorded.
	f.reserveRead("r3")
	out = f.mustDo(agentA, "POST", "/v1/reservations/r3/commit", map[string]any{"actual_usd": "0.02", "usage": usage}, 200)
	if out["charged_nanos"] != float64(20_000_000) || out["price_source"] != "table:claude-sonnet-4-5" || out["usage"] == nil {
		t.Errorf("usage beside actual_usd: %v", out)
	}
	// No usage: no price fields.
	f.reserveRead("r4")
	if out = f.mustDo(agentA, "POST", "/v1/reservations/r4/commit", nil, 200); out["price_fallback"] != nil || out["usage"] != nil {
		t.Errorf("plain commit: %v", out)
	}
}

func TestCommitBadUsageNamesTheField(t *testing.T) {
	huge := enforcer.PriceTable{"huge": {Input: enforcer.PerMTok(math.MaxInt64)}}
	f, _ := newExtendFixture(t, 1_000_000_000, enforcer.Config{LLM: enforcer.LLMRule{Prices: huge}})
	f.reserveRead("r1")
	for _, c := range []struct {
		body string
		want string
	}{
		{`{"usage": {"model": "huge", "output_tokens": -1}}`, `"usage.output_tokens": must be >= 0`},
		{`{"usage": {"model": "huge", "cache_read_tokens": 1000000001}}`, `"usage.cache_read_tokens": 1000000001 tokens is above the limit`},
		{`{"usage": {"model": "huge", "input_tokens": 1.5}}`, `"usage.input_tokens"`},
		{`{"usage": {"model": "huge", "input_tokens": 1e3}}`, `"usage.input_tokens"`},
		{`{"usage": {"model": "huge", "input_tokens": "12"}}`, `"usage.input_tokens"`},
		{`{"usage": {"model": "huge", "input_tokens": 99999999999999999999}}`, `"usage.input_tokens"`},
		{`{"usage": {"model": "huge", "cache_write_5m_tokens": 1}}`, `unknown field "cache_write_5m_tokens"`},
		{`{"usage": {"input_tokens": 1}}`, `"usage.model" is required`},
		{`{"usage": {"model": "huge", "input_tokens": 1000000000}}`, `"usage": priced as table:huge`},
	} {
		st, out := f.do(agentA, "POST", "/v1/reservations/r1/commit", c.body)
		if st != 400 || !strings.Contains(errMsg(out), c.want) {
			t.Errorf("%s: %d %v; want 400 naming %s", c.body, st, out, c.want)
		}
	}
	if got := f.mustDo(agentA, "GET", "/v1/reservations/r1", nil, 200); got["state"] != "pending" {
		t.Errorf("a refused commit settled the reservation: %v", got)
	}
}

func TestExtendAndCommitAreLoggedAndCounted(t *testing.T) {
	f, _ := newExtendFixture(t, 50_000_000, enforcer.Config{})
	f.reserveRead("r1")
	f.mustDo(agentA, "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.01"}, 200)
	f.mustDo(agentA, "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e2", "add_usd": "1"}, 200)
	f.mustDo(agentA, "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.02"}, 409)
	f.mustDo(agentA, "POST", "/v1/reservations/r1/commit", map[string]any{"usage": map[string]any{"model": "mystery", "input_tokens": 10}}, 200)
	metrics := f.metricsText()
	for _, want := range []string{`purser_extensions_total{outcome="allow"} 1`, `purser_extensions_total{outcome="deny"} 1`,
		`purser_extensions_total{outcome="conflict"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	evs := f.events(5)
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind+"/"+ev.Outcome)
		if ev.Version != decisionlog.EventVersion {
			t.Errorf("version %d", ev.Version)
		}
	}
	if got := strings.Join(kinds, " "); got != "reserve/allow extend/allow extend/deny extend/error commit/committed" {
		t.Fatalf("events: %s", got)
	}
	ext, deny, conflict, commit := evs[1], evs[2], evs[3], evs[4]
	if ext.ExtensionID != "e1" || ext.AddNanos != 10_000_000 || ext.HeldNanos != 11_000_000 || ext.ReservationID != "r1" || ext.Ledger == nil {
		t.Errorf("extend event: %+v", ext)
	}
	if deny.Reason != "Insufficient budget: estimated $1.00 but only $0.04 remaining" || deny.HeldNanos != 11_000_000 {
		t.Errorf("deny event: %+v", deny)
	}
	if conflict.ErrorCode != "conflict" || conflict.Error == "" {
		t.Errorf("conflict event: %+v", conflict)
	}
	if commit.Usage == nil || commit.Usage.Model != "mystery" || commit.Usage.InputTokens != 10 || !commit.PriceFallback ||
		!strings.HasPrefix(commit.PriceSource, "fallback:") || commit.ChargedNanos == nil || commit.CostSource != "actual" {
		t.Errorf("commit event: %+v", commit)
	}
}

// metricsText scrapes /metrics with an admin token.
func (f *fixture) metricsText() string {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func errCode(out map[string]any) string { c, _ := errorOf(out); return c }
func errMsg(out map[string]any) string  { _, m := errorOf(out); return m }

// TestExtendOnTheMemoryLedger runs the path on the real memory ledger:
// the budget is the account's limit, a deny leaves the hold, and the
// commit's usage is recorded.
func TestExtendOnTheMemoryLedger(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "0.10"}, 201)
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r1", "account": "team-a", "tool": "Read"}, 200)
	out := f.mustDo("", "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.05"}, 200)
	if out["decision"] != "allow" || resOf(t, out)["held_nanos"] != float64(51_000_000) {
		t.Fatalf("extend: %v", out)
	}
	out = f.mustDo("", "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e2", "add_usd": "0.05"}, 200)
	if out["decision"] != "deny" || out["reason"] != "Insufficient budget: estimated $0.05 but only $0.049 remaining" ||
		out["remaining_nanos"] != float64(49_000_000) || resOf(t, out)["held_nanos"] != float64(51_000_000) {
		t.Fatalf("denied extend: %v", out)
	}
	if a := f.mustDo("", "GET", "/v1/accounts/team-a", nil, 200); a["pending_nanos"] != float64(51_000_000) {
		t.Errorf("a denied extension changed the account: %v", a)
	}
	f.mustDo("", "POST", "/v1/reservations/r1/commit", map[string]any{"usage": map[string]any{"model": "gpt-4o", "input_tokens": 1000}}, 200)
	got := f.mustDo("", "GET", "/v1/reservations/r1", nil, 200)
	if got["charged_nanos"] != float64(2_500_000) || got["price_source"] != "table:gpt-4o" || got["usage"].(map[string]any)["input_tokens"] != float64(1000) {
		t.Errorf("GET after commit: %v", got)
	}
	st, out := f.do("", "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e3", "add_usd": "0.01"})
	if st != 409 || !strings.Contains(errMsg(out), `"r1" is committed`) {
		t.Errorf("extend after commit: %d %v", st, out)
	}
	if a := f.mustDo("", "GET", "/v1/accounts/team-a", nil, 200); a["pending_nanos"] != float64(0) || a["committed_nanos"] != float64(2_500_000) {
		t.Errorf("after commit: %v", a)
	}
}

// TestExtendHammer: concurrent extensions of one hold over HTTP, each id
// sent twice (a retry racing its original), never add twice and never
// pass the limit: exactly the room is granted.
func TestExtendHammer(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r1", "account": "team-a", "tool": "Read"}, 200) // $0.001
	const workers, each = 8, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[string]bool{}
	var failures []error
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				body := fmt.Sprintf(`{"extension_id": "w%d-%d", "add_usd": "0.01"}`, w, i)
				for range 2 {
					out, err := postJSON(f.srv.URL+"/v1/reservations/r1/extend", body)
					mu.Lock()
					if err != nil {
						failures = append(failures, err)
					} else if out["decision"] == "allow" {
						allowed[fmt.Sprintf("w%d-%d", w, i)] = true
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %v", len(failures), failures[0])
	}
	got := f.mustDo("", "GET", "/v1/reservations/r1", nil, 200)
	acct := f.mustDo("", "GET", "/v1/accounts/team-a", nil, 200)
	// $0.999 of room: 99 extensions of $0.01 fit, whatever the order.
	want := float64(1_000_000 + 10_000_000*len(allowed))
	if len(allowed) != 99 || got["held_nanos"] != want || acct["pending_nanos"] != want {
		t.Errorf("%d extensions allowed, held %v, account pending %v; want 99 and %v", len(allowed), got["held_nanos"], acct["pending_nanos"], want)
	}
}

// An extendable reserve (a streaming runtime) is held at what remains
// when its calibrated hold does not fit but its base does; the same call
// without the flag is denied.
func TestReserveExtendableIsHeldAtWhatRemains(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	// gpt-4o, 4,000 characters: base $0.0025 (1,000 tokens at $2.50/M),
	// held at the cold-start prior x2 = $0.005. The limit fits the base only.
	f.mustDo("", "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "0.004"}, 201)
	call := map[string]any{"account": "team-a", "tool": "LLM",
		"params": map[string]any{"model": "gpt-4o", "prompt": strings.Repeat("x", 4000)}}
	out := f.mustDo("", "POST", "/v1/reservations", call, 200)
	if out["decision"] != "deny" {
		t.Fatalf("not extendable: %v; want a budget deny", out)
	}
	call["extendable"] = true
	out = f.mustDo("", "POST", "/v1/reservations", call, 200)
	if out["decision"] != "allow" || out["estimate_nanos"] != float64(4_000_000) {
		t.Fatalf("extendable: %v; want allowed, held at the $0.004 that remains", out)
	}
}
