package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// pgProxy forwards TCP to PostgreSQL until cut, so a test can take the
// database away from one purser without stopping the shared cluster.
type pgProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func startPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{t: t, addr: ln.Addr().String(), target: target}
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *pgProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut refuses new connections and drops open ones: the database is gone.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *pgProxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

func TestServeLedgerOutageIs503WithRetryAfter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server")
	}
	dsn := pgTestDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startPGProxy(t, u.Host)
	u.Host = proxy.addr
	dir := t.TempDir()
	logPath := filepath.Join(dir, "decisions.jsonl")
	p := startServer(t, dir, fmt.Sprintf(`store: {kind: postgres, dsn: %q, statement_timeout: 2s}
plugins: {entries: [], watch: false}
decision_log: {enabled: true, path: %q}
accounts:
  - {id: team, limit_usd: "1"}
`, u.String(), logPath))
	p.must("POST", "/v1/reservations", map[string]any{"id": "before", "account": "team", "tool": "Read"}, 200)

	proxy.cut()
	for _, id := range []string{"during-1", "during-2"} {
		req, _ := http.NewRequest("POST", p.base+"/v1/reservations", strings.NewReader(fmt.Sprintf(`{"id":%q,"account":"team","tool":"Read"}`, id)))
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		msg := fmt.Sprint(out["error"])
		if resp.StatusCode != 503 || !strings.Contains(msg, "ledger_unavailable") || resp.Header.Get("Retry-After") == "" {
			t.Errorf("reserve with the database gone: %d Retry-After=%q %v; want 503 ledger_unavailable with Retry-After",
				resp.StatusCode, resp.Header.Get("Retry-After"), out)
		}
		if strings.Contains(msg, proxy.addr) || strings.Contains(msg, u.Port()) {
			t.Errorf("the client is shown the database address: %s", msg)
		}
	}
	st, ready := p.do("GET", "/readyz", nil)
	if st != 503 || strings.Contains(fmt.Sprint(ready), u.Port()) {
		t.Errorf("readyz during the outage: %d %v; want a generic 503", st, ready)
	}

	proxy.restore()
	var out map[string]any
	for range 100 { // the pool reconnects on its own
		if st, out = p.do("POST", "/v1/reservations", map[string]any{"id": "during-1", "account": "team", "tool": "Read"}); st == 200 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out["decision"] != "allow" {
		t.Fatalf("retry with the same id after the outage: %d %v", st, out)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil { // closing flushes the log
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	p.done <- nil
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), `"outcome":"error","error_code":"ledger_unavailable"`); n < 2 {
		t.Errorf("decision log records %d failed admissions; want the 2 made during the outage:\n%s", n, raw)
	}
}
