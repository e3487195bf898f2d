package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
)

// End to end: the shipped plugins (Go, Rust) loaded by the host, wired
// into the enforcer through this bridge.

func newRegistry(t *testing.T, specs ...host.Spec) *host.Registry {
	t.Helper()
	return newObservedRegistry(t, nil, specs...)
}

func newEnforcer(t *testing.T, reg *host.Registry, table enforcer.CostTable) *enforcer.Enforcer {
	t.Helper()
	cfg := enforcer.Config{Estimators: map[string]enforcer.Estimator{"*": NewEstimator(reg)}, PolicyProvider: NewPolicies(reg), Table: table}
	e, err := enforcer.New(enforcer.NewMemoryLedger(enforcer.LedgerOptions{}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Ledger().CreateAccount(context.Background(), enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestShippedPluginsThroughTheEnforcer(t *testing.T) {
	reg := newRegistry(t,
		host.Spec{File: "../plugins/estimators/llm-tokens/llm-tokens.wasm"},
		host.Spec{File: "../plugins/policies/tool-rules/tool-rules.wasm", Config: json.RawMessage(`{"mode":"default"}`), Order: 1},
		host.Spec{File: "../plugins/policies/max-cost-per-call/max-cost-per-call.wasm", Config: json.RawMessage(`{"limit_usd":"0.10"}`), Order: 2},
	)
	table, _ := enforcer.DefaultCostTable().With(map[string]enforcer.Nanos{"Big": enforcer.MustParseUSD("0.15")})
	e := newEnforcer(t, reg, table)
	ctx := context.Background()

	est, err := e.Estimate(ctx, enforcer.Call{Tool: "LLM", Params: map[string]any{"prompt": strings.Repeat("x", 70_000)}})
	if err != nil || est.Nanos != enforcer.MustParseUSD("0.00875") || !strings.HasPrefix(est.Source, "plugin:llm-tokens@") || est.FallbackErr != nil {
		t.Errorf("LLM estimate through the Go plugin: %+v %v", est, err)
	}
	if est, _ := e.Estimate(ctx, enforcer.Call{Tool: "Read"}); est.Source != enforcer.SourceTable || est.FallbackErr != nil {
		t.Errorf("a tool no plugin handles must use the table silently: %+v", est)
	}

	check := func(tool string) enforcer.Decision {
		d, err := e.Check(ctx, enforcer.Call{Account: "a", Tool: tool})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := check("Read"); d.Verdict != enforcer.Allow || len(d.Policies) != 2 {
		t.Errorf("Read: %+v", d)
	}
	if d := check("Bash"); d.Verdict != enforcer.Ask || !strings.HasPrefix(d.Policy, "plugin:tool-rules@") {
		t.Errorf("Bash in default mode should ask: %+v", d)
	}
	d := check("Big")
	if d.Verdict != enforcer.Deny || d.Reason != "Operation cost $0.15 exceeds limit $0.10" || !strings.HasPrefix(d.Policy, "plugin:max-cost-per-call@") {
		t.Errorf("Rust max-cost policy: %+v", d)
	}
}

func TestFailingEstimatorFallsBackAndFailingPolicyFailsClosed(t *testing.T) {
	reg := newRegistry(t,
		host.Spec{File: "../testplugins/garbage_range.wasm"}, // loads (bad output is left to calls), fails every call
		host.Spec{File: "../testplugins/garbage_verdict.wasm"},
	)
	e := newEnforcer(t, reg, nil)
	est, err := e.Estimate(context.Background(), enforcer.Call{Tool: "Bash"})
	var ce *host.CallError
	if err != nil || est.Source != enforcer.SourceTable || !errors.As(est.FallbackErr, &ce) || ce.Plugin != "garbage-range" {
		t.Errorf("failing estimator: %+v %v; want table fallback naming the plugin", est, err)
	}
	d, err := e.Check(context.Background(), enforcer.Call{Account: "a", Tool: "Read"})
	if err != nil || d.Verdict != enforcer.Deny || len(d.Policies) != 1 || d.Policies[0].Err == nil || !strings.Contains(d.Reason, "fail-closed") {
		t.Errorf("garbage policy must deny (fail-closed): %+v %v", d, err)
	}
}
