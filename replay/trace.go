// Package replay runs real agent traces through purser's engine: it reads
// Claude Code sessions, mini-swe-agent trajectories, tau-bench
// conversations and purser's own JSONL trace format (see FORMAT.md), turns
// every step into a tool call (tool, params, actual cost), admits, holds
// and settles each one against per-trace accounts under a pool, and
// reports spend, denials, alerts and how far the estimates were from what
// the calls really cost. It can also draw the run as an SVG chart.
package replay

import (
	"fmt"

	"github.com/purser-dev/purser/enforcer"
)

// Format names a trace format.
type Format string

// Supported formats.
const (
	FormatAuto       Format = ""
	FormatClaudeCode Format = "claude-code"
	FormatMiniSWE    Format = "mini-swe-agent"
	FormatTauBench   Format = "tau-bench"
	FormatPurser     Format = "purser-jsonl"
)

// Formats lists the formats a caller may force.
func Formats() []Format {
	return []Format{FormatClaudeCode, FormatMiniSWE, FormatTauBench, FormatPurser}
}

// ParseFormat accepts a format name ("" or "auto" for detection).
func ParseFormat(s string) (Format, error) {
	if s == "" || s == "auto" {
		return FormatAuto, nil
	}
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown trace format %q (known: auto, claude-code, mini-swe-agent, tau-bench, purser-jsonl)", s)
}

// LLMTool is the engine's tool name for a model call.
const LLMTool = "LLM"

// Actual sources: where a step's actual cost came from.
const (
	ActualBilled = "billed" // the provider's billed USD in the trace
	ActualTokens = "tokens" // reported token counts x the price table
	ActualTrace  = "trace"  // an amount written in a purser JSONL trace
	ActualAgent  = "subagent"
)

// Usage is what a provider reported for one LLM call. Input excludes the
// cache classes: the prompt is Input + CacheRead + CacheWrite +
// CacheWrite1h tokens.
type Usage struct {
	Model      string
	Input      int64
	CacheRead  int64
	CacheWrite int64 // 5-minute cache writes (the default lifetime)
	// CacheWrite1h is 1-hour cache writes, priced apart (2x input on
	// Anthropic, against 1.25x for 5 minutes).
	CacheWrite1h int64
	Output       int64
}

// Step is one tool call of a trace.
type Step struct {
	// Tool is the engine's tool name (LLM, Bash, Agent, MCP, ...).
	Tool string
	// Name is the tool's name in the source (mcp__airline__book_reservation,
	// Task, ...); it equals Tool when the source used the engine's name.
	Name   string
	Params map[string]any
	// Actual is the real cost, nil when the trace does not say: the
	// ledger then charges the estimate.
	Actual       *enforcer.Nanos
	ActualSource string
	Usage        *Usage // LLM calls with reported usage
	// Line is where the step starts in its file: a line number for JSONL,
	// a message index for JSON documents.
	Line int
}

// IsLLM reports whether the step is a model call.
func (s *Step) IsLLM() bool { return s.Tool == LLMTool }

// Trace is one agent run: a session, a trajectory or a conversation.
type Trace struct {
	Name   string
	Path   string
	Format Format
	Steps  []Step
	// Skipped counts lines that did not parse (Claude Code transcripts
	// cut short by a redaction tool) and were left out.
	Skipped int
}

// ParseError locates malformed input.
type ParseError struct {
	File string
	Line int // 1-based line, or message index for JSON documents (see Where)
	// Where describes the position when it is not a line ("message 12").
	Where string
	Err   error
}

func (e *ParseError) Error() string {
	if e.Where != "" {
		return fmt.Sprintf("%s: %s: %v", e.File, e.Where, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

func nanosPtr(n enforcer.Nanos) *enforcer.Nanos { return &n }
