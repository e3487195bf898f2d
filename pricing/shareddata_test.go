package pricing

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

// sharedData is the real data folder beside the checkout; tests that need
// it skip when it is absent.
const sharedData = "../../shared/data"

type billedCall struct {
	instance, model            string
	message                    int
	prompt, cached, completion int64
	cost                       string
}

func (c billedCall) String() string {
	return fmt.Sprintf("%s\t%d\t%s\t%d\t%d\t%d\t%s", c.instance, c.message, c.model, c.prompt, c.cached, c.completion, c.cost)
}

func readBilledFixture(t *testing.T) []billedCall {
	t.Helper()
	f, err := os.Open("testdata/miniswe-billed.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []billedCall
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		col := strings.Split(sc.Text(), "\t")
		if len(col) != 7 {
			t.Fatalf("miniswe-billed.tsv:%d: %d columns", line, len(col))
		}
		n := make([]int64, 4)
		for i, s := range []string{col[1], col[3], col[4], col[5]} {
			if n[i], err = strconv.ParseInt(s, 10, 64); err != nil {
				t.Fatalf("miniswe-billed.tsv:%d: %v", line, err)
			}
		}
		out = append(out, billedCall{instance: col[0], message: int(n[0]), model: col[2], prompt: n[1], cached: n[2], completion: n[3], cost: col[6]})
	}
	return out
}

// TestMiniSWEBilledCallsReproduced prices every provider-billed
// mini-swe-agent call in ../shared/data from its tokens with the embedded
// table and gets the billed amount to the nano-dollar.
func TestMiniSWEBilledCallsReproduced(t *testing.T) {
	tb := embedded(t, Options{})
	calls := readBilledFixture(t)
	if len(calls) != 1577 {
		t.Fatalf("%d billed calls in the fixture; want 1577", len(calls))
	}
	var total enforcer.Nanos
	for _, c := range calls {
		q := tb.PriceOf(c.model)
		if q.Fallback {
			t.Fatalf("%s: model %q priced by %s", c.instance, c.model, q.Source)
		}
		u := enforcer.TokenUsage{Model: c.model, InputTokens: c.prompt - c.cached, CacheReadTokens: c.cached, OutputTokens: c.completion}
		got, err := q.Price.Cost(u)
		if err != nil {
			t.Fatal(err)
		}
		want, err := enforcer.ParseBilledUSD(c.cost)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s message %d: priced %s (%d nano), billed %s (%d nano)", c.instance, c.message, got, got, c.cost, want)
		}
		total += got
	}
	t.Logf("%d calls, %s billed and reproduced", len(calls), total)
}

// TestMiniSWEFixtureMatchesTraces re-derives the fixture from the traces.
func TestMiniSWEFixtureMatchesTraces(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(sharedData, "mini-swe-agent-gemini3pro", "trajs", "*.traj.json"))
	if len(files) == 0 {
		t.Skip("../shared/data not present")
	}
	sort.Strings(files)
	var got []string
	for _, f := range files {
		got = append(got, billedCallsOf(t, f)...)
	}
	var want []string
	for _, c := range readBilledFixture(t) {
		want = append(want, c.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("fixture (%d calls) differs from the traces (%d calls)", len(want), len(got))
	}
}

func billedCallsOf(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tj struct {
		InstanceID string `json:"instance_id"`
		Messages   []struct {
			Role  string `json:"role"`
			Extra *struct {
				Response *struct {
					Model string `json:"model"`
					Usage *struct {
						Prompt     int64        `json:"prompt_tokens"`
						Completion int64        `json:"completion_tokens"`
						Cost       *json.Number `json:"cost"`
						Details    *struct {
							Cached int64 `json:"cached_tokens"`
						} `json:"prompt_tokens_details"`
					} `json:"usage"`
				} `json:"response"`
			} `json:"extra"`
		} `json:"messages"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&tj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for i, m := range tj.Messages {
		if m.Role != "assistant" || m.Extra == nil || m.Extra.Response == nil || m.Extra.Response.Usage == nil || m.Extra.Response.Usage.Cost == nil {
			continue
		}
		u := m.Extra.Response.Usage
		c := billedCall{instance: tj.InstanceID, message: i, model: m.Extra.Response.Model, prompt: u.Prompt, completion: u.Completion, cost: u.Cost.String()}
		if u.Details != nil {
			c.cached = u.Details.Cached
		}
		out = append(out, c.String())
	}
	return out
}

// TestSharedDataModelsResolve: every model named in ../shared/data's
// traces resolves to a LiteLLM entry, none to the fallback.
func TestSharedDataModelsResolve(t *testing.T) {
	models := map[string]bool{}
	err := filepath.WalkDir(sharedData, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, "prices") {
			return err
		}
		return collectModels(p, models)
	})
	if os.IsNotExist(err) || len(models) == 0 {
		t.Skip("../shared/data not present")
	}
	if err != nil {
		t.Fatal(err)
	}
	tb := embedded(t, Options{})
	for m := range models {
		if q := tb.PriceOf(m); q.Fallback {
			t.Errorf("model %q in the traces is priced by %s", m, q.Source)
		}
	}
	t.Logf("models: %v", models)
}

// collectModels finds "model" and "model_name" string values anywhere in
// a JSON or JSONL trace (lines that do not parse are skipped, as the
// replay readers do). Tool inputs are not model calls: a Claude Code Task's
// {"model": "sonnet"} picks a sub-agent whose own calls name the model.
func collectModels(path string, into map[string]bool) error {
	if !strings.HasSuffix(path, ".json") && !strings.HasSuffix(path, ".jsonl") {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	docs := []string{string(data)}
	if strings.HasSuffix(path, ".jsonl") {
		docs = strings.Split(string(data), "\n")
	}
	for _, doc := range docs {
		var v any
		if json.Unmarshal([]byte(doc), &v) == nil {
			walkModels(v, into)
		}
	}
	if strings.Contains(path, "tau-bench") {
		into["gpt-4o"] = true // tau-bench's files do not name the agent's model (FORMATS.md)
	}
	return nil
}

func walkModels(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && (k == "model" || k == "model_name") && s != "" && s != "<synthetic>" {
				into[s] = true
			}
			if k != "input" {
				walkModels(c, into)
			}
		}
	case []any:
		for _, c := range x {
			walkModels(c, into)
		}
	}
}
