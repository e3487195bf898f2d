package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/purser-dev/purser/enforcer"
)

// Claude Code writes one JSONL record per content block; the records of
// one API response share message.id. The types below decode only what
// replay needs.
type ccRecord struct {
	Type          string          `json:"type"`
	Message       *ccMessage      `json:"message"`
	ToolUseResult json.RawMessage `json:"toolUseResult"`
}

type ccMessage struct {
	ID         string          `json:"id"`
	Model      string          `json:"model"`
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	StopReason *string         `json:"stop_reason"`
	Usage      *ccUsage        `json:"usage"`
}

type ccUsage struct {
	Input      int64 `json:"input_tokens"`
	CacheWrite int64 `json:"cache_creation_input_tokens"` // all lifetimes
	CacheRead  int64 `json:"cache_read_input_tokens"`
	Output     int64 `json:"output_tokens"`
	// CacheCreation splits CacheWrite by cache lifetime; absent on older
	// transcripts, where every write is a 5-minute one.
	CacheCreation *struct {
		OneHour int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
}

// cacheWrites splits u's cache writes into 5-minute and 1-hour ones
// (Anthropic: cache_creation_input_tokens is their sum). A 1-hour count
// above the sum (a malformed line) is taken as the sum.
func (u *ccUsage) cacheWrites() (m5, h1 int64) {
	if u.CacheCreation == nil {
		return u.CacheWrite, 0
	}
	h1 = min(max(u.CacheCreation.OneHour, 0), max(u.CacheWrite, 0))
	return u.CacheWrite - h1, h1
}

type ccBlock struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	Text      string          `json:"text"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
}

// claudeTools maps Claude Code's tool names to the engine's where they
// differ; mcp__<server>__<tool> becomes MCP.
var claudeTools = map[string]string{"Task": "Agent"}

func engineToolName(name string) string {
	if t, ok := claudeTools[name]; ok {
		return t
	}
	if strings.HasPrefix(name, "mcp__") {
		return "MCP"
	}
	return name
}

// ccReader holds the state of one transcript being read.
type ccReader struct {
	prices enforcer.Pricer
	trace  *Trace
	// calls indexes open LLM calls by message.id.
	calls map[string]*ccCall
	// transcript is what the model has seen so far, as chat messages
	// ([]any of map[string]any, the shape the LLM rule reads); chars is
	// its prompt size as the LLM rule counts it.
	transcript []any
	chars      int
	lastPrompt int // prompt chars of the previous LLM call
	// agents maps a Task's tool_use id to its sub-agent id.
	toolSteps map[string]int
	agents    map[int]string
}

type ccCall struct {
	step  int
	usage Usage
	final bool // output tokens came from the line with a stop_reason
}

// ReadClaudeCode reads a Claude Code session transcript (JSONL). Each API
// response (lines grouped by message.id) is one LLM step priced from its
// reported usage; each tool_use block is a tool step. Lines that do not
// parse are skipped and counted in Trace.Skipped.
func ReadClaudeCode(r io.Reader, name string, prices enforcer.Pricer) (*Trace, error) {
	t, _, err := readClaudeCode(r, name, prices)
	return t, err
}

func readClaudeCode(r io.Reader, name string, prices enforcer.Pricer) (*Trace, map[int]string, error) {
	if prices == nil {
		prices = DefaultPrices()
	}
	cr := &ccReader{prices: prices, trace: &Trace{Name: name, Path: name, Format: FormatClaudeCode},
		calls: map[string]*ccCall{}, toolSteps: map[string]int{}, agents: map[int]string{}}
	br := bufio.NewReaderSize(r, 1<<16)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			cr.line(line, lineNo)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, &ParseError{File: name, Line: lineNo, Err: err}
		}
	}
	if err := cr.finish(); err != nil {
		return nil, nil, &ParseError{File: name, Where: "pricing", Err: err}
	}
	return cr.trace, cr.agents, nil
}

func (cr *ccReader) line(line []byte, lineNo int) {
	var rec ccRecord
	if err := json.Unmarshal(line, &rec); err != nil || rec.Message == nil {
		if err != nil {
			cr.trace.Skipped++
		}
		return
	}
	switch rec.Type {
	case "assistant":
		cr.assistant(rec.Message, lineNo)
	case "user":
		cr.user(rec.Message, rec.ToolUseResult)
	}
}

func (cr *ccReader) assistant(m *ccMessage, lineNo int) {
	if m.Model == "<synthetic>" || m.ID == "" {
		return // Claude Code's own placeholder messages, never billed
	}
	call, ok := cr.calls[m.ID]
	if !ok {
		call = cr.newCall(m, lineNo)
	}
	if u := m.Usage; u != nil {
		call.usage.Input, call.usage.CacheRead = u.Input, u.CacheRead
		call.usage.CacheWrite, call.usage.CacheWrite1h = u.cacheWrites()
		// Output is final only on the stop_reason line; other lines were
		// logged mid-stream and are a lower bound.
		switch {
		case m.StopReason != nil:
			call.usage.Output, call.final = u.Output, true
		case !call.final:
			call.usage.Output = max(call.usage.Output, u.Output)
		}
	}
	blocks := contentBlocks(m.Content)
	var text []string
	for _, b := range blocks {
		switch b.Type {
		case "tool_use":
			cr.toolUse(b, lineNo)
			text = append(text, string(b.Input))
		case "text":
			text = append(text, b.Text)
		}
	}
	cr.appendMessage("assistant", strings.Join(text, " "))
}

func (cr *ccReader) newCall(m *ccMessage, lineNo int) *ccCall {
	model, _ := Resolve(cr.prices, m.Model)
	n := len(cr.transcript)
	params := map[string]any{"model": model, "messages": cr.transcript[:n:n]}
	// The previous call's prompt is a prefix of this one, so a runtime
	// knows before the call how much of it the provider may have cached.
	if cr.lastPrompt > 0 {
		params["cache_read_tokens"] = int64(cr.lastPrompt / 4)
	}
	cr.lastPrompt = cr.chars
	cr.trace.Steps = append(cr.trace.Steps, Step{Tool: LLMTool, Name: LLMTool, Params: params, Line: lineNo})
	call := &ccCall{step: len(cr.trace.Steps) - 1, usage: Usage{Model: m.Model}}
	cr.calls[m.ID] = call
	return call
}

func (cr *ccReader) toolUse(b ccBlock, lineNo int) {
	params := map[string]any{}
	if len(b.Input) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b.Input))
		dec.UseNumber()
		if err := dec.Decode(&params); err != nil || params == nil {
			params = map[string]any{}
		}
	}
	cr.trace.Steps = append(cr.trace.Steps, Step{Tool: engineToolName(b.Name), Name: b.Name, Params: params, Line: lineNo})
	if b.ID != "" {
		cr.toolSteps[b.ID] = len(cr.trace.Steps) - 1
	}
}

func (cr *ccReader) user(m *ccMessage, result json.RawMessage) {
	if len(m.Content) > 0 && m.Content[0] == '"' {
		var s string
		_ = json.Unmarshal(m.Content, &s)
		cr.appendMessage("user", s)
		return
	}
	var text []string
	for _, b := range contentBlocks(m.Content) {
		switch b.Type {
		case "text":
			text = append(text, b.Text)
		case "tool_result":
			text = append(text, resultText(b.Content))
			cr.linkAgent(b.ToolUseID, result)
		}
	}
	cr.appendMessage("user", strings.Join(text, " "))
}

// linkAgent remembers the sub-agent a Task started (toolUseResult.agentId).
func (cr *ccReader) linkAgent(toolUseID string, result json.RawMessage) {
	i, ok := cr.toolSteps[toolUseID]
	if !ok || cr.trace.Steps[i].Name != "Task" || len(result) == 0 || result[0] != '{' {
		return
	}
	var r struct {
		AgentID string `json:"agentId"`
	}
	if json.Unmarshal(result, &r) == nil && r.AgentID != "" {
		cr.agents[i] = r.AgentID
	}
}

func (cr *ccReader) appendMessage(role, content string) {
	if content == "" {
		return
	}
	if len(cr.transcript) > 0 {
		cr.chars++ // the joining space
	}
	cr.chars += utf8.RuneCountInString(content)
	cr.transcript = append(cr.transcript, map[string]any{"role": role, "content": content})
}

// finish prices every LLM call from its usage.
func (cr *ccReader) finish() error {
	for _, call := range cr.calls {
		st := &cr.trace.Steps[call.step]
		u := call.usage
		st.Usage = &u
		cost, ok, err := PriceUsage(cr.prices, u)
		if err != nil {
			return err
		}
		if ok {
			st.Actual, st.ActualSource = nanosPtr(cost), ActualTokens
		}
	}
	return nil
}

func contentBlocks(raw json.RawMessage) []ccBlock {
	if len(raw) == 0 || raw[0] != '[' {
		return nil
	}
	var blocks []ccBlock
	if json.Unmarshal(raw, &blocks) != nil {
		return nil
	}
	return blocks
}

// resultText flattens a tool_result's content (a string or text blocks).
func resultText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	var parts []string
	for _, b := range contentBlocks(raw) {
		if b.Text != "" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, " ")
}

// sumActual adds up a trace's known costs (a sub-agent's spend).
func sumActual(t *Trace) (enforcer.Nanos, error) {
	var total enforcer.Nanos
	for i := range t.Steps {
		if a := t.Steps[i].Actual; a != nil {
			var err error
			if total, err = total.Add(*a); err != nil {
				return 0, err
			}
		}
	}
	return total, nil
}
