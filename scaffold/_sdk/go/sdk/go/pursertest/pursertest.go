// Package pursertest runs a purser Go plugin on the host, in process,
// through the same ABI encoding and dispatch the wasm build uses, so plugin
// logic is tested with plain `go test`. Requests are built like the host
// builds them (NewCall fills model, prompt_chars and max_tokens from the
// params the way the host does).
package pursertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/purser"
)

// Plugin is an initialised in-process instance.
type Plugin struct {
	x   *purser.Instance
	buf []byte
}

// New validates p, builds an instance and delivers config ("" means "{}").
// A config refused by the plugin is returned as a *ResultError.
func New(p *purser.Plugin, config string) (*Plugin, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	x := purser.NewInstance(p)
	if config == "" {
		config = "{}"
	}
	in := x.Alloc(len(config))
	copy(in, config)
	if res := x.Init(in); res != nil {
		r, err := abi.ParseResult(res)
		if err != nil {
			return nil, err
		}
		return nil, &ResultError{Code: r.Status, Message: string(r.Text)}
	}
	return &Plugin{x: x}, nil
}

// Manifest returns the manifest JSON the plugin serves.
func (p *Plugin) Manifest() []byte { return p.x.Manifest() }

// ResultError is an error result record returned by the plugin.
type ResultError struct {
	Code    abi.Code
	Message string
}

func (e *ResultError) Error() string { return e.Code.String() + ": " + e.Message }

// Estimate runs an estimate request and returns the estimate in nano-USD,
// or a *ResultError carrying the plugin's error code.
func (p *Plugin) Estimate(c abi.Call) (int64, error) {
	p.buf = abi.AppendEstimateRequest(p.buf[:0], &abi.EstimateRequest{Call: c})
	r, err := p.call(abi.ExportEstimate)
	if err != nil {
		return 0, err
	}
	e, err := r.Estimate()
	return e.Nanos, err
}

// Admit runs an admission request for a call with the given estimate.
func (p *Plugin) Admit(c abi.Call, estimateNanos int64) (abi.AdmitResult, error) {
	return p.AdmitRequest(abi.AdmitRequest{Call: c, EstimateNanos: estimateNanos, EstimateSource: abi.SourceTable, EstimateSourceLabel: "table"})
}

// AdmitRequest runs a fully specified admission request.
func (p *Plugin) AdmitRequest(r abi.AdmitRequest) (abi.AdmitResult, error) {
	p.buf = abi.AppendAdmitRequest(p.buf[:0], &r)
	res, err := p.call(abi.ExportAdmit)
	if err != nil {
		return abi.AdmitResult{}, err
	}
	return res.Admit()
}

func (p *Plugin) call(export string) (abi.Result, error) {
	in := p.x.Alloc(len(p.buf))
	copy(in, p.buf)
	out := p.x.Call(export, in)
	r, err := abi.ParseResult(out)
	if err != nil {
		return r, err
	}
	if r.Status != abi.CodeOK {
		return r, &ResultError{Code: r.Status, Message: string(r.Text)}
	}
	return r, nil
}

// NewCall builds the call the host would send for tool with params (a JSON
// object or ""), on an unlimited account "test" with nothing spent: params
// are canonicalised (sorted keys, compact), and model, prompt_chars and
// max_tokens are derived from them as the host does. It panics on params
// that are not a JSON object (a test bug).
func NewCall(tool, params string) abi.Call {
	c := abi.Call{Tool: tool, Account: "test", Budget: abi.Unlimited(0, 0), MaxTokens: -1}
	if strings.TrimSpace(params) == "" {
		return c
	}
	dec := json.NewDecoder(strings.NewReader(params))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		panic("pursertest.NewCall: params: " + err.Error())
	}
	canon, err := json.Marshal(m)
	if err != nil {
		panic("pursertest.NewCall: params: " + err.Error())
	}
	c.Params = canon
	if s, ok := m["model"].(string); ok {
		c.Model = s
	}
	if n, ok := m["max_tokens"].(json.Number); ok {
		if v, err := strconv.ParseInt(string(n), 10, 64); err == nil && v >= 0 {
			c.MaxTokens = v
		}
	}
	if s, ok := m["prompt"].(string); ok {
		c.PromptChars, c.HasPrompt = int64(utf8.RuneCountInString(s)), true
	} else if msgs, ok := m["messages"].([]any); ok {
		var parts []string
		for _, x := range msgs {
			if mm, ok := x.(map[string]any); ok {
				if s, ok := mm["content"].(string); ok {
					parts = append(parts, s)
				}
			}
		}
		c.PromptChars, c.HasPrompt = int64(utf8.RuneCountInString(strings.Join(parts, " "))), true
	}
	return c
}

// WithBudget returns c on an account with limit, committed and pending
// nano-USD (limit < 0 = unlimited).
func WithBudget(c abi.Call, limit, committed, pending int64) abi.Call {
	if limit < 0 {
		c.Budget = abi.Unlimited(committed, pending)
		return c
	}
	c.Budget = abi.Budget{LimitNanos: limit, CommittedNanos: committed, PendingNanos: pending,
		RemainingNanos: limit - committed - pending, Overdrawn: committed > limit}
	return c
}

// WithLLM returns c carrying the host's LLM context (ABI 1.1) and the name
// of its price source, as the host sends them for an LLM call whose model
// it priced.
func WithLLM(c abi.Call, llm abi.LLMContext, priceSource string) abi.Call {
	c.LLM, c.LLMPriceSource = &llm, priceSource
	return c
}

// Code returns the ABI code of a *ResultError, or abi.CodeOK for nil, or
// abi.CodeInternal for any other error.
func Code(err error) abi.Code {
	if err == nil {
		return abi.CodeOK
	}
	var re *ResultError
	if errors.As(err, &re) {
		return re.Code
	}
	return abi.CodeInternal
}

// CompactJSON is a helper for comparing manifests in tests.
func CompactJSON(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}
