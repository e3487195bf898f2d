package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/server/decisionlog"
)

// faultyLedger is a memory ledger that fails like a store that lost its
// database while down is set, and lets a test see and script listings.
type faultyLedger struct {
	enforcer.Ledger
	down    atomic.Bool
	cause   error // what an outage returns when set, else outage
	mu      sync.Mutex
	filters []enforcer.ReservationFilter
	listed  []enforcer.Reservation
}

// outage is what stores return: the sentinel wrapped with the detail an
// operator needs and a tenant must not see.
var outage = fmt.Errorf("postgres ledger db.internal:5432/purser is %w (failing closed): dial tcp: connection refused", enforcer.ErrLedgerUnavailable)

func newFaultyLedger() *faultyLedger {
	return &faultyLedger{Ledger: enforcer.NewMemoryLedger(enforcer.LedgerOptions{})}
}

func (l *faultyLedger) fail(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ledger query: %w", err)
	}
	if l.down.Load() {
		if l.cause != nil {
			return l.cause
		}
		return outage
	}
	return nil
}

func (l *faultyLedger) Check(ctx context.Context, account string, est enforcer.Nanos) (enforcer.BudgetCheck, error) {
	if err := l.fail(ctx); err != nil {
		return enforcer.BudgetCheck{}, err
	}
	return l.Ledger.Check(ctx, account, est)
}

func (l *faultyLedger) Reserve(ctx context.Context, req enforcer.ReserveRequest) (enforcer.Reservation, error) {
	if err := l.fail(ctx); err != nil {
		return enforcer.Reservation{}, err
	}
	return l.Ledger.Reserve(ctx, req)
}

func (l *faultyLedger) Reservation(ctx context.Context, id string) (enforcer.Reservation, error) {
	if err := l.fail(ctx); err != nil {
		return enforcer.Reservation{}, err
	}
	return l.Ledger.Reservation(ctx, id)
}

func (l *faultyLedger) Snapshot(ctx context.Context, account string) (enforcer.Snapshot, error) {
	if err := l.fail(ctx); err != nil {
		return enforcer.Snapshot{}, err
	}
	return l.Ledger.Snapshot(ctx, account)
}

func (l *faultyLedger) Reservations(ctx context.Context, f enforcer.ReservationFilter) ([]enforcer.Reservation, error) {
	if err := l.fail(ctx); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.filters = append(l.filters, f)
	return l.listed, nil
}

// events waits for n decision-log lines (the log is asynchronous).
func (f *fixture) events(n int) []decisionlog.Event {
	f.t.Helper()
	var lines []string
	for range 200 {
		b, _ := os.ReadFile(f.log)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) >= n && lines[0] != "" {
			break
		}
		waitABit()
	}
	out := make([]decisionlog.Event, 0, len(lines))
	for _, l := range lines {
		var ev decisionlog.Event
		if err := json.Unmarshal([]byte(l), &ev); err == nil {
			out = append(out, ev)
		}
	}
	if len(out) < n {
		f.t.Fatalf("decision log has %d events, want %d: %q", len(out), n, lines)
	}
	return out
}

func errorOf(out map[string]any) (code, msg string) {
	e, _ := out["error"].(map[string]any)
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return code, msg
}

func TestLedgerOutageIs503WithRetryAfterAndIsLogged(t *testing.T) {
	l := newFaultyLedger()
	f := newFixtureOn(t, l, enforcer.Config{}, false, func(c *Config) { c.LedgerName = "postgres" })
	f.mustDo("", "PUT", "/v1/accounts/a", map[string]any{"limit_usd": "1"}, 201)
	l.down.Store(true)

	for _, tc := range []struct{ path, body string }{
		{"/v1/reservations", `{"id":"r1","account":"a","tool":"Read"}`},
		{"/v1/check", `{"account":"a","tool":"Read"}`},
	} {
		req, _ := http.NewRequest("POST", f.srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		code, msg := errorOf(out)
		if resp.StatusCode != 503 || code != "ledger_unavailable" || resp.Header.Get("Retry-After") != "5" {
			t.Errorf("%s during an outage: %d %q Retry-After=%q; want 503 ledger_unavailable with Retry-After 5",
				tc.path, resp.StatusCode, code, resp.Header.Get("Retry-After"))
		}
		if !strings.Contains(msg, "postgres ledger is unavailable") || strings.Contains(msg, "db.internal") {
			t.Errorf("%s message %q: must name the ledger, never its address", tc.path, msg)
		}
	}
	f.srv.Close()
	evs := f.events(2)
	for i, kind := range []string{"reserve", "check"} {
		ev := evs[i]
		if ev.Kind != kind || ev.Outcome != decisionlog.OutcomeError || ev.ErrorCode != "ledger_unavailable" || ev.Account != "a" ||
			ev.Version != decisionlog.EventVersion || !strings.Contains(ev.Error, "db.internal") {
			t.Errorf("decision log event %d: %+v; want a %s with outcome error and the detail", i, ev, kind)
		}
	}
	if evs[0].ReservationID != "r1" {
		t.Errorf("the failed reservation's id is not logged: %+v", evs[0])
	}
}

func TestLedgerOutageMessageCitesTheDecisionLogEvent(t *testing.T) {
	l := newFaultyLedger()
	f := newFixtureOn(t, l, enforcer.Config{}, false, nil)
	f.mustDo("", "PUT", "/v1/accounts/a", map[string]any{"limit_usd": "1"}, 201)
	l.down.Store(true)
	_, msg := errorOf(f.mustDo("", "POST", "/v1/check", map[string]any{"account": "a", "tool": "Read"}, 503))
	f.srv.Close()
	ev := f.events(1)[0]
	if !strings.Contains(msg, "reference "+ev.DecisionID+" ") || !strings.Contains(msg, "the ledger is unavailable") {
		t.Errorf("message %q does not cite decision %s", msg, ev.DecisionID)
	}
}

// lostAnswer is what store/postgres.OutcomeUnknownError looks like to the
// server, which does not import the store.
type lostAnswer struct{ unknown bool }

func (lostAnswer) Error() string {
	return "outcome unknown: sent, no answer before the caller's deadline"
}
func (e lostAnswer) OutcomeUnknown() bool { return e.unknown }

func TestLedgerOutageWithAnUnknownOutcomeSaysTheRequestMayHaveBeenApplied(t *testing.T) {
	for _, tc := range []struct {
		unknown bool
		want    string
	}{{true, "may have been applied"}, {false, "was not completed"}} {
		l := newFaultyLedger()
		l.cause = fmt.Errorf("postgres ledger db.internal:5432 is %w: %w", enforcer.ErrLedgerUnavailable, lostAnswer{tc.unknown})
		f := newFixtureOn(t, l, enforcer.Config{}, false, nil)
		f.mustDo("", "PUT", "/v1/accounts/a", map[string]any{"limit_usd": "1"}, 201)
		l.down.Store(true)
		code, msg := errorOf(f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r1", "account": "a", "tool": "Read"}, 503))
		if code != "ledger_unavailable" || !strings.Contains(msg, tc.want) || strings.Contains(msg, "db.internal") {
			t.Errorf("OutcomeUnknown() %v: %s %q; want ledger_unavailable saying %q", tc.unknown, code, msg, tc.want)
		}
		if tc.unknown && !strings.Contains(msg, "with the same reservation id to learn the outcome") {
			t.Errorf("message %q does not say how to learn the outcome", msg)
		}
	}
}

func TestErrorCodesForInvalidParamsAndInProgress(t *testing.T) {
	s, err := New(mustEnforcer(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err        error
		status     int
		code, text string
	}{
		{fmt.Errorf("estimate LLM: %w", &enforcer.InvalidParamsError{Param: "usage.cache_read_tokens", Reason: "must be >= 0, got -1"}),
			400, "invalid_params", "param usage.cache_read_tokens: must be >= 0"},
		{fmt.Errorf("execute: reservation \"r1\": %w", enforcer.ErrReservationInProgress), 409, "in_progress", "reservation in progress"},
	} {
		rec := httptest.NewRecorder()
		s.writeError(rec, httptest.NewRequest("POST", "/v1/estimate", nil), tc.err)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		if code, msg := errorOf(out); rec.Code != tc.status || code != tc.code || !strings.Contains(msg, tc.text) {
			t.Errorf("%v: %d %q %q; want %d %s naming %q", tc.err, rec.Code, code, msg, tc.status, tc.code, tc.text)
		}
	}
}

func mustEnforcer(t *testing.T) *enforcer.Enforcer {
	t.Helper()
	e, err := enforcer.New(enforcer.NewMemoryLedger(enforcer.LedgerOptions{}), enforcer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestClientCancelledRequestIs499AtDebug(t *testing.T) {
	var logs bytes.Buffer
	l := newFaultyLedger()
	e, err := enforcer.New(l, enforcer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})
	s, err := New(e, Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client hung up before the ledger answered
	req := httptest.NewRequest("POST", "/v1/check", strings.NewReader(`{"account":"a","tool":"Read"}`)).WithContext(ctx)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != 499 || strings.Contains(logs.String(), "[ERROR]") || !strings.Contains(logs.String(), "[DEBUG]") {
		t.Errorf("cancelled request: status %d, log %q; want 499 logged at debug only", rec.Code, logs.String())
	}
}

func TestTTLBeyondTheMaximumIsRefusedNotWrapped(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/a", map[string]any{"limit_usd": "1"}, 201)
	// 18446744073710 ms x 1e6 wraps to a 0.45 ms hold; 2^63-1 wraps negative.
	for _, ttl := range []string{"18446744073710", "9223372036854775807", "86400001", "-1"} {
		st, out := f.do("", "POST", "/v1/reservations", `{"account":"a","tool":"Read","ttl_ms":`+ttl+`}`)
		code, msg := errorOf(out)
		if st != 400 || code != "bad_request" || !strings.Contains(msg, `"ttl_ms"`) || !strings.Contains(msg, "86400000") {
			t.Errorf("ttl_ms %s: %d %q %q; want 400 naming ttl_ms and the maximum 86400000", ttl, st, code, msg)
		}
	}
	out := f.mustDo("", "POST", "/v1/reservations", `{"account":"a","tool":"Read","ttl_ms":86400000}`, 200)
	res := out["reservation"].(map[string]any)
	if res["expires_at"] == res["created_at"] {
		t.Errorf("the maximum ttl_ms is refused or shrunk: %v", res)
	}
}

func TestScopedAdminCreatesAccountsOnlyInsideItsSubtree(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, true)
	f.mustDo(adminToken, "PUT", "/v1/accounts/org", map[string]any{"limit_usd": "10"}, 201)
	f.mustDo(adminToken, "PUT", "/v1/accounts/team-a", map[string]any{"parent": "org"}, 201)

	// A parentless account named inside the scope would spend outside org.
	st, out := f.do(scopedAdmin, "PUT", "/v1/accounts/team-a/free", map[string]any{"unlimited": true})
	if code, msg := errorOf(out); st != 400 || code != "invalid" || !strings.Contains(msg, `parent must be "team-a"`) {
		t.Errorf("parentless team-a/free: %d %v; want 400 naming the rule", st, out)
	}
	// Updating an account already in the subtree stays allowed.
	f.mustDo(scopedAdmin, "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "5"}, 200)
	// The unscoped admin is held to the name rule too.
	if st, _ := f.do(adminToken, "PUT", "/v1/accounts/team-a/free", map[string]any{"unlimited": true}); st != 400 {
		t.Errorf("unscoped admin created a parentless team-a/free: %d", st)
	}
	f.mustDo(scopedAdmin, "PUT", "/v1/accounts/team-a/free", map[string]any{"parent": "team-a", "unlimited": true}, 201)
	f.mustDo(scopedAdmin, "PUT", "/v1/accounts/team-a/free/x", map[string]any{"parent": "team-a/free"}, 201)
}

func TestScopedAdminCannotCreateTopLevelAccounts(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, true)
	// "team-a" is inside ops-a's scopes but would be a root: an unlimited
	// budget of its own. Only an unscoped token creates roots.
	st, out := f.do(scopedAdmin, "PUT", "/v1/accounts/team-a", map[string]any{"unlimited": true})
	if code, msg := errorOf(out); st != 403 || code != "forbidden" || !strings.Contains(msg, `"parent"`) {
		t.Errorf("scoped admin creating a root: %d %v; want 403 asking for a parent", st, out)
	}
	f.mustDo(adminToken, "PUT", "/v1/accounts/team-a", map[string]any{"unlimited": true}, 201)
}

func TestUnauthenticatedReadyzHidesTheReason(t *testing.T) {
	reason := fmt.Errorf("ledger: %w", outage)
	var logs syncBuffer
	f := newFixtureOn(t, enforcer.NewMemoryLedger(enforcer.LedgerOptions{}), enforcer.Config{}, true, func(c *Config) {
		c.Ready = func(context.Context) error { return reason }
		c.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs})
	})
	for _, tok := range []string{"", "wrong", agentA, scopedAdmin} {
		st, out := f.do(tok, "GET", "/readyz", nil)
		if code, msg := errorOf(out); st != 503 || code != "not_ready" || strings.Contains(msg, "db.internal") || strings.Contains(msg, "5432") {
			t.Errorf("readyz with token %q: %d %q %q; want a generic 503", tok, st, code, msg)
		}
	}
	if _, out := f.do(adminToken, "GET", "/readyz", nil); !strings.Contains(fmt.Sprint(out), "db.internal:5432") {
		t.Errorf("an unscoped admin should see the reason: %v", out)
	}
	// With auth off every caller is anonymous: generic too.
	open := newFixtureOn(t, enforcer.NewMemoryLedger(enforcer.LedgerOptions{}), enforcer.Config{}, false, func(c *Config) {
		c.Ready = func(context.Context) error { return reason }
	})
	if _, out := open.do("", "GET", "/readyz", nil); strings.Contains(fmt.Sprint(out), "db.internal") {
		t.Errorf("auth off: readyz shows the reason: %v", out)
	}
	// The operator finds the reason in the log, once per outage, not per probe.
	if n := strings.Count(logs.String(), "db.internal:5432"); n != 1 {
		t.Errorf("the reason is logged %d times over 5 probes; want once:\n%s", n, logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestUnroutedRequestsGetTheJSONEnvelope(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	req, _ := http.NewRequest("DELETE", f.srv.URL+"/v1/check", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	decErr := json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if code, msg := errorOf(out); resp.StatusCode != 405 || decErr != nil || code != "method_not_allowed" ||
		!strings.Contains(resp.Header.Get("Allow"), "POST") || !strings.Contains(msg, "POST") {
		t.Errorf("405: %d Allow=%q %v (%v); want the JSON envelope and Allow", resp.StatusCode, resp.Header.Get("Allow"), out, decErr)
	}
	st, out := f.do("", "GET", "/v1/nothing-here", nil)
	if code, _ := errorOf(out); st != 404 || code != "not_found" {
		t.Errorf("404: %d %v; want the JSON envelope", st, out)
	}
	// A handler's own 404 keeps its code.
	if st, out := f.do("", "GET", "/v1/reservations/nope", nil); st != 404 || out["error"].(map[string]any)["code"] != "reservation_not_found" {
		t.Errorf("handler 404 rewritten: %d %v", st, out)
	}
}

func TestRepeatedReleaseReturnsTheReservationUnchanged(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/a", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r1", "account": "a", "tool": "Read"}, 200)
	first := f.mustDo("", "POST", "/v1/reservations/r1/release", nil, 200)
	again := f.mustDo("", "POST", "/v1/reservations/r1/release", nil, 200)
	if fmt.Sprint(first) != fmt.Sprint(again) || again["state"] != "released" {
		t.Errorf("repeated release changed the answer: %v then %v", first, again)
	}
	f.mustDo("", "POST", "/v1/reservations/r1/commit", nil, 409) // released is settled for a commit
}

// approvalFor makes bot-b's Bash on team-b wait for (and maybe get) approval.
func approvalFor(t *testing.T, f *fixture, decide string) string {
	t.Helper()
	out := f.mustDo(agentB, "POST", "/v1/reservations", map[string]any{"account": "team-b", "tool": "Bash"}, 200)
	aid, _ := out["approval_id"].(string)
	if out["decision"] != "ask" || aid == "" {
		t.Fatalf("want an ask: %v", out)
	}
	if decide != "" {
		f.mustDo(adminToken, "POST", "/v1/approvals/"+aid+"/"+decide, nil, 200)
	}
	return aid
}

func TestForeignApprovalIDAnswersLikeAnUnknownOne(t *testing.T) {
	f := newFixture(t, enforcer.Config{Policies: []enforcer.PolicySpec{askForBash}}, true)
	for _, id := range []string{"team-a", "team-b"} {
		f.mustDo(adminToken, "PUT", "/v1/accounts/"+id, map[string]any{"limit_usd": "1"}, 201)
	}
	const unknown = "a-0123456789abcdef01234567"
	stU, outU := f.do(agentA, "POST", "/v1/reservations", map[string]any{"account": "team-a", "tool": "Bash", "approval_id": unknown})
	for _, decide := range []string{"", "approve", "deny"} {
		aid := approvalFor(t, f, decide)
		st, out := f.do(agentA, "POST", "/v1/reservations", map[string]any{"account": "team-a", "tool": "Bash", "approval_id": aid})
		got := strings.ReplaceAll(fmt.Sprint(out), aid, unknown)
		if st != stU || got != fmt.Sprint(outU) || strings.Contains(got, "team-b") {
			t.Errorf("another tenant's %q approval: %d %s; an unknown id gets %d %v", decide, st, got, stU, outU)
		}
	}
	// A budget deny comes first for both, as it does for an unknown id.
	f.mustDo(adminToken, "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "0.000001"}, 200)
	aid := approvalFor(t, f, "approve")
	if out := f.mustDo(agentA, "POST", "/v1/reservations", map[string]any{"account": "team-a", "tool": "Bash", "approval_id": aid}, 200); out["decision"] != "deny" {
		t.Errorf("over budget with a foreign approval: %v; want the budget deny an unknown id gets", out)
	}
}

func TestReserveConflictSaysNothingAboutTheOtherUse(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, true)
	for _, id := range []string{"team-a", "team-b"} {
		f.mustDo(adminToken, "PUT", "/v1/accounts/"+id, map[string]any{"limit_usd": "1"}, 201)
	}
	f.mustDo(agentB, "POST", "/v1/reservations", map[string]any{"id": "theirs", "account": "team-b", "tool": "WebFetch"}, 200)
	f.mustDo(agentA, "POST", "/v1/reservations", map[string]any{"id": "mine", "account": "team-a", "tool": "Read"}, 200)
	st, foreign := f.do(agentA, "POST", "/v1/reservations", map[string]any{"id": "theirs", "account": "team-a", "tool": "Read"})
	if code, msg := errorOf(foreign); st != 409 || code != "conflict" || regexp.MustCompile(`team-b|WebFetch|pending|account|tool`).MatchString(msg) {
		t.Errorf("another tenant's id: %d %v; want a 409 conflict that says nothing of the other use", st, foreign)
	}
	// Its own reservation, the caller may be told what differs.
	st, own := f.do(agentA, "POST", "/v1/reservations", map[string]any{"id": "mine", "account": "team-a", "tool": "Grep"})
	if code, msg := errorOf(own); st != 409 || code != "conflict" || !strings.Contains(msg, `"mine"`) {
		t.Errorf("own id reused: %d %v", st, own)
	}
	// Reading, committing or releasing it is the unknown id's 404.
	f.mustDo(agentA, "GET", "/v1/reservations/theirs", nil, 404)
	f.mustDo(agentA, "POST", "/v1/reservations/theirs/release", nil, 404)
}

func TestListReservationsIsScopedAndValidated(t *testing.T) {
	l := newFaultyLedger()
	f := newFixtureOn(t, l, enforcer.Config{}, true, nil)
	l.listed = []enforcer.Reservation{{ID: "r1", Account: "team-a", Tool: "Read", State: enforcer.StatePending, Estimate: 1000}}
	out := f.mustDo(agentA, "GET", "/v1/reservations?account=team-a&state=pending&limit=5", nil, 200)
	list, _ := out["reservations"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != "r1" {
		t.Errorf("list: %v", out)
	}
	f.mustDo(agentA, "GET", "/v1/reservations?account=team-a", nil, 200)
	want := []enforcer.ReservationFilter{{Account: "team-a", State: enforcer.StatePending, Limit: 5}, {Account: "team-a", Limit: 100}}
	if fmt.Sprint(l.filters) != fmt.Sprint(want) {
		t.Errorf("filters %v; want %v", l.filters, want)
	}
	f.mustDo(agentA, "GET", "/v1/reservations?account=team-b&state=pending", nil, 403)
	for _, q := range []string{"", "?state=pending", "?account=team-a&state=open", "?account=team-a&limit=0",
		"?account=team-a&limit=1001", "?account=team-a&limit=x", "?account=team-a&acount=x", "?account=team-a&account=team-b"} {
		if st, out := f.do(agentA, "GET", "/v1/reservations"+q, nil); st != 400 {
			t.Errorf("GET /v1/reservations%s: %d %v; want 400", q, st, out)
		}
	}
	if len(l.filters) != 2 {
		t.Errorf("refused requests reached the ledger: %v", l.filters)
	}
}
