package host

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// One caller's invalid params (guest code bad_params) must not switch a
// shared plugin off for everyone: they never count toward health, and
// they are counted as "invalid_params", never as "guest_error".
func TestInvalidParamsNeverMakeAPluginUnhealthy(t *testing.T) {
	o := newRecObserver()
	h, _ := newTestHost(t, Config{Observer: o})
	p := load(t, h, "guesterror", Spec{Limits: Limits{FailuresBeforeUnhealthy: 2}})
	defer p.Close()
	for i := 0; i < 6; i++ {
		_, _, err := p.Estimate(context.Background(), estReq("x"))
		var ce *CallError
		if !errors.Is(err, ErrInvalidParams) || errors.Is(err, ErrGuestError) || !errors.As(err, &ce) || ce.Code != 5 {
			t.Fatalf("call %d: %v; want ErrInvalidParams (code 5)", i, err)
		}
	}
	if hl := p.Health(); !hl.Healthy || hl.ConsecutiveFailures != 0 || hl.LastError != "" {
		t.Fatalf("health after 6 invalid-params answers: %+v", hl)
	}
	if st := p.Stats(); st.Errors["invalid_params"] != 6 || st.Errors["guest_error"] != 0 {
		t.Fatalf("stats %+v", st)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls["guesterror/estimate/invalid_params"] != 6 || o.calls["guesterror/estimate/guest_error"] != 0 {
		t.Fatalf("observed %v", o.calls)
	}
}

// "Not handled" is an answer: not an error in the metrics, the stats or
// the health (issue 11, item 26: 1,335 of 1,336 calls were guest_error).
func TestUnsupportedIsNotAnError(t *testing.T) {
	o := newRecObserver()
	h, _ := newTestHost(t, Config{Observer: o})
	p := load(t, h, "unsupported", Spec{Limits: Limits{FailuresBeforeUnhealthy: 2}})
	defer p.Close()
	for i := 0; i < 3; i++ {
		if _, _, err := p.Estimate(context.Background(), estReq("Bash")); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("call %d: %v; want ErrUnsupported", i, err)
		}
	}
	if st := p.Stats(); len(st.Errors) != 0 || st.Unsupported != 3 || st.Calls != 3 {
		t.Fatalf("stats %+v; want 3 unsupported, no errors", st)
	}
	if hl := p.Health(); !hl.Healthy || hl.ConsecutiveFailures != 0 {
		t.Fatalf("health %+v", hl)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls["unsupported/estimate/"] != 3 || len(o.calls) != 1 {
		t.Fatalf("observed %v; want 3 calls without an error", o.calls)
	}
}

func TestCallErrorParam(t *testing.T) {
	for _, tc := range []struct{ msg, param, reason string }{
		{"params.cache_read_tokens: want a non-negative integer", "cache_read_tokens", "want a non-negative integer"},
		{"params.usage.input_tokens: not an int64 integer: \"x\"", "usage.input_tokens", "not an int64 integer: \"x\""},
		{"params: not a JSON object", "", "not a JSON object"},
		{"no price for this tool", "", "no price for this tool"},
		{"params.: odd", "", "params.: odd"},
		{"params.a b: odd", "", "params.a b: odd"},
	} {
		param, reason := (&CallError{Message: tc.msg}).Param()
		if param != tc.param || reason != tc.reason {
			t.Errorf("Param(%q) = %q, %q; want %q, %q", tc.msg, param, reason, tc.param, tc.reason)
		}
	}
}

// A plugin whose tools depend on its config names them in the manifest it
// returns after purser_init; the host takes the tools from that answer and
// refuses a manifest that changed anything else.
func TestManifestToolsAreReadAfterInit(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	p := load(t, h, "retools", Spec{})
	defer p.Close()
	if m := p.Manifest(); m.Name != "retools" || len(m.Tools) != 2 || m.Tools[0] != "LLM" || m.Tools[1] != "chat" {
		t.Fatalf("manifest %+v; want the tools read after init, [LLM chat]", m)
	}
	_, err := h.Load(context.Background(), Spec{File: wasmPath("retools"), Config: []byte(`{"x":1}`)})
	var le *LoadError
	if !errors.As(err, &le) || !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), "only tools may depend on the config") {
		t.Fatalf("renamed after init: %v; want ErrBadManifest", err)
	}
}
