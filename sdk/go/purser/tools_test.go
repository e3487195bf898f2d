package purser

import (
	"encoding/json"
	"strings"
	"testing"
)

type aliased struct{ flat }

func (aliased) Tools() []string { return []string{"LLM", "chat"} }

func manifestTools(t *testing.T, b []byte) string {
	t.Helper()
	var m struct {
		Tools []string `json:"tools"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest %q: %v", b, err)
	}
	return strings.Join(m.Tools, ",")
}

// A ToolLister's tools replace the declared ones once Init succeeded (the
// host reads the manifest again then), and only then.
func TestManifestListsToolListerToolsAfterInit(t *testing.T) {
	p := NewEstimator(Manifest{Name: "aliased", Version: "1.0.0", Tools: []string{"*"}},
		func([]byte) (Estimator, error) { return &aliased{}, nil })
	x := NewInstance(p)
	if got := manifestTools(t, x.Manifest()); got != "*" {
		t.Fatalf("before init: tools %q, want *", got)
	}
	if res := x.Init(nil); res != nil {
		t.Fatalf("init: %q", res)
	}
	if got := manifestTools(t, x.Manifest()); got != "LLM,chat" {
		t.Fatalf("after init: tools %q, want LLM,chat", got)
	}
	if got := manifestTools(t, NewInstance(flatPlugin()).Manifest()); got != "*" {
		t.Fatalf("a plain estimator keeps its declared tools, got %q", got)
	}
}

func TestInvalidParamNamesTheParam(t *testing.T) {
	e := InvalidParam("usage.input_tokens", "want a non-negative integer")
	if e.Code != CodeBadParams || e.Message != "params.usage.input_tokens: want a non-negative integer" {
		t.Fatalf("%+v", e)
	}
}
