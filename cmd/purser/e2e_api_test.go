package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/purser-dev/purser/server"
)

// End-to-end tests of the HTTP contract (issue 11) against the real binary
// with auth on and the SQLite store.

const (
	e2eRootToken   = "e2e-root-secret"
	e2eScopedToken = "e2e-ops-a-secret"
	e2eAgentToken  = "e2e-bot-a-secret"
	e2eOtherToken  = "e2e-bot-b-secret"
)

func startAuthServer(t *testing.T, accounts string) *serverProc {
	t.Helper()
	cfg := fmt.Sprintf(`store: {kind: sqlite}
plugins: {entries: [], watch: false}
accounts:
%s
auth:
  tokens:
    - {name: root, role: admin, sha256: %s}
    - {name: ops-a, role: admin, sha256: %s, accounts: ["team-a", "team-a/*"]}
    - {name: bot-a, role: agent, sha256: %s, accounts: ["team-a", "team-a/*"]}
    - {name: bot-b, role: agent, sha256: %s, accounts: ["team-b", "team-b/*"]}
`, accounts, server.HashToken(e2eRootToken), server.HashToken(e2eScopedToken), server.HashToken(e2eAgentToken), server.HashToken(e2eOtherToken))
	return startServer(t, t.TempDir(), cfg)
}

// call sends body with a bearer token and decodes the JSON answer.
func (p *serverProc) call(token, method, path string, body any, want int) map[string]any {
	p.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != want {
		p.t.Fatalf("%s %s: %d %v; want %d", method, path, resp.StatusCode, out, want)
	}
	return out
}

func TestServeScopedAdminCannotEscapeItsParentBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server")
	}
	p := startAuthServer(t, `  - {id: org, limit_usd: "10"}
  - {id: team-a, parent: org}`)

	// The attack of issue 11 item 3: a parentless, unlimited account named
	// inside the token's scope would spend outside org.
	out := p.call(e2eScopedToken, "PUT", "/v1/accounts/team-a/free", map[string]any{"unlimited": true}, 400)
	if msg := fmt.Sprint(out["error"]); !strings.Contains(msg, `parent must be "team-a"`) {
		t.Errorf("refusal does not name the rule: %s", msg)
	}
	p.call(e2eScopedToken, "PUT", "/v1/accounts/team-a/free", map[string]any{"unlimited": true, "parent": "org"}, 403)
	p.call(e2eScopedToken, "PUT", "/v1/accounts/team-a2", map[string]any{"unlimited": true}, 403)
	p.call(e2eScopedToken, "PUT", "/v1/accounts/team-a/free", map[string]any{"unlimited": true, "parent": "team-a"}, 201)

	// Unlimited under team-a is still inside org's $10: 100 Agent calls
	// ($0.10 each) fit, the 101st is denied.
	admitted := 0
	for i := range 120 {
		out := p.call(e2eScopedToken, "POST", "/v1/reservations", map[string]any{"id": fmt.Sprintf("s-%d", i), "account": "team-a/free", "tool": "Agent"}, 200)
		if out["decision"] != "allow" {
			if !strings.HasPrefix(fmt.Sprint(out["reason"]), "Insufficient budget") {
				t.Fatalf("deny %d: %v; want a budget deny", i, out)
			}
			break
		}
		p.call(e2eScopedToken, "POST", fmt.Sprintf("/v1/reservations/s-%d/commit", i), nil, 200)
		admitted++
	}
	org := p.call(e2eRootToken, "GET", "/v1/accounts/org", nil, 200)
	if admitted != 100 || org["committed_nanos"] != float64(10_000_000_000) {
		t.Errorf("admitted %d, org %v; want 100 calls and exactly $10 on org", admitted, org)
	}
}

func TestServeReleaseIsIdempotentAndPendingHoldsCanBeFound(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server")
	}
	p := startAuthServer(t, `  - {id: team-a, limit_usd: "1"}
  - {id: team-b, limit_usd: "1"}`)
	for _, id := range []string{"h1", "h2", "h3"} {
		p.call(e2eAgentToken, "POST", "/v1/reservations", map[string]any{"id": id, "account": "team-a", "tool": "Read"}, 200)
	}
	p.call(e2eOtherToken, "POST", "/v1/reservations", map[string]any{"id": "b1", "account": "team-b", "tool": "Read"}, 200)
	p.call(e2eAgentToken, "POST", "/v1/reservations/h3/commit", nil, 200)

	// A release whose reply was lost is retried: same answer, 200.
	first := p.call(e2eAgentToken, "POST", "/v1/reservations/h1/release", nil, 200)
	again := p.call(e2eAgentToken, "POST", "/v1/reservations/h1/release", nil, 200)
	if fmt.Sprint(first) != fmt.Sprint(again) || again["state"] != "released" {
		t.Errorf("repeated release: %v then %v", first, again)
	}

	// Crash recovery: find the pending holds, settle them, list again.
	list := p.call(e2eAgentToken, "GET", "/v1/reservations?account=team-a&state=pending", nil, 200)
	var ids []string
	for _, r := range list["reservations"].([]any) {
		ids = append(ids, r.(map[string]any)["id"].(string))
	}
	if strings.Join(ids, ",") != "h2" {
		t.Fatalf("pending on team-a: %v; want only h2", ids)
	}
	p.call(e2eAgentToken, "POST", "/v1/reservations/h2/release", nil, 200)
	if left := p.call(e2eAgentToken, "GET", "/v1/reservations?account=team-a&state=pending", nil, 200); len(left["reservations"].([]any)) != 0 {
		t.Errorf("after settling: %v", left)
	}
	if all := p.call(e2eAgentToken, "GET", "/v1/reservations?account=team-a&limit=2", nil, 200); len(all["reservations"].([]any)) != 2 {
		t.Errorf("limit=2: %v", all)
	}
	p.call(e2eAgentToken, "GET", "/v1/reservations?account=team-b&state=pending", nil, 403)
}
