package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/server/decisionlog"
)

const (
	adminToken  = "admin-secret"
	agentA      = "agent-a-secret"
	agentB      = "agent-b-secret"
	scopedAdmin = "ops-a-secret"
)

type fixture struct {
	t   *testing.T
	e   *enforcer.Enforcer
	srv *httptest.Server
	log string
}

func newFixture(t *testing.T, cfg enforcer.Config, tokens bool) *fixture {
	t.Helper()
	return newFixtureOn(t, enforcer.NewMemoryLedger(enforcer.LedgerOptions{}), cfg, tokens, nil)
}

// newFixtureOn serves ledger; tune, when given, adjusts the server config.
func newFixtureOn(t *testing.T, ledger enforcer.Ledger, cfg enforcer.Config, tokens bool, tune func(*Config)) *fixture {
	t.Helper()
	e, err := enforcer.New(ledger, cfg)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "decisions.jsonl")
	dl, err := decisionlog.Open(logPath, decisionlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := Config{DecisionLog: dl, Metrics: NewMetrics(ledger, MetricsOptions{Accounts: []string{"team-a"}})}
	if tokens {
		sc.Tokens = []Token{
			{Name: "ops", SHA256: HashToken(adminToken), Role: RoleAdmin},
			{Name: "bot-a", SHA256: HashToken(agentA), Role: RoleAgent, Accounts: []string{"team-a", "team-a/*"}},
			{Name: "bot-b", SHA256: HashToken(agentB), Role: RoleAgent, Accounts: []string{"team-b", "team-b/*"}},
			{Name: "ops-a", SHA256: HashToken(scopedAdmin), Role: RoleAdmin, Accounts: []string{"team-a", "team-a/*"}},
		}
	}
	if tune != nil {
		tune(&sc)
	}
	s, err := New(e, sc)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, e: e, srv: httptest.NewServer(s.Handler()), log: logPath}
	t.Cleanup(func() { f.srv.Close(); dl.Close() })
	return f
}

// do sends body (a string is sent raw) and decodes the JSON answer.
func (f *fixture) do(token, method, path string, body any) (int, map[string]any) {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			f.t.Fatalf("%s %s: bad JSON %q", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

func (f *fixture) mustDo(token, method, path string, body any, wantStatus int) map[string]any {
	f.t.Helper()
	st, out := f.do(token, method, path, body)
	if st != wantStatus {
		f.t.Fatalf("%s %s: status %d (%v); want %d", method, path, st, out, wantStatus)
	}
	return out
}

func TestEstimateAndCheck(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	out := f.mustDo("", "POST", "/v1/estimate", map[string]any{"tool": "LLM", "params": map[string]any{"prompt": strings.Repeat("x", 70_000)}}, 200)
	if out["estimate_usd"] != "0.00875" || out["estimate_nanos"] != float64(8_750_000) || out["source"] != "llm" {
		t.Errorf("estimate: %v", out)
	}
	f.mustDo("", "PUT", "/v1/accounts/a", map[string]any{"limit_usd": "0.05"}, 201)
	out = f.mustDo("", "POST", "/v1/check", map[string]any{"account": "a", "tool": "Agent"}, 200)
	if out["decision"] != "deny" || out["reason"] != "Insufficient budget: estimated $0.10 but only $0.05 remaining" || out["remaining_nanos"] != float64(50_000_000) {
		t.Errorf("check: %v", out)
	}
	if acct := f.mustDo("", "GET", "/v1/accounts/a", nil, 200); acct["pending_nanos"] != float64(0) {
		t.Errorf("check must not reserve: %v", acct)
	}
}

func TestReservationLifecycleOverHTTP(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/team", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo("", "PUT", "/v1/accounts/team/s1", map[string]any{"parent": "team"}, 201)
	body := map[string]any{"id": "r-1", "account": "team/s1", "tool": "Bash", "params": map[string]any{"command": "ls"}, "ttl_ms": 60000}
	out := f.mustDo("", "POST", "/v1/reservations", body, 200)
	res, _ := out["reservation"].(map[string]any)
	if out["decision"] != "allow" || res["id"] != "r-1" || res["state"] != "pending" || res["estimate_nanos"] != float64(10_000_000) {
		t.Fatalf("reserve: %v", out)
	}
	if again := f.mustDo("", "POST", "/v1/reservations", body, 200); again["reservation"].(map[string]any)["id"] != "r-1" {
		t.Errorf("idempotent retry: %v", again)
	}
	if team := f.mustDo("", "GET", "/v1/accounts/team", nil, 200); team["pending_nanos"] != float64(10_000_000) {
		t.Errorf("retry must not hold twice: %v", team)
	}
	body["tool"] = "Read"
	if st, out := f.do("", "POST", "/v1/reservations", body); st != 409 || !strings.Contains(fmt.Sprint(out), "r-1") {
		t.Errorf("same id, other fields: %d %v; want 409 naming the id", st, out)
	}
	out = f.mustDo("", "POST", "/v1/reservations/r-1/commit", map[string]any{"actual_usd": "0.004"}, 200)
	if out["state"] != "committed" || out["charged_nanos"] != float64(4_000_000) || out["cost_source"] != "actual" {
		t.Errorf("commit: %v", out)
	}
	f.mustDo("", "POST", "/v1/reservations/r-1/release", nil, 409)
	// A commit without an amount charges the estimate.
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r-2", "account": "team/s1", "tool": "Bash"}, 200)
	// An empty chunked body (no Content-Length) is an empty commit too.
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/reservations/r-2/commit", io.NopCloser(strings.NewReader("")))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out2 map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out2)
	resp.Body.Close()
	if resp.StatusCode != 200 || out2["charged_nanos"] != float64(10_000_000) || out2["cost_source"] != "estimated" {
		t.Errorf("commit without actual: %d %v", resp.StatusCode, out2)
	}
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r-3", "account": "team/s1", "tool": "Bash"}, 200)
	if out := f.mustDo("", "POST", "/v1/reservations/r-3/release", nil, 200); out["state"] != "released" {
		t.Errorf("release: %v", out)
	}
	if out := f.mustDo("", "GET", "/v1/reservations/r-2", nil, 200); out["state"] != "committed" {
		t.Errorf("get: %v", out)
	}
	if team := f.mustDo("", "GET", "/v1/accounts/team", nil, 200); team["committed_nanos"] != float64(14_000_000) || team["pending_nanos"] != float64(0) {
		t.Errorf("team totals: %v", team)
	}
	// Generated ids.
	out = f.mustDo("", "POST", "/v1/reservations", map[string]any{"account": "team", "tool": "Read"}, 200)
	if id, _ := out["reservation"].(map[string]any)["id"].(string); id == "" {
		t.Errorf("no generated id: %v", out)
	}
}

func TestBadInputGetsClearErrors(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/a", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r", "account": "a", "tool": "Read"}, 200)
	cases := []struct {
		method, path string
		body         any
		status       int
		want         string
	}{
		{"POST", "/v1/estimate", `{"tool": "Read"`, 400, "malformed JSON"},
		{"POST", "/v1/estimate", `{"tool": "Read", "colour": 1}`, 400, "colour"},
		{"POST", "/v1/estimate", `{"tool": 5}`, 400, `"tool"`},
		{"POST", "/v1/estimate", ``, 400, "empty"},
		{"POST", "/v1/estimate", `{}`, 400, `"tool" is required`},
		{"POST", "/v1/estimate", `{"tool":"Read"} {}`, 400, "after the JSON object"},
		{"POST", "/v1/estimate", `{"tool":"Read","params":{"x":"` + strings.Repeat("y", 2<<20) + `"}}`, 413, "exceeds"},
		{"POST", "/v1/check", map[string]any{"account": "ghost", "tool": "Read"}, 404, "ghost"},
		{"POST", "/v1/reservations", map[string]any{"account": "a", "tool": "Read", "ttl_ms": -5}, 400, "ttl_ms"},
		{"POST", "/v1/reservations", map[string]any{"id": "x/y", "account": "a", "tool": "Read"}, 400, "'/'"},
		{"POST", "/v1/reservations/r/commit", map[string]any{"actual_usd": "-0.01"}, 400, "actual_usd"},
		{"POST", "/v1/reservations/r/commit", map[string]any{"actual_usd": "NaN"}, 400, "actual_usd"},
		{"POST", "/v1/reservations/r/commit", map[string]any{"actual_nanos": -1}, 400, "actual_nanos"},
		{"POST", "/v1/reservations/r/commit", map[string]any{"actual_usd": "1", "actual_nanos": 1}, 400, "not both"},
		{"POST", "/v1/reservations/nope/commit", map[string]any{}, 404, "nope"},
		{"PUT", "/v1/accounts/b", map[string]any{"limit_usd": "12abc"}, 400, "limit_usd"},
		{"PUT", "/v1/accounts/b", map[string]any{"parent": "missing"}, 404, "missing"},
		{"GET", "/v1/approvals?state=weird", nil, 400, "state"},
	}
	for _, c := range cases {
		st, out := f.do("", c.method, c.path, c.body)
		e, _ := out["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if st != c.status || !strings.Contains(msg, c.want) || e["code"] == "" {
			t.Errorf("%s %s %.60v: %d %q; want %d mentioning %q", c.method, c.path, c.body, st, msg, c.status, c.want)
		}
	}
	if r := f.mustDo("", "GET", "/v1/reservations/r", nil, 200); r["state"] != "pending" {
		t.Errorf("bad commits must lose nothing: %v", r)
	}
}

func TestAuthMatrix(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, true)
	f.mustDo(adminToken, "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo(adminToken, "PUT", "/v1/accounts/team-b", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo(agentB, "POST", "/v1/reservations", map[string]any{"id": "rb", "account": "team-b", "tool": "Read"}, 200)

	f.mustDo("", "GET", "/v1/accounts", nil, 401)
	if st, _ := f.do("", "GET", "/metrics", nil); st != 401 {
		t.Errorf("metrics carry per-account money: anonymous scrape got %d, want 401", st)
	}
	if st, _ := f.do(agentA, "GET", "/metrics", nil); st != 200 {
		t.Errorf("metrics with a token: %d", st)
	}
	f.mustDo("wrong", "GET", "/v1/accounts", nil, 401)
	f.mustDo(agentA, "GET", "/v1/accounts/team-a", nil, 200)
	f.mustDo(agentA, "GET", "/v1/accounts/team-b", nil, 403)                                               // read another tenant
	f.mustDo(agentA, "POST", "/v1/check", map[string]any{"account": "team-b", "tool": "Read"}, 403)        // check
	f.mustDo(agentA, "POST", "/v1/reservations", map[string]any{"account": "team-b", "tool": "Read"}, 403) // charge
	f.mustDo(agentA, "POST", "/v1/reservations/rb/commit", map[string]any{"actual_usd": "0.5"}, 404)       // commit theirs
	f.mustDo(agentA, "POST", "/v1/reservations/rb/release", nil, 404)                                      // release theirs
	f.mustDo(agentA, "GET", "/v1/reservations/rb", nil, 404)                                               // read theirs
	f.mustDo(agentA, "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "100"}, 403)                // change a limit
	f.mustDo(agentA, "PUT", "/v1/accounts/team-a/sub", map[string]any{"parent": "team-a"}, 403)            // create
	f.mustDo(agentA, "GET", "/v1/approvals", nil, 403)                                                     // approvals
	f.mustDo(agentA, "POST", "/v1/plugins/reload", nil, 403)                                               // reload
	f.mustDo(agentA, "POST", "/v1/reservations", map[string]any{"account": "team-a", "tool": "Read"}, 200) // own account
	f.mustDo(agentA, "POST", "/v1/estimate", map[string]any{"tool": "Read"}, 200)                          // estimate
	if list := f.mustDo(agentA, "GET", "/v1/accounts", nil, 200); len(list["accounts"].([]any)) != 1 {
		t.Errorf("agent A sees %v; want only team-a", list)
	}
	if b := f.mustDo(adminToken, "GET", "/v1/accounts/team-b", nil, 200); b["committed_nanos"] != float64(0) || b["pending_nanos"] != float64(1_000_000) {
		t.Errorf("team-b was touched by agent A: %v", b)
	}
	if list := f.mustDo(adminToken, "GET", "/v1/accounts", nil, 200); len(list["accounts"].([]any)) != 2 {
		t.Errorf("admin sees %v", list)
	}
	// Prefix scopes are path scopes: "team-a/*" does not reach "team-ab".
	f.mustDo(adminToken, "PUT", "/v1/accounts/team-ab", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo(agentA, "GET", "/v1/accounts/team-ab", nil, 403)
	// A scoped admin cannot hang its accounts under another tenant's pool.
	f.mustDo(scopedAdmin, "PUT", "/v1/accounts/team-a/x", map[string]any{"parent": "team-b"}, 403)
	f.mustDo(scopedAdmin, "PUT", "/v1/accounts/team-a/x", map[string]any{"parent": "team-a"}, 201)
	f.mustDo(scopedAdmin, "PUT", "/v1/accounts/team-b", map[string]any{"limit_usd": "99"}, 403)
	// Browsers' cross-site requests are refused outright.
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/estimate", strings.NewReader(`{"tool":"Read"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("cross-origin request: %v %v", resp, err)
	}
}

func TestTokenScopesAreValidated(t *testing.T) {
	e, _ := enforcer.New(enforcer.NewMemoryLedger(enforcer.LedgerOptions{}), enforcer.Config{})
	for _, tok := range []Token{
		{Name: "loose", SHA256: HashToken("x"), Role: RoleAgent, Accounts: []string{"team-a*"}},
		{Name: "unscoped-agent", SHA256: HashToken("y"), Role: RoleAgent},
	} {
		if _, err := New(e, Config{Tokens: []Token{tok}}); err == nil || !strings.Contains(err.Error(), tok.Name) {
			t.Errorf("token %s accepted: %v", tok.Name, err)
		}
	}
}

// askForBash is a policy that asks a human for every Bash call.
var askForBash = enforcer.PolicySpec{Policy: enforcer.PolicyFunc{PolicyName: "human-for-bash", Fn: func(_ context.Context, in enforcer.PolicyInput) (enforcer.PolicyResult, error) {
	if in.Call.Tool == "Bash" {
		return enforcer.PolicyResult{Verdict: enforcer.Ask, Reason: "Bash needs a human"}, nil
	}
	return enforcer.PolicyResult{Verdict: enforcer.Allow}, nil
}}}

func TestApprovalOverHTTPRechecksBudget(t *testing.T) {
	f := newFixture(t, enforcer.Config{Policies: []enforcer.PolicySpec{askForBash}}, false)
	f.mustDo("", "PUT", "/v1/accounts/a", map[string]any{"limit_usd": "0.015"}, 201)
	out := f.mustDo("", "POST", "/v1/reservations", map[string]any{"account": "a", "tool": "Bash"}, 200)
	aid, _ := out["approval_id"].(string)
	if out["decision"] != "ask" || aid == "" || out["reservation"] != nil {
		t.Fatalf("ask: %v", out)
	}
	pending := f.mustDo("", "GET", "/v1/approvals?state=pending", nil, 200)["approvals"].([]any)
	if len(pending) != 1 || pending[0].(map[string]any)["reason"] != "Bash needs a human" {
		t.Fatalf("pending approvals: %v", pending)
	}
	f.mustDo("", "POST", "/v1/approvals/"+aid+"/approve", map[string]any{"note": "fine"}, 200)
	f.mustDo("", "POST", "/v1/approvals/"+aid+"/approve", nil, 409)
	// Meanwhile the budget was spent elsewhere: the approved call is re-checked.
	if out := f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "other", "account": "a", "tool": "Workflow"}, 200); out["decision"] != "deny" {
		t.Fatalf("$0.05 against $0.015 must be denied: %v", out)
	}
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "spend", "account": "a", "tool": "Grep"}, 200)
	f.mustDo("", "POST", "/v1/reservations/spend/commit", map[string]any{"actual_usd": "0.01"}, 200)
	out = f.mustDo("", "POST", "/v1/reservations", map[string]any{"account": "a", "tool": "Bash", "approval_id": aid}, 200)
	if out["decision"] != "deny" || out["layer"] != "budget" {
		t.Fatalf("approved call after the budget shrank: %v; want a budget deny", out)
	}
	f.mustDo("", "PUT", "/v1/accounts/a", map[string]any{"limit_usd": "1"}, 200)
	out = f.mustDo("", "POST", "/v1/reservations", map[string]any{"account": "a", "tool": "Bash", "approval_id": aid}, 200)
	if out["decision"] != "allow" || out["reservation"] == nil {
		t.Fatalf("approved call with room: %v", out)
	}
}

func TestConcurrentReservationsNeverOverspend(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/pool", map[string]any{"limit_usd": "0.50"}, 201)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 { // 160 attempts at $0.01 against $0.50
				out, err := postJSON(f.srv.URL+"/v1/reservations", fmt.Sprintf(`{"id":"r-%d-%d","account":"pool","tool":"Bash"}`, i, j))
				if err != nil {
					t.Error(err) // not Fatal: this is not the test goroutine
					return
				}
				if out["decision"] == "allow" {
					mu.Lock()
					allowed++
					mu.Unlock()
					if _, err := postJSON(f.srv.URL+fmt.Sprintf("/v1/reservations/r-%d-%d/commit", i, j), `{}`); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	pool := f.mustDo("", "GET", "/v1/accounts/pool", nil, 200)
	if allowed != 50 || pool["committed_nanos"] != float64(500_000_000) || pool["pending_nanos"] != float64(0) {
		t.Errorf("allowed %d, pool %v; want exactly 50 and $0.50 committed", allowed, pool)
	}
}

func TestDecisionLogAndMetrics(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "0.05"}, 201)
	f.mustDo("", "POST", "/v1/check", map[string]any{"account": "team-a", "tool": "Agent", "params": map[string]any{"b": 1, "a": 2}}, 200)
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r1", "account": "team-a", "tool": "Read"}, 200)
	resp, err := http.Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`purser_decisions_total{layer="budget",outcome="deny"} 1`, `purser_decisions_total{layer="none",outcome="allow"} 1`,
		`purser_estimates_total{source="table"} 2`, `purser_account_remaining_nanos{account="team-a"} 4.9e+07`, `purser_pending_nanos 1e+06`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The log is written asynchronously; close the server's writer by
	// ending the test's fixture, then read it.
	f.srv.Close()
	deadline := 0
	var lines []string
	for deadline < 200 {
		b, _ := os.ReadFile(f.log)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) == 2 {
			break
		}
		deadline++
		waitABit()
	}
	if len(lines) != 2 {
		t.Fatalf("decision log has %d lines: %q", len(lines), lines)
	}
	var ev decisionlog.Event
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Version != decisionlog.EventVersion || ev.Kind != "check" || ev.Outcome != "deny" || ev.Layer != "budget" || ev.EstimateNanos != 100_000_000 ||
		ev.Source != "table" || len(ev.ParamsSHA256) != 64 || ev.Params != nil || ev.Ledger == nil || *ev.Ledger.LimitNanos != 50_000_000 || ev.DecisionID == "" {
		t.Errorf("event: %+v", ev)
	}
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e, _ := enforcer.New(enforcer.NewMemoryLedger(enforcer.LedgerOptions{}), enforcer.Config{})
	s, err := New(e, Config{Metrics: NewMetrics(nil, MetricsOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	var documented, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, p := range s.patterns {
		served = append(served, strings.Replace(p, "{id...}", "{id}", 1))
	}
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi.json and the routes differ:\ndocumented:\n%s\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}

// postJSON is safe to call from any goroutine (it never calls t.Fatal).
func postJSON(url, body string) (map[string]any, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("POST %s: %d, body not JSON: %w", url, resp.StatusCode, err)
	}
	if resp.StatusCode != 200 {
		return out, fmt.Errorf("POST %s: %d %v", url, resp.StatusCode, out)
	}
	return out, nil
}

func waitABit() { <-time.After(10 * time.Millisecond) }

// meteredEstimator and meteredPolicy stand in for plugins that report fuel.
type meteredEstimator struct{}

func (meteredEstimator) Estimate(context.Context, enforcer.Call) (enforcer.Quote, error) {
	return enforcer.Quote{Nanos: 1_000_000, Source: "plugin:est@0123456789ab", Fuel: 1234}, nil
}

type meteredPolicy struct{}

func (meteredPolicy) Name() string { return "plugin:pol@0123456789ab" }
func (meteredPolicy) Evaluate(context.Context, enforcer.PolicyInput) (enforcer.PolicyResult, error) {
	return enforcer.PolicyResult{Verdict: enforcer.Allow, Fuel: 77}, nil
}

// TestDecisionLogRecordsFuel: the fuel plugins report reaches the log.
func TestDecisionLogRecordsFuel(t *testing.T) {
	f := newFixture(t, enforcer.Config{Estimators: map[string]enforcer.Estimator{"*": meteredEstimator{}},
		Policies: []enforcer.PolicySpec{{Policy: meteredPolicy{}}}}, false)
	f.mustDo("", "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo("", "POST", "/v1/check", map[string]any{"account": "team-a", "tool": "Read"}, 200)
	f.srv.Close()
	var line string
	for range 200 {
		if b, _ := os.ReadFile(f.log); len(b) > 0 {
			line = strings.TrimSpace(string(b))
			break
		}
		waitABit()
	}
	var ev decisionlog.Event
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("%v: %q", err, line)
	}
	if ev.EstimateFuel != 1234 || len(ev.Policies) != 1 || ev.Policies[0].Fuel != 77 || !strings.Contains(line, `"estimate_fuel":1234`) {
		t.Errorf("event: %s", line)
	}
}

// TestPluginFuelMetric: plugin calls that ran report their fuel; calls
// that never reached a guest (fuel 0) are not counted.
func TestPluginFuelMetric(t *testing.T) {
	m := NewMetrics(nil, MetricsOptions{})
	m.ObservePluginCall("llm-tokens", "estimate", time.Microsecond, 20_960, "")
	m.ObservePluginCall("llm-tokens", "estimate", time.Microsecond, 0, "unhealthy")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{`purser_plugin_call_fuel_count{kind="estimate",plugin="llm-tokens"} 1`,
		`purser_plugin_call_fuel_sum{kind="estimate",plugin="llm-tokens"} 20960`,
		`purser_plugin_call_fuel_bucket{kind="estimate",plugin="llm-tokens",le="100000"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
