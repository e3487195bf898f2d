package main

import (
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/pursertest"
)

type check struct {
	tool, params string
	want         abi.Verdict
	reason       string
}

func run(t *testing.T, cfg string, checks []check) {
	t.Helper()
	p, err := pursertest.New(Plugin(), cfg)
	if err != nil {
		t.Fatalf("config %s: %v", cfg, err)
	}
	for _, c := range checks {
		got, err := p.Admit(pursertest.NewCall(c.tool, c.params), 1_000_000)
		if err != nil || got.Verdict != c.want || got.Reason != c.reason {
			t.Errorf("config %s\n  %s %s: got %v %q, %v; want %v %q", cfg, c.tool, c.params, got.Verdict, got.Reason, err, c.want, c.reason)
		}
	}
}

func TestModes(t *testing.T) {
	allTools := []string{"Read", "Write", "Edit", "Bash", "PythonCode", "Delete", "Grep", "Glob", "WebFetch", "LLM", "HTTP", "Agent", "mcp__github__create_issue"}
	want := map[string]map[string]abi.Verdict{
		"default":      {"Write": abi.Ask, "Edit": abi.Ask, "Bash": abi.Ask, "PythonCode": abi.Ask, "Delete": abi.Ask},
		"accept_edits": {"Bash": abi.Ask, "PythonCode": abi.Ask, "Delete": abi.Ask},
		"plan": {"Write": abi.Deny, "Edit": abi.Deny, "Bash": abi.Deny, "PythonCode": abi.Deny, "Delete": abi.Deny,
			"HTTP": abi.Deny, "Agent": abi.Deny, "mcp__github__create_issue": abi.Deny},
	}
	for mode, special := range want {
		var checks []check
		for _, tool := range allTools {
			v := special[tool] // zero value: allow
			reason := ""
			switch v {
			case abi.Ask:
				reason = "Mode " + mode + " requires approval for " + tool
			case abi.Deny:
				reason = "Plan mode allows only read-only tools; " + tool + " is not one"
			}
			checks = append(checks, check{tool, "", v, reason})
		}
		run(t, `{"mode":"`+mode+`"}`, checks)
	}
	// No mode at all is the default mode.
	run(t, `{}`, []check{{"Bash", "", abi.Ask, "Mode default requires approval for Bash"}, {"Read", "", abi.Allow, ""}})
}

func TestListsAndRules(t *testing.T) {
	cfg := `{
	  "allow": ["Bash", "Write"],
	  "ask": ["WebFetch"],
	  "deny": ["Delete"],
	  "rules": [
	    {"name": "no-rm-rf", "action": "deny", "tool": "Bash|PythonCode", "params": "rm\\s+-rf", "reason": "rm -rf is never allowed"},
	    {"name": "git-read", "action": "allow", "tool": "Bash", "params": "\"command\":\"git (status|diff|log)\\b", "priority": 20},
	    {"name": "git-any", "action": "ask", "tool": "Bash", "params": "\"command\":\"git ", "priority": 10},
	    {"name": "prod-host", "action": "ask", "params": "prod\\.example\\.com", "priority": 5},
	    {"name": "low-deny", "action": "deny", "tools": ["Write"], "params": "/etc/", "priority": -100},
	    {"name": "tie-allow", "action": "allow", "tools": ["Grep"], "priority": 3},
	    {"name": "tie-ask", "action": "ask", "tools": ["Grep"], "priority": 3},
	    {"name": "mcp", "action": "ask", "tool": "mcp__github__.*", "reason": "GitHub writes need a human"}
	  ]
	}`
	run(t, cfg, []check{
		// Name lists.
		{"Delete", `{"path":"x"}`, abi.Deny, "Tool Delete is on the tool-rules deny list"},
		{"WebFetch", `{"url":"https://a"}`, abi.Ask, "Tool WebFetch is on the tool-rules ask list: approval required"},
		{"Bash", `{"command":"ls"}`, abi.Allow, ""}, // allow list beats the mode's ask
		// A deny rule wins although it has priority 0 and git-read has 20,
		// and although Bash is on the allow list.
		{"Bash", `{"command":"git status && rm -rf /"}`, abi.Deny, "rm -rf is never allowed"},
		{"PythonCode", `{"code":"os.system('rm  -rf x')"}`, abi.Deny, "rm -rf is never allowed"},
		// Priorities: 20 (allow) beats 10 (ask) beats 0 (allow list).
		{"Bash", `{"command":"git diff"}`, abi.Allow, ""},
		{"Bash", `{"command":"git push"}`, abi.Ask, `Approval required by tool-rules rule "git-any"`},
		// A params-only rule applies to any tool; priority 5 beats the allow list.
		{"Bash", `{"command":"curl prod.example.com"}`, abi.Ask, `Approval required by tool-rules rule "prod-host"`},
		{"Read", `{"path":"prod.example.com.txt"}`, abi.Ask, `Approval required by tool-rules rule "prod-host"`},
		// A deny at priority -100 still wins over the allow list.
		{"Write", `{"path":"/etc/passwd"}`, abi.Deny, `Denied by tool-rules rule "low-deny"`},
		{"Write", `{"path":"/tmp/x"}`, abi.Allow, ""},
		// Equal priority: ask beats allow.
		{"Grep", `{"pattern":"x"}`, abi.Ask, `Approval required by tool-rules rule "tie-ask"`},
		// Tool regex is anchored: matches the whole name only.
		{"mcp__github__create_issue", `{}`, abi.Ask, "GitHub writes need a human"},
		{"xmcp__github__create_issue", `{}`, abi.Allow, ""},
		{"Bash2", `{"command":"rm -rf /"}`, abi.Allow, ""},
		// Nothing matches: the mode decides.
		{"Edit", `{"path":"a.go"}`, abi.Ask, "Mode default requires approval for Edit"},
		{"Glob", `{}`, abi.Allow, ""},
	})
}

func TestPlanModeOverridesAllowButNotDeny(t *testing.T) {
	cfg := `{"mode":"plan","allow":["Bash"],"deny":["Read"],"read_only":["mcp__docs__search"],
	  "rules":[{"name":"secrets","action":"deny","tool":"Grep","params":"password"},{"action":"ask","tools":["WebFetch"]}]}`
	run(t, cfg, []check{
		{"Bash", `{"command":"ls"}`, abi.Deny, "Plan mode allows only read-only tools; Bash is not one"},
		{"Read", `{}`, abi.Deny, "Tool Read is on the tool-rules deny list"},
		{"Grep", `{"pattern":"password"}`, abi.Deny, `Denied by tool-rules rule "secrets"`},
		{"Grep", `{"pattern":"func"}`, abi.Allow, ""},
		{"WebFetch", `{}`, abi.Ask, `Approval required by tool-rules rule "rules[1]"`},
		{"mcp__docs__search", `{}`, abi.Allow, ""},
		{"LLM", `{"prompt":"hi"}`, abi.Allow, ""},
	})
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct{ cfg, msg string }{
		{`{"mode":"yolo"}`, `tool-rules: mode: "yolo" is not one of default, accept_edits, plan`},
		{`{"allow":["Read",""]}`, `tool-rules: allow[1]: empty tool name`},
		{`{"rules":[{"action":"maybe"}]}`, `tool-rules: rules[0].action: "maybe" is not one of allow, ask, deny`},
		{`{"rules":[{"name":"x","action":"deny","tool":"("}]}`, `tool-rules: rules[0] ("x").tool: error parsing regexp: missing closing ): ` + "`^(?:()$`"},
		{`{"rules":[{"action":"deny","params":"[z-a]"}]}`, `tool-rules: rules[0].params: error parsing regexp: invalid character class range: ` + "`z-a`"},
		{`{"rules":[{"action":"deny","priority":1.5}]}`, `tool-rules: config: field "rules.priority": expected int64, got JSON number 1.5`},
		{`{"rules":[{"action":"deny","tols":["x"]}]}`, `tool-rules: config: json: unknown field "tols"`},
	} {
		_, err := pursertest.New(Plugin(), tc.cfg)
		if pursertest.Code(err) != abi.CodeBadConfig || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("config %s:\n got %v\nwant bad_config %q", tc.cfg, err, tc.msg)
		}
	}
}

func TestFewAllocsPerCall(t *testing.T) {
	p, err := newPolicy([]byte(`{"allow":["Read"],"rules":[{"action":"deny","tool":"Bash","params":"rm\\s+-rf"},{"action":"ask","params":"prod"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ tool, params string }{{"Read", `{"path":"a"}`}, {"Bash", `{"command":"ls -la"}`}, {"Edit", `{"path":"x"}`}} {
		req, err := newAdmitRequest(pursertest.NewCall(c.tool, c.params))
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(200, func() { _, _ = p.Admit(req) }); n != 0 {
			t.Errorf("%s: Admit allocates %v times per call", c.tool, n)
		}
	}
}
