package replay

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

// sharedData returns ../shared/data relative to the repository root (where
// CI and the project keep the real traces), or skips the test.
func sharedData(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs("..") // tests run in replay/
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(root, "..", "shared", "data")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		tb.Skipf("real trace data not found at %s", dir)
	}
	return dir
}

func sharedPrices(tb testing.TB, dir string) enforcer.Pricer {
	tb.Helper()
	p, err := LoadPricesFile(filepath.Join(dir, "prices", "litellm_model_prices_and_context_window.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// The counts of FORMATS.md, reproduced by the readers.
func TestSharedDataCounts(t *testing.T) {
	dir := sharedData(t)
	prices := sharedPrices(t, dir)
	cases := []struct {
		sub                                        string
		traces, llm, tools, skipped, billedMatched int
	}{
		{"mini-swe-agent-gemini3pro", 43, 1626, 1576, 0, 1577},
		// 1,100 distinct API calls; 18 of them appear in two files
		// (a resumed session repeats its history), so per file 1,118.
		{"claude-code-m-claude", 23, 1118, 1310, 183, 0},
		{"tau-bench", 200, 2454, 1164, 0, 0},
	}
	for _, tc := range cases {
		ts, err := ReadPaths([]string{filepath.Join(dir, tc.sub)}, FormatAuto, prices)
		if err != nil {
			t.Fatal(err)
		}
		var llm, tools, skipped, matched int
		for _, tr := range ts {
			skipped += tr.Skipped
			for _, s := range tr.Steps {
				if s.IsLLM() {
					llm++
				} else {
					tools++
				}
				if s.ActualSource == ActualBilled {
					if c, _, _ := PriceUsage(prices, *s.Usage); c == *s.Actual {
						matched++
					}
				}
			}
		}
		if len(ts) != tc.traces || llm != tc.llm || tools != tc.tools || skipped != tc.skipped || matched != tc.billedMatched {
			t.Errorf("%s: traces %d llm %d tools %d skipped %d billed=tokens x price %d; want %d %d %d %d %d",
				tc.sub, len(ts), llm, tools, skipped, matched, tc.traces, tc.llm, tc.tools, tc.skipped, tc.billedMatched)
		}
	}
}

func TestSharedDataReplays(t *testing.T) {
	dir := sharedData(t)
	ts, err := ReadPaths([]string{dir}, FormatAuto, sharedPrices(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(enforcer.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	budget := enforcer.MustParseUSD("50")
	r.Budget = &budget
	rep, err := r.Run(context.Background(), ts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Traces != 268 || rep.Denied == 0 || len(rep.Alerts) == 0 || rep.Admitted+rep.Denied != rep.Steps {
		t.Fatalf("traces %d steps %d admitted %d denied %d alerts %d", rep.Traces, rep.Steps, rep.Admitted, rep.Denied, len(rep.Alerts))
	}
}
