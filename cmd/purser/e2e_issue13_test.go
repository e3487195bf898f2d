package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/server"
	"github.com/purser-dev/purser/server/decisionlog"
)

// End-to-end tests of issue 13 (hold extension, usage-priced commits)
// through the real binary over HTTP and its CLI, on SQLite and memory.

// issue13Stores are the stores the end-to-end tests run on: the server's
// default (SQLite) and memory.
var issue13Stores = []string{"sqlite", "memory"}

func startIssue13Server(t *testing.T, store, extra string) *serverProc {
	t.Helper()
	p, _ := startIssue13ServerIn(t, store, extra)
	return p
}

// startIssue13ServerIn returns the server and its decision log's path.
func startIssue13ServerIn(t *testing.T, store, extra string) (*serverProc, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`store: {kind: %s}
plugins: {entries: [], watch: false}
accounts:
  - {id: team-a, limit_usd: "0.10"}
  - {id: team-b, limit_usd: "1"}
auth:
  tokens:
    - {name: bot-a, role: agent, sha256: %s, accounts: ["team-a", "team-a/*"]}
    - {name: bot-b, role: agent, sha256: %s, accounts: ["team-b", "team-b/*"]}
%s`, store, server.HashToken(e2eAgentToken), server.HashToken(e2eOtherToken), extra)
	return startServer(t, dir, cfg), filepath.Join(dir, "data", "decisions.jsonl")
}

func TestServeExtendThenCommitUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server")
	}
	for _, store := range issue13Stores {
		t.Run(store, func(t *testing.T) { testExtendThenCommitUsage(t, store) })
	}
}

func testExtendThenCommitUsage(t *testing.T, store string) {
	p, logPath := startIssue13ServerIn(t, store, "")
	a := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		return p.call(e2eAgentToken, method, path, body, want)
	}
	a("POST", "/v1/reservations", map[string]any{"id": "r1", "account": "team-a", "tool": "Read"}, 200) // $0.001

	out := a("POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.05"}, 200)
	if r := out["reservation"].(map[string]any); out["decision"] != "allow" || r["held_nanos"] != float64(51_000_000) ||
		r["extended_nanos"] != float64(50_000_000) || r["estimate_nanos"] != float64(1_000_000) {
		t.Fatalf("extend: %v", out)
	}
	// A retry after a lost reply adds nothing; another amount is a conflict.
	if again := a("POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_nanos": 50_000_000}, 200); again["reservation"].(map[string]any)["held_nanos"] != float64(51_000_000) {
		t.Errorf("retried extension: %v", again)
	}
	conflict := a("POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.06"}, 409)
	if code, _ := errorOf(conflict); code != "conflict" {
		t.Errorf("reused extension id: %v", conflict)
	}

	// $0.049 remain: a $0.05 extension is denied, the hold stays, and the
	// answer says what remains.
	deny := a("POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e2", "add_usd": "0.05"}, 200)
	if deny["decision"] != "deny" || deny["reason"] != "Insufficient budget: estimated $0.05 but only $0.049 remaining" ||
		deny["remaining_nanos"] != float64(49_000_000) || deny["reservation"].(map[string]any)["held_nanos"] != float64(51_000_000) {
		t.Fatalf("denied extend: %v", deny)
	}
	if acct := a("GET", "/v1/accounts/team-a", nil, 200); acct["pending_nanos"] != float64(51_000_000) {
		t.Errorf("a denied extension changed the account: %v", acct)
	}

	// Commit with usage: priced by the server's table, recorded, shown.
	usage := map[string]any{"model": "claude-sonnet-4-5", "input_tokens": 1000, "output_tokens": 500, "cache_read_tokens": 2000, "cache_write_tokens": 100}
	done := a("POST", "/v1/reservations/r1/commit", map[string]any{"usage": usage}, 200)
	const want = 3_000_000 + 7_500_000 + 600_000 + 375_000 // $3, $15, $0.30, $3.75 per 1M
	if done["charged_nanos"] != float64(want) || done["cost_source"] != "actual" || done["price_fallback"] != false {
		t.Fatalf("commit with usage: %v", done)
	}
	got := a("GET", "/v1/reservations/r1", nil, 200)
	u, _ := got["usage"].(map[string]any)
	if got["state"] != "committed" || u["output_tokens"] != float64(500) || u["cache_write_tokens"] != float64(100) ||
		!strings.Contains(fmt.Sprint(got["price_source"]), "claude-sonnet-4-5") || got["held_nanos"] != float64(0) ||
		got["extended_nanos"] != float64(50_000_000) || got["estimate_nanos"] != float64(1_000_000) {
		t.Errorf("GET after commit: %v", got)
	}
	list := a("GET", "/v1/reservations?account=team-a&state=committed", nil, 200)
	if l := list["reservations"].([]any); len(l) != 1 || l[0].(map[string]any)["price_source"] != got["price_source"] {
		t.Errorf("list after commit: %v", list)
	}
	if acct := a("GET", "/v1/accounts/team-a", nil, 200); acct["pending_nanos"] != float64(0) || acct["committed_nanos"] != float64(want) {
		t.Errorf("account after commit: %v", acct)
	}

	// An unknown model is priced by the fallback rule, and flagged.
	a("POST", "/v1/reservations", map[string]any{"id": "r2", "account": "team-a", "tool": "Read"}, 200)
	fb := a("POST", "/v1/reservations/r2/commit", map[string]any{"usage": map[string]any{"model": "e2e-no-such-model", "input_tokens": 10}}, 200)
	if fb["price_fallback"] != true || !strings.HasPrefix(fmt.Sprint(fb["price_source"]), "fallback:") || fb["charged_nanos"] == float64(0) {
		t.Errorf("unknown model: %v", fb)
	}

	// The decision log has the extensions and the priced commits.
	seen := map[string]decisionlog.Event{}
	for i := 0; i < 100 && seen["commit/committed/r2"].DecisionID == ""; i++ { // the log is written asynchronously
		time.Sleep(20 * time.Millisecond)
		raw, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			var ev decisionlog.Event
			if json.Unmarshal([]byte(line), &ev) == nil {
				seen[ev.Kind+"/"+ev.Outcome+"/"+ev.ReservationID] = ev
			}
		}
	}
	if ev := seen["extend/deny/r1"]; ev.Version != decisionlog.EventVersion || ev.ExtensionID != "e2" || ev.HeldNanos != 51_000_000 ||
		ev.Reason != deny["reason"] {
		t.Errorf("extend deny event: %+v", ev)
	}
	if ev := seen["commit/committed/r1"]; ev.Usage == nil || ev.Usage.OutputTokens != 500 || ev.PriceSource != got["price_source"] || ev.PriceFallback {
		t.Errorf("commit event: %+v", ev)
	}
	if ev := seen["commit/committed/r2"]; !ev.PriceFallback {
		t.Errorf("fallback commit event: %+v", ev)
	}
}

func TestServeExtendAndCommitRefuseBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server")
	}
	for _, store := range issue13Stores {
		t.Run(store, func(t *testing.T) { testExtendAndCommitRefuseBadInput(t, store) })
	}
}

func testExtendAndCommitRefuseBadInput(t *testing.T, store string) {
	p := startIssue13Server(t, store, `pricing: {llm: {models: {e2e-absurd: {input_usd_per_token: "9000", output_usd_per_token: "9000"}}}}`)
	a := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		return p.call(e2eAgentToken, method, path, body, want)
	}
	for _, id := range []string{"done", "gone", "open"} {
		a("POST", "/v1/reservations", map[string]any{"id": id, "account": "team-a", "tool": "Read"}, 200)
	}
	a("POST", "/v1/reservations", map[string]any{"id": "brief", "account": "team-a", "tool": "Read", "ttl_ms": 1}, 200)
	a("POST", "/v1/reservations/done/commit", nil, 200)
	a("POST", "/v1/reservations/gone/release", nil, 200)
	time.Sleep(20 * time.Millisecond) // "brief" expires (a real clock: the binary's)
	p.call(e2eOtherToken, "POST", "/v1/reservations", map[string]any{"id": "theirs", "account": "team-b", "tool": "Read"}, 200)

	ext := map[string]any{"extension_id": "x", "add_usd": "0.01"}
	for _, c := range []struct {
		id     string
		status int
		code   string
		says   string
	}{
		{"done", 409, "already_settled", `"done" is committed`},
		{"gone", 409, "already_settled", `"gone" is released`},
		{"brief", 409, "already_settled", `"brief" is expired`},
		{"nope", 404, "reservation_not_found", "nope"},
		{"theirs", 404, "reservation_not_found", "theirs"}, // another tenant's: like an unknown id
	} {
		code, msg := errorOf(a("POST", "/v1/reservations/"+c.id+"/extend", ext, c.status))
		if code != c.code || !strings.Contains(msg, c.says) {
			t.Errorf("extend %s: %s %q; want %s saying %s", c.id, code, msg, c.code, c.says)
		}
	}
	for _, c := range []struct {
		body any
		says string
	}{
		{map[string]any{"add_usd": "0.01"}, `"extension_id" is required`},
		{map[string]any{"extension_id": "x"}, `"add_usd" or "add_nanos" is required`},
		{map[string]any{"extension_id": "x", "add_usd": "-0.01"}, `"add_usd"`},
		{map[string]any{"extension_id": "x", "add_nanos": 0}, "above 0"},
		{map[string]any{"extension_id": "x", "add_nanos": 1.5}, `"add_nanos"`},
	} {
		if code, msg := errorOf(a("POST", "/v1/reservations/open/extend", c.body, 400)); code != "bad_request" || !strings.Contains(msg, c.says) {
			t.Errorf("extend %v: %s %q; want a 400 naming %s", c.body, code, msg, c.says)
		}
	}
	for _, c := range []struct {
		usage map[string]any
		says  string
	}{
		{map[string]any{"model": "claude-sonnet-4-5", "output_tokens": -1}, `"usage.output_tokens": must be >= 0`},
		{map[string]any{"model": "claude-sonnet-4-5", "input_tokens": 1_000_000_001}, `"usage.input_tokens": 1000000001 tokens is above the limit`},
		{map[string]any{"model": "claude-sonnet-4-5", "cache_read_tokens": 2.5}, `"usage.cache_read_tokens"`},
		{map[string]any{"model": "claude-sonnet-4-5", "cache_write_1h_tokens": "7"}, `"usage.cache_write_1h_tokens"`},
		{map[string]any{"input_tokens": 7}, `"usage.model" is required`},
		{map[string]any{"model": "e2e-absurd", "input_tokens": 1_000_000_000}, `"usage": priced as`}, // int64 overflow once priced
	} {
		body := map[string]any{"usage": c.usage}
		if code, msg := errorOf(a("POST", "/v1/reservations/open/commit", body, 400)); code != "bad_request" || !strings.Contains(msg, c.says) {
			t.Errorf("commit %v: %s %q; want a 400 naming %s", c.usage, code, msg, c.says)
		}
	}
	if got := a("GET", "/v1/reservations/open", nil, 200); got["state"] != "pending" || got["held_nanos"] != float64(1_000_000) {
		t.Errorf("refused requests changed the reservation: %v", got)
	}
}

func TestCLIReservationsExtendAndCommitUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server")
	}
	p := startIssue13Server(t, "sqlite", "")
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := exec.Command(purserBinary(t), append([]string{"reservations"}, args...)...)
		cmd.Env = append(cmd.Environ(), "PURSER_TOKEN="+e2eAgentToken)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("purser reservations %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
		}
		return string(out)
	}
	addr := strings.TrimPrefix(p.base, "http://")
	out := cli(0, "reserve", "--addr", addr, "--account", "team-a", "--tool", "Read", "--id", "c1")
	if !strings.HasPrefix(out, "allow") || !strings.Contains(out, "held $0.001") {
		t.Errorf("reserve: %s", out)
	}
	out = cli(0, "extend", "c1", "--add", "0.05", "--extension-id", "e1", "--addr", addr)
	if !strings.HasPrefix(out, "allow") || !strings.Contains(out, "extended $0.05") || !strings.Contains(out, "held $0.051") {
		t.Errorf("extend: %s", out)
	}
	out = cli(1, "extend", "c1", "--add", "0.05", "--extension-id", "e2", "--addr", addr)
	if !strings.Contains(out, "deny: Insufficient budget: estimated $0.05 but only $0.049 remaining") || !strings.Contains(out, "held $0.051") {
		t.Errorf("denied extend: %s", out)
	}
	out = cli(0, "commit", "c1", "--model", "claude-sonnet-4-5", "--input-tokens", "1000", "--output-tokens", "500", "--addr", addr)
	if !strings.Contains(out, "committed") || !strings.Contains(out, "charged $0.0105") || !strings.Contains(out, "priced by") ||
		!strings.Contains(out, "output 500") {
		t.Errorf("commit: %s", out)
	}
	if out = cli(0, "show", "c1", "--addr", addr, "--json"); !strings.Contains(out, `"price_source"`) || !strings.Contains(out, `"input_tokens": 1000`) {
		t.Errorf("show --json: %s", out)
	}
	out = cli(4, "commit", "c1", "--model", "claude-sonnet-4-5", "--output-tokens", "-3", "--addr", addr)
	if !strings.Contains(out, "usage.output_tokens") {
		t.Errorf("negative tokens: %s", out)
	}
	if out = cli(0, "extend", "--help"); !strings.Contains(out, "-extension-id") {
		t.Errorf("extend --help: %s", out)
	}
	cli(2, "extend", "c1", "--addr", addr)
}

func errorOf(out map[string]any) (code, msg string) {
	e, _ := out["error"].(map[string]any)
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return code, msg
}
