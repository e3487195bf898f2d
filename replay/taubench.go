package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/purser-dev/purser/enforcer"
)

type tauRun struct {
	TaskID *int       `json:"task_id"`
	Trial  int        `json:"trial"`
	Traj   []tauEntry `json:"traj"`
}

type tauEntry struct {
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	ToolCalls []struct {
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

// TauModel is the agent model of tau-bench's published historical runs.
const TauModel = "gpt-4o"

// ReadTauBench reads a tau-bench results file (a JSON array of runs, each
// with its OpenAI-style "traj"). Every assistant message is an LLM call
// (model gpt-4o, no usage in the file, so no actual cost); every tool call
// becomes an MCP step named mcp__<domain>__<function>, the domain being
// taken from the file name ("gpt-4o-airline.json" -> airline).
func ReadTauBench(r io.Reader, name string, prices enforcer.Pricer) ([]*Trace, error) {
	if prices == nil {
		prices = DefaultPrices()
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var runs []tauRun
	if err := json.Unmarshal(data, &runs); err != nil {
		return nil, jsonError(name, data, err)
	}
	domain := tauDomain(name)
	model, _ := Resolve(prices, TauModel)
	out := make([]*Trace, 0, len(runs))
	for k, run := range runs {
		if run.TaskID == nil || len(run.Traj) == 0 {
			return nil, &ParseError{File: name, Where: fmt.Sprintf("run [%d]", k), Err: errors.New("missing task_id or traj: not a tau-bench run")}
		}
		t, err := tauTrace(run, k, name, domain, model)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func tauTrace(run tauRun, k int, name, domain, model string) (*Trace, error) {
	t := &Trace{Name: fmt.Sprintf("%s#task%d-trial%d", filepath.Base(name), *run.TaskID, run.Trial), Path: name, Format: FormatTauBench}
	prompt := make([]any, 0, len(run.Traj))
	for i, m := range run.Traj {
		text, err := messageText(m.Content)
		if err != nil {
			return nil, &ParseError{File: name, Where: fmt.Sprintf("run [%d] traj[%d].content", k, i), Err: err}
		}
		if m.Role == "assistant" {
			n := len(prompt)
			t.Steps = append(t.Steps, Step{Tool: LLMTool, Name: LLMTool, Params: map[string]any{"model": model, "messages": prompt[:n:n]}, Line: i})
			for j, tc := range m.ToolCalls {
				params, err := decodeArgs(tc.Function.Arguments)
				if err != nil {
					return nil, &ParseError{File: name, Where: fmt.Sprintf("run [%d] traj[%d].tool_calls[%d].function.arguments", k, i, j), Err: err}
				}
				t.Steps = append(t.Steps, Step{Tool: "MCP", Name: "mcp__" + domain + "__" + tc.Function.Name, Params: params, Line: i})
			}
		}
		prompt = append(prompt, map[string]any{"role": m.Role, "content": text})
	}
	return t, nil
}

func decodeArgs(s string) (map[string]any, error) {
	params := map[string]any{}
	if strings.TrimSpace(s) == "" {
		return params, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	if err := dec.Decode(&params); err != nil {
		return nil, fmt.Errorf("arguments are not a JSON object: %w", err)
	}
	if params == nil {
		params = map[string]any{}
	}
	return params, nil
}

// tauDomain guesses the tau-bench domain from the file name.
func tauDomain(name string) string {
	base := strings.ToLower(filepath.Base(name))
	for _, d := range []string{"airline", "retail"} {
		if strings.Contains(base, d) {
			return d
		}
	}
	return "tau"
}
