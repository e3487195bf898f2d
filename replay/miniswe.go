package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/purser-dev/purser/enforcer"
)

type msTraj struct {
	InstanceID string `json:"instance_id"`
	Info       struct {
		Config struct {
			Model struct {
				ModelName string `json:"model_name"`
			} `json:"model"`
		} `json:"config"`
	} `json:"info"`
	Messages []msMessage `json:"messages"`
}

type msMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Extra   *struct {
		Response *struct {
			Model string   `json:"model"`
			Usage *msUsage `json:"usage"`
		} `json:"response"`
	} `json:"extra"`
}

type msUsage struct {
	PromptTokens        int64       `json:"prompt_tokens"`
	CompletionTokens    int64       `json:"completion_tokens"`
	Cost                json.Number `json:"cost"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// bashBlock is mini-swe-agent's own action pattern.
var bashBlock = regexp.MustCompile("(?s)```bash\\s*\\n(.*?)\\n```")

// ReadMiniSWE reads a mini-swe-agent .traj.json. Every assistant message
// is one LLM call whose actual cost is the provider-billed usage.cost, or
// its token counts x the price table when the trace has no billed cost;
// an assistant message with exactly one bash block is followed by a Bash
// step (others were format errors that mini-swe-agent did not execute).
func ReadMiniSWE(r io.Reader, name string, prices enforcer.Pricer) (*Trace, error) {
	if prices == nil {
		prices = DefaultPrices()
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var tj msTraj
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, jsonError(name, data, err)
	}
	if len(tj.Messages) == 0 {
		return nil, &ParseError{File: name, Line: 1, Err: errors.New("no messages: not a mini-swe-agent trajectory")}
	}
	t := &Trace{Name: name, Path: name, Format: FormatMiniSWE}
	if tj.InstanceID != "" {
		t.Name = tj.InstanceID
	}
	prompt := make([]any, 0, len(tj.Messages))
	chars, lastPrompt := 0, 0
	for i, m := range tj.Messages {
		text, err := messageText(m.Content)
		if err != nil {
			return nil, &ParseError{File: name, Where: fmt.Sprintf("messages[%d].content", i), Err: err}
		}
		if m.Role == "assistant" {
			st, err := msLLMStep(m, i, tj.Info.Config.Model.ModelName, prompt, lastPrompt, prices)
			if err != nil {
				return nil, &ParseError{File: name, Where: fmt.Sprintf("messages[%d]", i), Err: err}
			}
			t.Steps = append(t.Steps, st)
			lastPrompt = chars
			if blocks := bashBlock.FindAllStringSubmatch(text, 2); len(blocks) == 1 {
				t.Steps = append(t.Steps, Step{Tool: "Bash", Name: "Bash", Params: map[string]any{"command": blocks[0][1]}, Line: i})
			}
		}
		if len(prompt) > 0 {
			chars++
		}
		chars += utf8.RuneCountInString(text)
		prompt = append(prompt, map[string]any{"role": m.Role, "content": text})
	}
	return t, nil
}

func msLLMStep(m msMessage, idx int, cfgModel string, prompt []any, lastPrompt int, prices enforcer.Pricer) (Step, error) {
	model := cfgModel
	var u *msUsage
	if m.Extra != nil && m.Extra.Response != nil {
		if m.Extra.Response.Model != "" {
			model = m.Extra.Response.Model
		}
		u = m.Extra.Response.Usage
	}
	resolved, _ := Resolve(prices, model)
	n := len(prompt)
	params := map[string]any{"model": resolved, "messages": prompt[:n:n]}
	if lastPrompt > 0 {
		params["cache_read_tokens"] = int64(lastPrompt / 4)
	}
	st := Step{Tool: LLMTool, Name: LLMTool, Params: params, Line: idx}
	if u == nil {
		return st, nil
	}
	st.Usage = u.usage(model)
	if u.Cost != "" {
		c, err := enforcer.ParseBilledUSD(u.Cost.String())
		if err != nil {
			return st, fmt.Errorf("usage.cost: %w", err)
		}
		st.Actual, st.ActualSource = &c, ActualBilled
		return st, nil
	}
	c, ok, err := PriceUsage(prices, *st.Usage)
	if err != nil {
		return st, err
	}
	if ok {
		st.Actual, st.ActualSource = &c, ActualTokens
	}
	return st, nil
}

func (u *msUsage) usage(model string) *Usage {
	cached := int64(0)
	if u.PromptTokensDetails != nil {
		cached = min(u.PromptTokensDetails.CachedTokens, u.PromptTokens)
	}
	out := u.CompletionTokens
	// OpenRouter counts reasoning inside completion_tokens; a provider that
	// reports more reasoning than completion tokens counted them apart, and
	// reasoning is billed as output.
	if d := u.CompletionTokensDetails; d != nil && d.ReasoningTokens > u.CompletionTokens {
		out += d.ReasoningTokens
	}
	return &Usage{Model: model, Input: u.PromptTokens - cached, CacheRead: cached, Output: out}
}

// messageText reads a chat message's content: a string, null, or a list
// of blocks whose "text" fields are joined by spaces.
func messageText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var blocks []struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", fmt.Errorf("content is neither a string nor a list of blocks: %w", err)
	}
	parts := make([]string, 0, len(blocks))
	for _, b := range blocks {
		if b.Text != "" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, " "), nil
}

// jsonError turns a decoding error of a whole document into a ParseError
// with the line it happened on.
func jsonError(name string, data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		return &ParseError{File: name, Line: 1, Err: err}
	}
	off = min(off, int64(len(data)))
	return &ParseError{File: name, Line: 1 + bytes.Count(data[:off], []byte{'\n'}), Err: err}
}
