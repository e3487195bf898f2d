package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
)

const llmTokensWasm = "../plugins/estimators/llm-tokens/llm-tokens.wasm"

// callLog records the host's per-call observations as plugin/error-kind.
type callLog struct {
	host.NopObserver
	mu    sync.Mutex
	calls map[string]int
}

func (c *callLog) ObserveCall(plugin, _ string, _ time.Duration, _ int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[plugin+"/"+host.ErrorKind(err)]++
}

func (c *callLog) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

// newObservedRegistry loads specs on a host reporting to o (nil: none).
func newObservedRegistry(t *testing.T, o host.Observer, specs ...host.Spec) *host.Registry {
	t.Helper()
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{Observer: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	reg, err := h.NewRegistry(ctx, host.RegistryConfig{Plugins: specs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// Issue 11, item 10: one agent's invalid params used to mark the shared
// llm-tokens unhealthy after five calls, and every tenant's LLM estimate
// fell back to the input-only rule. Now the caller gets an error naming
// the param and the plugin, and the plugin stays healthy and in service.
func TestInvalidParamsDoNotSwitchOffASharedEstimator(t *testing.T) {
	reg := newObservedRegistry(t, &callLog{calls: map[string]int{}}, host.Spec{File: llmTokensWasm})
	e := newEnforcer(t, reg, nil)
	ctx := context.Background()
	bad := enforcer.Call{Account: "a", Tool: "LLM", Params: map[string]any{"prompt": "hi", "cache_read_tokens": -1}}
	// A max_tokens priced past int64 nano-USD is the caller's mistake too.
	huge := enforcer.Call{Account: "a", Tool: "LLM", Params: map[string]any{"prompt": "hi", "max_tokens": int64(math.MaxInt64)}}
	for i := 0; i < 6; i++ {
		call, param := bad, "cache_read_tokens"
		if i%2 == 1 {
			call, param = huge, "max_tokens"
		}
		est, err := e.Estimate(ctx, call)
		var ipe *enforcer.InvalidParamsError
		if !errors.As(err, &ipe) || !errors.Is(err, enforcer.ErrInvalidParams) || ipe.Param != param ||
			!strings.HasPrefix(ipe.Source, "plugin:llm-tokens@") || ipe.Reason == "" {
			t.Fatalf("invalid request %d: %+v, %v; want an *InvalidParamsError naming %s and llm-tokens", i, est, err, param)
		}
	}
	if _, err := e.Check(ctx, bad); !errors.Is(err, enforcer.ErrInvalidParams) {
		t.Fatalf("Check: %v; want ErrInvalidParams", err)
	}
	good := enforcer.Call{Account: "a", Tool: "LLM", Params: map[string]any{"prompt": strings.Repeat("x", 70_000), "cache_read_tokens": 0}}
	est, err := e.Estimate(ctx, good)
	if err != nil || est.Nanos != enforcer.MustParseUSD("0.00875") || !strings.HasPrefix(est.Source, "plugin:llm-tokens@") || est.FallbackErr != nil {
		t.Fatalf("valid request after the invalid ones: %+v, %v; want $0.00875 priced by llm-tokens", est, err)
	}
	if hl := reg.Plugin("llm-tokens").Health(); !hl.Healthy || hl.ConsecutiveFailures != 0 {
		t.Fatalf("llm-tokens health %+v", hl)
	}
}

// Issue 11, item 26: llm-tokens declared "*" and answered every non-LLM
// call "unsupported", counted as a guest_error (1,335 of 1,336 calls) while
// health said healthy. Its manifest now lists the tools it prices (LLM and
// the configured aliases), so it is only called for them.
func TestEstimatorOnlyCalledForTheToolsItPrices(t *testing.T) {
	obs := &callLog{calls: map[string]int{}}
	reg := newObservedRegistry(t, obs, host.Spec{File: llmTokensWasm, Config: json.RawMessage(`{"aliases":["chat"]}`)})
	if tools := strings.Join(reg.Plugin("llm-tokens").Manifest().Tools, ","); tools != "LLM,chat" {
		t.Fatalf("manifest tools %q; want LLM,chat", tools)
	}
	e := newEnforcer(t, reg, nil)
	ctx := context.Background()
	for _, tool := range []string{"Read", "Bash", "mcp__github__create_issue", "LLM", "chat", "Agent"} {
		est, err := e.Estimate(ctx, enforcer.Call{Tool: tool, Params: map[string]any{"prompt": "hello"}})
		if err != nil || est.FallbackErr != nil {
			t.Fatalf("%s: %+v, %v", tool, est, err)
		}
		if llm := tool == "LLM" || tool == "chat"; llm != strings.HasPrefix(est.Source, "plugin:llm-tokens@") {
			t.Errorf("%s priced by %q", tool, est.Source)
		}
	}
	if got := obs.snapshot(); len(got) != 1 || got["llm-tokens/"] != 2 {
		t.Fatalf("observed calls %v; want exactly 2 llm-tokens calls, none an error", got)
	}
	if st := reg.Plugin("llm-tokens").Stats(); len(st.Errors) != 0 || st.Unsupported != 0 || st.Calls != 2 {
		t.Fatalf("stats %+v", st)
	}
}
