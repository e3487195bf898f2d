package host

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCallFromParams(t *testing.T) {
	var params map[string]any
	if err := json.Unmarshal([]byte(`{"model":"gpt-4o","max_tokens":256,"messages":[
		{"role":"system","content":"héllo"},
		{"role":"user","content":[{"type":"text","text":"ab"},{"type":"image"},{"type":"text","text":"c"}]}]}`), &params); err != nil {
		t.Fatal(err)
	}
	c, err := CallFromParams("LLM", "acct", params)
	if err != nil {
		t.Fatal(err)
	}
	// "héllo" + " " + ("ab" + " " + "c") = 5 + 1 + 4
	if c.Model != "gpt-4o" || c.MaxTokens != 256 || !c.HasPrompt || c.PromptChars != 10 {
		t.Fatalf("%+v", c)
	}
	if !strings.HasPrefix(string(c.Params), `{"max_tokens":256,"messages":`) {
		t.Fatalf("params not canonical: %s", c.Params)
	}
	c, _ = CallFromParams("LLM", "acct", map[string]any{"prompt": strings.Repeat("é", 70000), "max_tokens": 1.5})
	if c.PromptChars != 70000 || c.MaxTokens != -1 {
		t.Fatalf("%+v", c.PromptChars)
	}
	c, _ = CallFromParams("Read", "acct", nil)
	if c.HasPrompt || c.Params != nil || c.MaxTokens != -1 || c.Budget.LimitNanos != -1 {
		t.Fatalf("%+v", c)
	}
	if l := LabelsFrom(map[string]string{"tier": "gold", "owner": "bob"}); l[0].Key != "owner" || l[1].Value != "gold" {
		t.Fatalf("%+v", l)
	}
}
