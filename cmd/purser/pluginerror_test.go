package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/bridge"
	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
	"github.com/purser-dev/purser/server"
)

// pluginErrorOf names a real host failure by the plugin's source label
// and host.ErrorKind, through the enforcer's wrapping, and a quote the
// bridge refused by its own kind.
func TestPluginErrorNamesHostAndBridgeFailures(t *testing.T) {
	ctx := context.Background()
	reg := gobadRegistry(t)
	p := reg.Estimator("panic")
	_, info, callErr := p.Estimate(ctx, abi.EstimateRequest{Call: abi.Call{Tool: "panic", Account: "a", MaxTokens: -1}})
	if callErr == nil || info.Source == "" {
		t.Fatalf("gobad's panic: %v, source %q; want a failure from a labelled plugin", callErr, info.Source)
	}
	_, _, quarantined := p.Estimate(ctx, abi.EstimateRequest{Call: abi.Call{Tool: "panic", Account: "a", MaxTokens: -1}})
	quote := &bridge.QuoteError{Source: "plugin:q@0123456789ab", Tool: "Read", Err: bridge.ErrZeroWildcardEstimate}
	for _, tc := range []struct {
		err          error
		plugin, code string
	}{
		{&enforcer.EstimatorError{Tool: "panic", Err: callErr}, info.Source, "trap"},
		{fmt.Errorf("policy: %w", quarantined), info.Source, "unhealthy"},
		{&enforcer.EstimatorError{Tool: "Read", Err: quote}, "plugin:q@0123456789ab", "zero_estimate"},
		{fmt.Errorf("not a plugin"), "", "other"},
	} {
		if plugin, code := pluginErrorOf(tc.err); plugin != tc.plugin || code != tc.code {
			t.Errorf("pluginErrorOf(%v) = %q, %q; want %q, %q", tc.err, plugin, code, tc.plugin, tc.code)
		}
	}
}

// gobadRegistry loads gobad, which passes the load's smoke call and traps
// (a Go panic) on tool "panic", quarantined after one failure for an hour.
func gobadRegistry(t *testing.T) *host.Registry {
	t.Helper()
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(ctx) })
	reg, err := h.NewRegistry(ctx, host.RegistryConfig{Plugins: []host.Spec{{File: "../../testplugins/go/gobad/gobad.wasm",
		Limits: host.Limits{FailuresBeforeUnhealthy: 1, UnhealthyRetryAfter: time.Hour}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return reg
}

// /v1/plugins and /readyz?verbose show a quarantine and its next trial.
func TestQuarantinedPluginInfoHasNextTrial(t *testing.T) {
	reg := gobadRegistry(t)
	eng := &engine{registry: reg}
	if infos := eng.pluginInfos(); len(infos) != 1 || infos[0].Quarantined || infos[0].NextTrialAt != nil {
		t.Fatalf("before a failure: %+v", infos)
	}
	before := time.Now()
	_, _, _ = reg.Estimator("panic").Estimate(context.Background(), abi.EstimateRequest{Call: abi.Call{Tool: "panic", Account: "a", MaxTokens: -1}})
	infos := eng.pluginInfos()
	if len(infos) != 1 || infos[0].Health != server.PluginUnhealthy || !infos[0].Quarantined || infos[0].NextTrialAt == nil ||
		infos[0].NextTrialAt.Before(before.Add(59*time.Minute)) {
		t.Fatalf("quarantined: %+v; want unhealthy, quarantined, next trial in an hour", infos)
	}
}

// Served: a plugin that traps shows as plugin_error in the HTTP answer;
// once quarantined it leaves /readyz at 200 and shows in ?verbose.
func TestServePluginErrorAndVerboseReadyz(t *testing.T) {
	dir := t.TempDir()
	gobad, err := filepath.Abs("../../testplugins/go/gobad/gobad.wasm")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "purser.yaml")
	yaml := fmt.Sprintf(`
server: {addr: "127.0.0.1:0"}
data_dir: %s
store: {kind: memory}
decision_log: {enabled: false}
plugins:
  dir: %s
  watch: false
  entries:
    - path: %s
      limits: {failures_before_unhealthy: 2}
`, dir, t.TempDir(), gobad)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- serve(ctx, cfg, ready) }()
	defer func() { cancel(); <-done }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	get := func(method, path, body string, want int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %v; want %d", method, path, resp.StatusCode, out, want)
		}
		return out
	}
	// gobad prices a call with params at $0.001 per params byte.
	if out := get("POST", "/v1/estimate", `{"tool":"Read","params":{"x":1}}`, 200); out["plugin_error"] != nil {
		t.Errorf("a healthy call: %v; want no plugin_error", out)
	}
	for _, tc := range []struct{ tool, code, message string }{
		{"open", "guest_error", "open: "}, // the guest's own message, to this caller
		{"panic", "trap", "plugin trapped"},
		{"panic", "unhealthy", "quarantined"},
	} {
		out := get("POST", "/v1/estimate", `{"tool":"`+tc.tool+`"}`, 200)
		pe, _ := out["plugin_error"].(map[string]any)
		if pe == nil || pe["code"] != tc.code || !strings.HasPrefix(fmt.Sprint(pe["plugin"]), "plugin:gobad@") ||
			!strings.Contains(fmt.Sprint(pe["message"]), tc.message) || out["source"] == nil {
			t.Errorf("estimate of %s: %v; want plugin_error %s from plugin:gobad@... saying %q", tc.tool, out, tc.code, tc.message)
		}
	}
	if out := get("GET", "/readyz", "", 200); len(out) != 1 {
		t.Errorf("anonymous readyz: %v; want the status only", out)
	}
	out := get("GET", "/readyz?verbose", "", 200) // auth is off: every caller may
	plugins, _ := out["plugins"].([]any)
	if out["degraded"] != true || len(plugins) != 1 || plugins[0].(map[string]any)["quarantined"] != true ||
		plugins[0].(map[string]any)["next_trial_at"] == nil {
		t.Errorf("verbose readyz: %v; want degraded with gobad quarantined", out)
	}
}
