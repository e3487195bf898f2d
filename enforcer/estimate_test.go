package enforcer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func newTestEnforcer(t testing.TB, cfg Config) *Enforcer {
	t.Helper()
	e, err := New(NewMemoryLedger(LedgerOptions{Clock: cfg.Clock}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func estimateOf(t *testing.T, e *Enforcer, tool string, params map[string]any) Estimate {
	t.Helper()
	est, err := e.Estimate(context.Background(), Call{Tool: tool, Params: params})
	if err != nil {
		t.Fatalf("estimate %s: %v", tool, err)
	}
	return est
}

func TestBriefEstimates(t *testing.T) {
	e := newTestEnforcer(t, Config{})
	cases := []struct {
		tool   string
		params map[string]any
		usd    string
		source string
	}{
		{"Read", nil, "0.001", SourceTable},
		{"Agent", nil, "0.10", SourceTable},
		{"MCP", nil, "0.02", SourceTable},
		{"LLM", map[string]any{"prompt": strings.Repeat("x", 70_000)}, "0.00875", SourceLLM},
		{"LLM", map[string]any{"prompt": "hello"}, "0.0001", SourceLLM},
		{"SomethingNew", nil, "0.012", SourceUnknown},
		{"LLMish", map[string]any{"prompt": strings.Repeat("x", 70_000)}, "0.012", SourceUnknown}, // exact match, not substring
	}
	for _, c := range cases {
		est := estimateOf(t, e, c.tool, c.params)
		if est.Nanos != MustParseUSD(c.usd) || est.Source != c.source || est.FallbackErr != nil {
			t.Errorf("%s: got %s from %q (fallback %v); want $%s from %q", c.tool, est.Nanos, est.Source, est.FallbackErr, c.usd, c.source)
		}
	}
}

func TestLLMEstimateMessagesModelsAndCharacters(t *testing.T) {
	rule := DefaultLLMRule()
	rule.Tools = append(rule.Tools, "chat")
	e := newTestEnforcer(t, Config{LLM: rule, Calibration: CalibrationConfig{Disabled: true}})
	// 3 messages of 20,000 chars joined by 2 spaces = 60,002 chars = 15,000 tokens.
	msg := func(s string) map[string]any { return map[string]any{"role": "user", "content": s} }
	params := map[string]any{"messages": []any{msg(strings.Repeat("a", 20_000)), msg(strings.Repeat("b", 20_000)), msg(strings.Repeat("c", 20_000))}}
	if est := estimateOf(t, e, "chat", params); est.Nanos != 7_500_000 { // 15,000 x $0.50/M
		t.Errorf("messages estimate = %s; want $0.0075", est.Nanos)
	}
	// Characters, not bytes: 40,000 'é' (2 bytes each) = 10,000 tokens.
	params = map[string]any{"prompt": strings.Repeat("é", 40_000), "model": "gpt-4o"}
	if est := estimateOf(t, e, "LLM", params); est.Nanos != 25_000_000 { // 10,000 x $2.50/M
		t.Errorf("gpt-4o estimate = %s; want $0.025", est.Nanos)
	}
	blocks := map[string]any{"messages": []any{map[string]any{"content": []any{
		map[string]any{"type": "text", "text": strings.Repeat("z", 39_999)}, map[string]any{"type": "image"},
		map[string]any{"type": "text", "text": "z"}}}}}
	if n := PromptChars(blocks); n != 40_001 {
		t.Errorf("block content chars = %d; want 40001", n)
	}
}

type fakeEstimator struct {
	nanos Nanos
	err   error
	calls int
}

func (f *fakeEstimator) Estimate(context.Context, Call) (Quote, error) {
	f.calls++
	return Quote{Nanos: f.nanos, Source: "plugin:fake@0123456789ab", Fuel: 7}, f.err
}

func TestEstimationChainOrder(t *testing.T) {
	good := &fakeEstimator{nanos: 42}
	bad := &fakeEstimator{err: errors.New("guest trapped")}
	neg := &fakeEstimator{nanos: -5}
	e := newTestEnforcer(t, Config{Estimators: map[string]Estimator{"Read": good, "Bash": bad, "Mystery": bad, "Write": neg}})
	if est := estimateOf(t, e, "Read", nil); est.Nanos != 42 || est.Source != "plugin:fake@0123456789ab" || est.Fuel != 7 {
		t.Errorf("plugin estimate = %+v", est)
	}
	est := estimateOf(t, e, "Bash", nil)
	var ee *EstimatorError
	if est.Nanos != MustParseUSD("0.01") || est.Source != SourceTable || !errors.As(est.FallbackErr, &ee) || ee.Tool != "Bash" {
		t.Errorf("failing plugin should fall back to the table with the error recorded: %+v", est)
	}
	if est := estimateOf(t, e, "Mystery", nil); est.Source != SourceUnknown || est.Nanos != MustParseUSD("0.012") || est.FallbackErr == nil {
		t.Errorf("failing plugin for an unknown tool: %+v", est)
	}
	if est := estimateOf(t, e, "Write", nil); est.Source != SourceTable || est.FallbackErr == nil {
		t.Errorf("negative plugin estimate must fall back: %+v", est)
	}
	star := &fakeEstimator{nanos: 7}
	e2 := newTestEnforcer(t, Config{Estimators: map[string]Estimator{"*": star}})
	if est := estimateOf(t, e2, "Anything", nil); est.Nanos != 7 {
		t.Errorf("wildcard estimator not used: %+v", est)
	}
}

func TestStrictUnknownToolDenies(t *testing.T) {
	u := DefaultUnknownRule()
	u.Strict = true
	e := newTestEnforcer(t, Config{Unknown: u})
	ctx := context.Background()
	if _, err := e.Ledger().CreateAccount(ctx, AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Estimate(ctx, Call{Tool: "Nope"}); !errors.Is(err, ErrStrictUnknownTool) {
		t.Errorf("Estimate: err = %v; want ErrStrictUnknownTool", err)
	}
	d, err := e.Check(ctx, Call{Account: "a", Tool: "Nope"})
	if err != nil || d.Verdict != Deny || d.Layer != LayerEstimate || !strings.Contains(d.Reason, `"Nope"`) {
		t.Errorf("Check = %+v, %v; want a deny naming the tool", d, err)
	}
	if d, _ := e.Check(ctx, Call{Account: "a", Tool: "Read"}); d.Verdict != Allow {
		t.Errorf("known tool in strict mode: %+v", d)
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := New(NewMemoryLedger(LedgerOptions{}), Config{Unknown: UnknownRule{Base: 1, BufferBP: 5000}}); err == nil {
		t.Error("buffer below 1.0 accepted")
	}
	if _, err := New(NewMemoryLedger(LedgerOptions{}), Config{Policies: []PolicySpec{{}}}); err == nil || !strings.Contains(err.Error(), "policies[0]") {
		t.Errorf("nil policy: err = %v", err)
	}
	if _, err := DefaultCostTable().With(map[string]Nanos{"Read": -1}); err == nil {
		t.Error("negative table price accepted")
	}
	tb, err := DefaultCostTable().With(map[string]Nanos{"Read": 5, "Custom": 9})
	if err != nil || tb["Read"] != 5 || tb["Custom"] != 9 || tb["Bash"] != MustParseUSD("0.01") {
		t.Errorf("override: %v %v", tb, err)
	}
}

func TestNotHandledFallsBackSilently(t *testing.T) {
	e := newTestEnforcer(t, Config{Estimators: map[string]Estimator{"*": &fakeEstimator{err: fmt.Errorf("no plugin for Read: %w", ErrNotHandled)}}})
	if est := estimateOf(t, e, "Read", nil); est.Source != SourceTable || est.FallbackErr != nil {
		t.Errorf("ErrNotHandled must fall back without recording an error: %+v", est)
	}
}
