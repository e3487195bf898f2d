package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// The fixture's actual costs add up to $0.0421, so 50% is $0.02105.
// Without --stream, calibration learns from the first LLM call (held at
// the cold-start prior, 2x the $0.0001 minimum; it costs $0.0038) and the
// second LLM call no longer fits (first denial with 70.31% of the limit
// spent); the third names a model not seen before, borrows the first
// model's ratio (held $0.0038), costs $0.0213 and takes the trace to
// $0.0361, 71.5% over. With --stream that call is cut at the limit and no
// account ends above it.
func TestReplayTraceBudgetPercentStream(t *testing.T) {
	type report struct {
		Spent  struct{ USD string }
		Budget struct {
			TraceLimit      string `json:"trace_limit"`
			Stream          bool
			OverrunAccounts []struct{ Trace string }       `json:"overrun_accounts"`
			MaxOverrunUSD   string                         `json:"max_overrun_usd"`
			MaxOverrunRatio float64                        `json:"max_overrun_ratio"`
			CutCalls        int                            `json:"cut_calls"`
			Utilization     *struct{ Min, Median float64 } `json:"utilization_at_first_denial"`
		}
	}
	run := func(extra ...string) report {
		t.Helper()
		code, out, errOut := cli(t, append([]string{"replay", "--no-plugins", replayFixture, "--trace-budget", "50%", "--json"}, extra...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var rep report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	plain := run()
	if b := plain.Budget; b.TraceLimit != "50% of each trace's actual" || len(b.OverrunAccounts) != 1 || b.MaxOverrunUSD != "0.01505" ||
		b.MaxOverrunRatio != 0.715 || b.Utilization == nil || b.Utilization.Median != 0.7031 || b.Stream {
		t.Errorf("without --stream: %+v", b)
	}
	streamed := run("--stream")
	if b := streamed.Budget; len(b.OverrunAccounts) != 0 || b.CutCalls == 0 || !b.Stream || b.Utilization == nil || b.Utilization.Median > 1 {
		t.Errorf("with --stream: %+v", b)
	}
	code, out, _ := cli(t, "replay", "--no-plugins", replayFixture, "--trace-budget", "50%", "--stream")
	if code != 0 || !strings.Contains(out, "No account ended above its limit.") || !strings.Contains(out, "cut where an extension was denied") {
		t.Errorf("text report:\n%s", out)
	}
}

func TestReplayTraceBudgetErrors(t *testing.T) {
	for _, v := range []string{"0%", "abc%", "12.34567%", "2000%"} {
		code, _, errOut := cli(t, "replay", "--no-plugins", replayFixture, "--trace-budget", v)
		if code == 0 || !strings.Contains(errOut, "--trace-budget") {
			t.Errorf("--trace-budget %s: exit %d, stderr %q", v, code, errOut)
		}
	}
}
