package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const replayFixture = "replay/testdata/purser/example.jsonl"

// The full engine, shipped Wasm plugins included: LLM steps are priced by
// the llm-tokens plugin and every step passes the max-cost-per-call policy.
func TestReplayCommandJSON(t *testing.T) {
	chart := filepath.Join(t.TempDir(), "run.svg")
	code, out, errOut := cli(t, "replay", replayFixture, "--budget", "0.02", "--json", "--chart", chart)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	var rep struct {
		Traces, Steps, Admitted, Denied, Asked int
		LLMCalls                               int `json:"llm_calls"`
		ToolCalls                              int `json:"tool_calls"`
		Spent                                  struct{ USD string }
		Budget                                 struct {
			Pool struct{ USD string } `json:"pool_limit"`
		}
		Overdrawn    bool
		FirstDenials []struct{ Step int } `json:"first_denials"`
		Alerts       []struct {
			ThresholdPct int `json:"threshold_pct"`
		}
		Accuracy struct {
			BySource []struct{ Key string } `json:"by_source"`
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	if rep.Traces != 1 || rep.Steps != 8 || rep.LLMCalls != 3 || rep.ToolCalls != 5 || rep.Admitted != 4 || rep.Denied != 4 ||
		rep.Spent.USD != "0.0263" || rep.Budget.Pool.USD != "0.02" || !rep.Overdrawn || len(rep.FirstDenials) != 1 || len(rep.Alerts) != 5 {
		t.Fatalf("report %+v", rep)
	}
	var plugin bool
	for _, s := range rep.Accuracy.BySource {
		plugin = plugin || strings.HasPrefix(s.Key, "plugin:llm-tokens@")
	}
	if !plugin {
		t.Errorf("LLM steps were not estimated by the llm-tokens plugin: %+v", rep.Accuracy.BySource)
	}
	svg, err := os.ReadFile(chart)
	if err != nil || !strings.HasPrefix(string(svg), "<svg") || !strings.Contains(string(svg), "limit $0.02") {
		t.Fatalf("chart: %v\n%.200s", err, svg)
	}
}

func TestReplayCommandText(t *testing.T) {
	code, out, errOut := cli(t, "replay", "--no-plugins", replayFixture, "--top", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{"Replayed 1 traces: 8 steps", "Spent $0.0581 (no budget)", "Top costs:", "Estimator accuracy", "source table"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestReplayCommandErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"tool\":\"Read\"}\n{\"tool\": 3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"replay"}, "at least one trace"},
		{[]string{"replay", replayFixture, "--budget", "-1"}, "--budget"},
		{[]string{"replay", replayFixture, "--format", "csv"}, "unknown trace format"},
		{[]string{"replay", "--no-plugins", bad}, bad + ":2:"},
		{[]string{"replay", "--no-plugins", "no/such/trace.jsonl"}, "no/such/trace.jsonl"},
	}
	for _, tc := range cases {
		code, _, errOut := cli(t, tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error containing %q", tc.args, code, errOut, tc.want)
		}
	}
}
