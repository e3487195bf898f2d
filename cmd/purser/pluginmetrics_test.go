package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/host"
)

// A plugin that keeps failing is quarantined and shows so in /v1/plugins
// (pluginInfos) and /metrics (pluginCollector).
func TestQuarantinedPluginShowsInPluginsAndMetrics(t *testing.T) {
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
	if _, _, err := p.Estimate(ctx, abi.EstimateRequest{Call: abi.Call{Tool: "panic", Account: "a", MaxTokens: -1}}); err == nil {
		t.Fatal("gobad's panic did not fail")
	}
	eng := &engine{registry: reg}
	infos := eng.pluginInfos()
	if len(infos) != 1 || infos[0].Health != "unhealthy" || !strings.Contains(infos[0].LastError, "quarantined, next trial call at") {
		t.Fatalf("plugin infos = %+v", infos)
	}
	pr := prometheus.NewRegistry()
	pr.MustRegister(pluginCollector{reg: reg, now: time.Now})
	mfs, err := pr.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if got["purser_plugin_healthy"] != 0 || got["purser_plugin_quarantine_seconds"] < 60 {
		t.Fatalf("metrics = %v", got)
	}
}
