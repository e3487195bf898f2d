package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/purser-dev/purser/enforcer"
)

// Detect names the format of a trace from its first bytes (up to 64 KiB
// is enough): a JSON array is tau-bench; JSONL whose first parseable line
// has "tool" is purser's format and one with "type" or "message" is
// Claude Code; a single JSON document with mini-swe-agent's fields is a
// mini-swe-agent trajectory.
func Detect(head []byte) (Format, error) {
	trimmed := skipComments(head)
	if len(trimmed) == 0 {
		return "", errors.New("empty file")
	}
	if trimmed[0] == '[' {
		return FormatTauBench, nil
	}
	if trimmed[0] != '{' {
		return "", errors.New("not JSON or JSONL (first character is not { or [)")
	}
	if f, ok := detectJSONL(trimmed); ok {
		return f, nil
	}
	for _, marker := range []string{`"trajectory_format"`, `"mini_version"`, `"model_stats"`} {
		if bytes.Contains(trimmed, []byte(marker)) {
			return FormatMiniSWE, nil
		}
	}
	if bytes.Contains(trimmed, []byte(`"messages"`)) && bytes.Contains(trimmed, []byte(`"info"`)) {
		return FormatMiniSWE, nil
	}
	return "", errors.New("unrecognised trace format (use --format)")
}

// skipComments drops leading blank space and "#" comment lines (allowed
// in purser JSONL).
func skipComments(b []byte) []byte {
	for {
		b = bytes.TrimLeft(b, " \t\r\n\ufeff")
		if len(b) == 0 || b[0] != '#' {
			return b
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		b = b[i+1:]
	}
}

// detectJSONL looks at the first lines that parse as JSON objects; the
// first line of a Claude Code transcript may itself be cut short.
func detectJSONL(b []byte) (Format, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), len(b)+1)
	for i := 0; i < 50 && sc.Scan(); i++ {
		var keys map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &keys) != nil {
			continue
		}
		if _, ok := keys["tool"]; ok {
			return FormatPurser, true
		}
		_, hasType := keys["type"]
		_, hasMsg := keys["message"]
		_, hasSession := keys["sessionId"]
		if hasType || hasMsg || hasSession {
			return FormatClaudeCode, true
		}
		return "", false
	}
	return "", false
}

// ReadFile reads every trace in one file (tau-bench files hold many). A
// Claude Code session's Task calls are charged their sub-agents' spend
// when the transcripts sit in <session>/subagents/agent-<id>.jsonl.
func ReadFile(path string, format Format, prices enforcer.Pricer) ([]*Trace, error) {
	if prices == nil {
		prices = DefaultPrices()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if format == FormatAuto {
		if format, err = Detect(data[:min(len(data), 64<<10)]); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	r := bytes.NewReader(data)
	switch format {
	case FormatClaudeCode:
		t, err := readClaudeFile(r, path, prices, 0)
		return []*Trace{t}, err
	case FormatMiniSWE:
		t, err := ReadMiniSWE(r, path, prices)
		if t != nil {
			t.Path = path
		}
		return []*Trace{t}, err
	case FormatTauBench:
		return ReadTauBench(r, path, prices)
	case FormatPurser:
		t, err := ReadPurserJSONL(r, path, prices)
		return []*Trace{t}, err
	}
	return nil, fmt.Errorf("%s: unknown format %q", path, format)
}

// maxAgentDepth bounds sub-agent nesting (a cycle of files would loop).
const maxAgentDepth = 4

func readClaudeFile(r io.Reader, path string, prices enforcer.Pricer, depth int) (*Trace, error) {
	t, agents, err := readClaudeCode(r, path, prices)
	if err != nil {
		return nil, err
	}
	t.Name = strings.TrimSuffix(filepath.Base(path), ".jsonl")
	if depth >= maxAgentDepth {
		return t, nil
	}
	dir := filepath.Join(strings.TrimSuffix(path, ".jsonl"), "subagents")
	for step, id := range agents {
		sub := filepath.Join(dir, "agent-"+id+".jsonl")
		f, err := os.Open(sub)
		if err != nil {
			continue // the sub-agent's transcript was not kept: charge the estimate
		}
		st, err := readClaudeFile(f, sub, prices, depth+1)
		f.Close()
		if err != nil {
			return nil, err
		}
		cost, err := sumActual(st)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sub, err)
		}
		t.Steps[step].Actual, t.Steps[step].ActualSource = &cost, ActualAgent
	}
	return t, nil
}

// ReadPaths reads every trace under paths; a folder is walked for *.json
// and *.jsonl files in name order. Sub-agent transcripts of a session that
// is read too (<session>/subagents/*.jsonl next to <session>.jsonl) are
// not replayed on their own: their spend is the Task call's actual cost.
// Files of the replay data that are not traces (price tables, summaries)
// are skipped when a folder is walked; a named file must be a trace.
func ReadPaths(paths []string, format Format, prices enforcer.Pricer) ([]*Trace, error) {
	if prices == nil {
		prices = DefaultPrices() // once, not per file
	}
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		found, err := walkTraces(p)
		if err != nil {
			return nil, err
		}
		files = append(files, found...)
	}
	var out []*Trace
	for _, f := range files {
		ts, err := ReadFile(f, format, prices)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

func walkTraces(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(p, ".jsonl") || strings.HasSuffix(p, ".json")) {
			return nil
		}
		if isLinkedSubagent(p) || notATrace(p) {
			return nil
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trace folder %s: %w", root, err)
	}
	sort.Strings(files)
	return files, nil
}

// isLinkedSubagent reports whether p is <session>/subagents/x.jsonl with
// <session>.jsonl present.
func isLinkedSubagent(p string) bool {
	dir := filepath.Dir(p)
	if filepath.Base(dir) != "subagents" {
		return false
	}
	_, err := os.Stat(filepath.Dir(dir) + ".jsonl")
	return err == nil
}

// notATrace skips the JSON files that sit beside traces in a data folder
// (a LiteLLM price table, mini-swe-agent's results summary): their first
// bytes match no trace format.
func notATrace(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false // let ReadFile report it
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, head)
	_, err = Detect(head[:n])
	return err != nil
}
