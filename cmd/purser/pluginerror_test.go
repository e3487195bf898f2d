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
)

// pluginErrorOf names a real host failure by the plugin's source label
// and host.ErrorKind, through the enforcer's wrapping, and a quote the
// bridge refused by its own kind.
func TestPluginErrorNamesHostAndBridgeFailures(t *testing.T) {
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	// gobad passes the load's smoke call and traps (a Go panic) on tool "panic".
	reg, err := h.NewRegistry(ctx, host.RegistryConfig{Plugins: []host.Spec{{File: "../../testplugins/go/gobad/gobad.wasm",
		Limits: host.Limits{FailuresBeforeUnhealthy: 1, UnhealthyRetryAfter: time.Hour}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
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
