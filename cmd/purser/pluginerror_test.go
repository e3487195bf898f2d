package main

import (
	"context"
	"fmt"
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
