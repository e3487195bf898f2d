package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cli runs purser in-process from the repository root (where the default
// plugin paths resolve) and returns its exit status and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Chdir(repoRoot(t))
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := findRepo(wd)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestEstimateCommand(t *testing.T) {
	code, out, _ := cli(t, "estimate", "--tool", "Read", "--json", "--no-plugins")
	var got map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got["estimate_usd"] != "0.001" || got["estimate_nanos"] != float64(1_000_000) || got["source"] != "table" {
		t.Errorf("exit %d, %q", code, out)
	}
	// The seed's rule, exact: 70,000 characters naming no model.
	code, out, _ = cli(t, "estimate", "--tool", "LLM", "--params", `{"prompt":"`+strings.Repeat("x", 70_000)+`"}`)
	if code != 0 || !strings.Contains(out, "$0.00875") || !strings.Contains(out, "(source: llm)") {
		t.Errorf("LLM by the built-in rule: exit %d, %q", code, out)
	}
	code, out, _ = cli(t, "estimate", "--config", withLLMTokensPlugin(t), "--tool", "LLM", "--params", `{"prompt":"`+strings.Repeat("x", 70_000)+`"}`)
	if code != 0 || !strings.Contains(out, "$0.00875") || !strings.Contains(out, "plugin:llm-tokens@") {
		t.Errorf("LLM through the shipped plugin, loaded explicitly: exit %d, %q", code, out)
	}
	if code, _, errOut := cli(t, "estimate", "--tool", "Read", "--params", "{not json"); code != exitUsage || !strings.Contains(errOut, "--params") {
		t.Errorf("bad params: exit %d, %q", code, errOut)
	}
	if code, _, errOut := cli(t, "estimate"); code != exitUsage || !strings.Contains(errOut, "--tool is required") {
		t.Errorf("missing tool: exit %d, %q", code, errOut)
	}
}

func TestCheckExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--tool", "Read", "--limit", "1"}, exitOK, "ALLOW"},
		{[]string{"--tool", "Agent", "--limit", "0.05"}, exitDeny, "Insufficient budget: estimated $0.10 but only $0.05 remaining"},
		{[]string{"--tool", "Bash", "--limit", "1", "--used", "0.995"}, exitDeny, "only $0.005 remaining"},
		{[]string{"--tool", "Read", "--limit", "abc"}, exitUsage, "--limit"},
	}
	for _, c := range cases {
		code, out, errOut := cli(t, append([]string{"check", "--no-plugins"}, c.args...)...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("check %v: exit %d, %q %q; want %d and %q", c.args, code, out, errOut, c.code, c.want)
		}
	}
	cfg := writeFile(t, "ask.yaml", `
plugins:
  entries:
    - path: plugins/policies/tool-rules/tool-rules.wasm
      config: {mode: default}
`)
	if code, out, _ := cli(t, "check", "--config", cfg, "--tool", "Bash", "--limit", "1"); code != exitAsk || !strings.Contains(out, "ASK") {
		t.Errorf("tool-rules ask: exit %d, %q", code, out)
	}
}

func TestPluginInspectAndTest(t *testing.T) {
	code, out, _ := cli(t, "plugin", "inspect", "plugins/policies/max-cost-per-call/max-cost-per-call.wasm", "--json", "--config", `{"limit_usd":"0.10"}`)
	var got map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got["name"] != "max-cost-per-call" || got["kind"] != "policy" || got["valid"] != true || len(got["sha256"].(string)) != 64 ||
		got["init_fuel"] == nil || got["init_fuel"].(float64) <= 0 || got["init_fuel_limit"] != float64(200_000_000) {
		t.Fatalf("inspect: exit %d, %q", code, out)
	}
	code, out, _ = cli(t, "plugin", "inspect", "testplugins/badversion.wasm")
	if code != exitDeny || !strings.Contains(out, "INVALID") {
		t.Errorf("inspect of a wrong-ABI module: exit %d, %q", code, out)
	}
	code, out, _ = cli(t, "plugin", "test", "plugins/policies/max-cost-per-call/max-cost-per-call.wasm", "--cases", "plugins/policies/max-cost-per-call/cases.yaml")
	if code != 0 || !strings.Contains(out, " passed, 0 failed") {
		t.Errorf("Rust plugin's own cases: exit %d\n%s", code, out)
	}
	// Each case reports its fuel, and the same fuel on every run.
	if !regexp.MustCompile(`(?m)^ok   the brief's example  \(fuel [1-9][0-9]* of 20[0-9]{6}, `).MatchString(out) {
		t.Errorf("plugin test does not report fuel:\n%s", out)
	}
	if _, again, _ := cli(t, "plugin", "test", "plugins/policies/max-cost-per-call/max-cost-per-call.wasm", "--cases", "plugins/policies/max-cost-per-call/cases.yaml"); again != out {
		t.Errorf("fuel differs between runs:\n%s\n%s", out, again)
	}
	bad := writeFile(t, "cases.yaml", `
cases:
  - {name: wrong on purpose, config: {limit_usd: "0.10"}, tool: Bash, estimate_usd: "0.15", want: allow}
`)
	if code, out, _ := cli(t, "plugin", "test", "plugins/policies/max-cost-per-call/max-cost-per-call.wasm", "--cases", bad); code == 0 || !strings.Contains(out, "0 passed, 1 failed") {
		t.Errorf("a failing case must fail the run: exit %d, %q", code, out)
	}
}

func TestPluginNewBuildsAndPassesItsTest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go plugin twice")
	}
	dir := t.TempDir()
	repo := repoRoot(t)
	for _, kind := range []string{"estimator", "policy"} {
		target := filepath.Join(dir, kind)
		code, out, errOut := cli(t, "plugin", "new", "--kind", kind, "--repo", repo, "--dir", target, "my-"+kind)
		if code != 0 {
			t.Fatalf("new %s: %d %s %s", kind, code, out, errOut)
		}
		gotest := exec.Command("go", "test", "./...")
		gotest.Dir = target
		if b, err := gotest.CombinedOutput(); err != nil {
			t.Fatalf("scaffolded %s does not pass its own test: %v\n%s", kind, err, b)
		}
		build := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-o", "p.wasm", ".")
		build.Dir, build.Env = target, append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("scaffolded %s does not build for wasip1: %v\n%s", kind, err, b)
		}
		code, out, _ = cli(t, "plugin", "test", filepath.Join(target, "p.wasm"), "--cases", filepath.Join(target, "cases.yaml"))
		if code != 0 {
			t.Errorf("scaffolded %s fails its cases: %s", kind, out)
		}
	}
}

func TestUsage(t *testing.T) {
	if code, out, _ := cli(t, "--help"); code != 0 || !strings.Contains(out, "serve") || !strings.Contains(out, "plugin") {
		t.Errorf("help: %d %q", code, out)
	}
	if code, _, errOut := cli(t, "frobnicate"); code != exitUsage || !strings.Contains(errOut, "frobnicate") {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
}
