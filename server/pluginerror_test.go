package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/purser-dev/purser/enforcer"
)

// errFakeFuel stands in for a host failure; fakeNamer for cmd/'s namer.
var errFakeFuel = errors.New("plugin ran out of fuel")

func fakeNamer(err error) (string, string) {
	if errors.Is(err, errFakeFuel) {
		return "plugin:est@0123456789ab", "fuel_exhausted"
	}
	return "", ""
}

type failingEstimator struct{ err error }

func (e failingEstimator) Estimate(context.Context, enforcer.Call) (enforcer.Quote, error) {
	return enforcer.Quote{Source: "plugin:est@0123456789ab"}, e.err
}

type failingPolicy struct{ err error }

func (failingPolicy) Name() string { return "plugin:pol@abcdef012345" }
func (p failingPolicy) Evaluate(context.Context, enforcer.PolicyInput) (enforcer.PolicyResult, error) {
	return enforcer.PolicyResult{}, p.err
}

func pluginFixture(t *testing.T, cfg enforcer.Config, namer PluginErrorNamer) *fixture {
	t.Helper()
	cfg.Table = enforcer.CostTable{"Read": 1000}
	f := newFixtureOn(t, enforcer.NewMemoryLedger(enforcer.LedgerOptions{}), cfg, false, func(c *Config) { c.PluginErrors = namer })
	f.mustDo("", "PUT", "/v1/accounts/a", map[string]any{"limit_usd": "1"}, 201)
	return f
}

func pluginErrorIn(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	pe, ok := out["plugin_error"].(map[string]any)
	if !ok {
		t.Fatalf("no plugin_error in %v", out)
	}
	return pe
}

var checkA = map[string]any{"account": "a", "tool": "Read"}

// bodyFor is checkA as path takes it (an estimate has no account).
func bodyFor(path string) map[string]any {
	if path == "/v1/estimate" {
		return map[string]any{"tool": "Read"}
	}
	return checkA
}

func TestEstimateThatFellBackCarriesPluginError(t *testing.T) {
	fail := fmt.Errorf("plugin est@0123456789ab estimate: %w: used more than its budget", errFakeFuel)
	f := pluginFixture(t, enforcer.Config{Estimators: map[string]enforcer.Estimator{"*": failingEstimator{fail}}}, fakeNamer)
	for _, path := range []string{"/v1/estimate", "/v1/check", "/v1/reservations"} {
		out := f.mustDo("", "POST", path, bodyFor(path), 200)
		pe := pluginErrorIn(t, out)
		if pe["plugin"] != "plugin:est@0123456789ab" || pe["code"] != "fuel_exhausted" ||
			!strings.Contains(pe["message"].(string), "used more than its budget") || out["source"] != "table" {
			t.Errorf("%s: %v; want the estimator's failure and the table's estimate", path, out)
		}
	}
}

func TestFailedPolicyCarriesPluginErrorFailClosedAndFailOpen(t *testing.T) {
	fail := fmt.Errorf("plugin pol@abcdef012345 admit: %w", errors.New("plugin trapped"))
	namer := func(error) (string, string) { return "", "trap" }
	for _, tc := range []struct {
		failOpen bool
		decision string
	}{{false, "deny"}, {true, "allow"}} {
		f := pluginFixture(t, enforcer.Config{Policies: []enforcer.PolicySpec{{Policy: failingPolicy{fail}, FailOpen: tc.failOpen}}}, namer)
		for _, path := range []string{"/v1/check", "/v1/reservations"} {
			out := f.mustDo("", "POST", path, checkA, 200)
			pe := pluginErrorIn(t, out)
			if out["decision"] != tc.decision || pe["plugin"] != "plugin:pol@abcdef012345" || pe["code"] != "trap" ||
				!strings.Contains(pe["message"].(string), "plugin trapped") {
				t.Errorf("fail-open %v, %s: %v; want %s with the policy's failure", tc.failOpen, path, out, tc.decision)
			}
		}
	}
}

func TestPolicyRefusingParamsCarriesInvalidParams(t *testing.T) {
	fail := &enforcer.InvalidParamsError{Param: "path", Reason: "want a string", Source: "plugin:pol@abcdef012345"}
	f := pluginFixture(t, enforcer.Config{Policies: []enforcer.PolicySpec{{Policy: failingPolicy{fail}, FailOpen: true}}}, nil)
	out := f.mustDo("", "POST", "/v1/check", checkA, 200)
	if pe := pluginErrorIn(t, out); out["decision"] != "deny" || pe["code"] != "invalid_params" || pe["plugin"] != "plugin:pol@abcdef012345" {
		t.Errorf("%v; want a deny with code invalid_params", out)
	}
}

// The failure that decided wins over an estimate that fell back, which
// wins over a policy skipped fail-open.
func TestPluginErrorIsTheMostDecisiveFailure(t *testing.T) {
	est := map[string]enforcer.Estimator{"*": failingEstimator{errFakeFuel}}
	skipped := enforcer.PolicySpec{Policy: failingPolicy{errors.New("skipped one")}, FailOpen: true}
	closed := enforcer.PolicySpec{Policy: enforcer.PolicyFunc{PolicyName: "closed", Fn: func(context.Context, enforcer.PolicyInput) (enforcer.PolicyResult, error) {
		return enforcer.PolicyResult{}, errors.New("closed one")
	}}}
	for _, tc := range []struct {
		name     string
		policies []enforcer.PolicySpec
		plugin   string
	}{
		{"fail-open skip and fallback", []enforcer.PolicySpec{skipped}, "plugin:est@0123456789ab"},
		{"fail-closed deny and fallback", []enforcer.PolicySpec{skipped, closed}, "closed"},
	} {
		f := pluginFixture(t, enforcer.Config{Estimators: est, Policies: tc.policies}, fakeNamer)
		if pe := pluginErrorIn(t, f.mustDo("", "POST", "/v1/check", checkA, 200)); pe["plugin"] != tc.plugin {
			t.Errorf("%s: plugin_error %v; want %s's", tc.name, pe, tc.plugin)
		}
	}
	f := pluginFixture(t, enforcer.Config{Policies: []enforcer.PolicySpec{skipped}}, nil)
	if pe := pluginErrorIn(t, f.mustDo("", "POST", "/v1/check", checkA, 200)); pe["plugin"] != "plugin:pol@abcdef012345" || pe["code"] != "other" {
		t.Errorf("a skip alone: plugin_error %v; want the skipped policy's, code other", pe)
	}
}

func TestHealthyPluginsAddNoPluginError(t *testing.T) {
	f := pluginFixture(t, enforcer.Config{Estimators: map[string]enforcer.Estimator{"*": meteredEstimator{}},
		Policies: []enforcer.PolicySpec{{Policy: meteredPolicy{}}}}, fakeNamer)
	for _, path := range []string{"/v1/estimate", "/v1/check", "/v1/reservations"} {
		if out := f.mustDo("", "POST", path, bodyFor(path), 200); out["plugin_error"] != nil {
			t.Errorf("%s: %v; want no plugin_error", path, out)
		}
	}
	// A declined call (unsupported) is not a failure either.
	declined := failingEstimator{fmt.Errorf("%w: not mine", enforcer.ErrNotHandled)}
	f = pluginFixture(t, enforcer.Config{Estimators: map[string]enforcer.Estimator{"*": declined}}, fakeNamer)
	if out := f.mustDo("", "POST", "/v1/check", checkA, 200); out["plugin_error"] != nil || out["source"] != "table" {
		t.Errorf("unsupported: %v; want the table's estimate and no plugin_error", out)
	}
}

func TestPluginErrorMessageIsBoundedValidUTF8(t *testing.T) {
	long := errors.New("forged\nline" + strings.Repeat("é", 2000) + "\xff")
	f := pluginFixture(t, enforcer.Config{Estimators: map[string]enforcer.Estimator{"*": failingEstimator{long}}}, nil)
	pe := pluginErrorIn(t, f.mustDo("", "POST", "/v1/estimate", map[string]any{"tool": "Read"}, 200))
	msg := pe["message"].(string)
	if len(msg) > pluginErrorMessageBytesMax || !utf8.ValidString(msg) || strings.Contains(msg, "\n") || pe["plugin"] != "estimator" || pe["code"] != "other" {
		t.Errorf("plugin_error %v (%d bytes); want one line of at most %d bytes of valid UTF-8 from \"estimator\", code other",
			pe, len(msg), pluginErrorMessageBytesMax)
	}
}

// The tenant resolver's error comes from the ledger and may name its host.
func TestTenantFailureHidesTheLedgerDetail(t *testing.T) {
	namer := func(error) (string, string) { return "plugin:est@0123456789ab", "tenant" }
	fail := fmt.Errorf("plugin est@0123456789ab estimate: account \"a\": root of account \"a\": %w", outage)
	f := pluginFixture(t, enforcer.Config{Estimators: map[string]enforcer.Estimator{"*": failingEstimator{fail}}}, namer)
	pe := pluginErrorIn(t, f.mustDo("", "POST", "/v1/check", checkA, 200))
	if pe["code"] != "tenant" || strings.Contains(pe["message"].(string), "db.internal") {
		t.Errorf("plugin_error %v; want code tenant without the ledger's address", pe)
	}
}
