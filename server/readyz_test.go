package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// fakePlugins is a PluginAdmin with a fixed list.
type fakePlugins []PluginInfo

func (f fakePlugins) Plugins() []PluginInfo      { return f }
func (fakePlugins) Reload(context.Context) error { return nil }

func quarantinedPlugins() fakePlugins {
	next := time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)
	return fakePlugins{
		{Name: "llm-tokens", Kind: "estimator", Health: PluginUnhealthy, Quarantined: true, NextTrialAt: &next},
		{Name: "deny-rm", Kind: "policy", Health: PluginHealthy},
	}
}

func readyFixture(t *testing.T, tokens bool, ready func(context.Context) error) *fixture {
	t.Helper()
	return newFixtureOn(t, enforcer.NewMemoryLedger(enforcer.LedgerOptions{}), enforcer.Config{}, tokens, func(c *Config) {
		c.Plugins, c.Ready = quarantinedPlugins(), ready
	})
}

// A quarantined plugin leaves the server ready (its calls fall back);
// anonymous callers see only that, a valid token asking ?verbose sees
// each plugin's health and next trial.
func TestReadyzStaysReadyWhileAPluginIsQuarantined(t *testing.T) {
	f := readyFixture(t, true, nil)
	for _, tc := range []struct{ token, path string }{{"", "/readyz"}, {"", "/readyz?verbose"}, {"wrong", "/readyz?verbose"}, {agentA, "/readyz"}} {
		out := f.mustDo(tc.token, "GET", tc.path, nil, 200)
		if len(out) != 1 || out["status"] != "ready" {
			t.Errorf("%s with token %q: %v; want only {status: ready}", tc.path, tc.token, out)
		}
	}
	for _, tok := range []string{agentA, adminToken} {
		out := f.mustDo(tok, "GET", "/readyz?verbose", nil, 200)
		plugins, _ := out["plugins"].([]any)
		if out["status"] != "ready" || out["degraded"] != true || len(plugins) != 2 || out["error"] != nil {
			t.Fatalf("verbose with token %q: %v; want ready, degraded, two plugins", tok, out)
		}
		p := plugins[0].(map[string]any)
		if p["health"] != "unhealthy" || p["quarantined"] != true || p["next_trial_at"] != "2026-12-03T19:00:00Z" {
			t.Errorf("quarantined plugin: %v", p)
		}
		if q := plugins[1].(map[string]any); q["quarantined"] != false || q["next_trial_at"] != nil {
			t.Errorf("healthy plugin: %v", q)
		}
	}
	// /v1/plugins shows the same fields.
	p := f.mustDo(agentA, "GET", "/v1/plugins", nil, 200)["plugins"].([]any)[0].(map[string]any)
	if p["quarantined"] != true || p["next_trial_at"] != "2026-12-03T19:00:00Z" {
		t.Errorf("/v1/plugins: %v", p)
	}
}

// Not ready, verbose keeps the reason rule: only an unscoped admin token
// sees it; the plugins show to any valid token.
func TestVerboseReadyzWhenNotReadyHidesTheReasonFromAgents(t *testing.T) {
	reason := fmt.Errorf("ledger: %w", outage)
	f := readyFixture(t, true, func(context.Context) error { return reason })
	out := f.mustDo(agentA, "GET", "/readyz?verbose", nil, 503)
	code, msg := errorOf(out)
	if out["status"] != "not_ready" || code != "not_ready" || strings.Contains(msg, "db.internal") || len(out["plugins"].([]any)) != 2 {
		t.Errorf("agent, verbose, not ready: %v; want not_ready, a generic reason and the plugins", out)
	}
	if _, msg := errorOf(f.mustDo(adminToken, "GET", "/readyz?verbose", nil, 503)); !strings.Contains(msg, "db.internal:5432") {
		t.Errorf("unscoped admin, verbose: %q; want the reason", msg)
	}
	// Auth off: every caller is anonymous, so plugins (as /v1/plugins) but a generic reason.
	open := readyFixture(t, false, func(context.Context) error { return reason })
	out = open.mustDo("", "GET", "/readyz?verbose", nil, 503)
	if _, msg := errorOf(out); strings.Contains(msg, "db.internal") || out["degraded"] != true {
		t.Errorf("auth off, verbose: %v", out)
	}
}
