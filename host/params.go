package host

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/purser-dev/purser/abi"
)

// CallFromParams builds the request fields the host precomputes from a
// tool call's decoded params (as encoding/json produces them): canonical
// params JSON, params.model, the prompt size in characters and
// params.max_tokens. The caller fills Budget and Labels (see LabelsFrom).
//
// The prompt rule matches the brief's LLM rule: params.prompt if it is a
// string, else the messages' content joined by single spaces, where content
// given as a list of blocks counts the blocks' "text" fields joined by
// spaces.
func CallFromParams(tool, account string, params map[string]any) (abi.Call, error) {
	c := abi.Call{Tool: tool, Account: account, MaxTokens: -1, Budget: abi.Unlimited(0, 0)}
	if len(params) == 0 {
		return c, nil
	}
	b, err := json.Marshal(params) // maps marshal with sorted keys: canonical
	if err != nil {
		return c, fmt.Errorf("host: params of tool %q are not JSON-encodable: %w", tool, err)
	}
	c.Params = b
	c.Model, _ = params["model"].(string)
	c.PromptChars, c.HasPrompt = promptChars(params)
	c.MaxTokens = maxTokens(params["max_tokens"])
	return c, nil
}

// LabelsFrom sorts a label map into the wire order.
func LabelsFrom(m map[string]string) []abi.Label {
	if len(m) == 0 {
		return nil
	}
	out := make([]abi.Label, 0, len(m))
	for k, v := range m {
		out = append(out, abi.Label{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func promptChars(params map[string]any) (int64, bool) {
	if p, ok := params["prompt"].(string); ok {
		return int64(utf8.RuneCountInString(p)), true
	}
	msgs, ok := params["messages"].([]any)
	if !ok {
		return 0, false
	}
	var n, parts int64
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		c, ok := contentChars(mm["content"])
		if !ok {
			continue
		}
		n += c
		parts++
	}
	if parts > 1 {
		n += parts - 1
	}
	return n, true
}

func contentChars(c any) (int64, bool) {
	switch v := c.(type) {
	case string:
		return int64(utf8.RuneCountInString(v)), true
	case []any:
		var n, parts int64
		for _, blk := range v {
			bm, _ := blk.(map[string]any)
			if t, ok := bm["text"].(string); ok {
				n += int64(utf8.RuneCountInString(t))
				parts++
			}
		}
		if parts > 1 {
			n += parts - 1
		}
		return n, parts > 0
	}
	return 0, false
}

// maxTokens accepts a non-negative integer (float64 without fraction,
// json.Number, or Go integer); anything else is "absent" (-1).
func maxTokens(v any) int64 {
	switch t := v.(type) {
	case float64:
		if t >= 0 && t == math.Trunc(t) && t < 1<<53 {
			return int64(t)
		}
	case json.Number:
		if n, err := t.Int64(); err == nil && n >= 0 {
			return n
		}
	case int:
		if t >= 0 {
			return int64(t)
		}
	case int64:
		if t >= 0 {
			return t
		}
	}
	return -1
}
