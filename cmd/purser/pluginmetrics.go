package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/purser-dev/purser/host"
)

var (
	descPluginHealthy = prometheus.NewDesc("purser_plugin_healthy",
		"1 when the plugin serves calls, 0 while it is quarantined (unhealthy) or not loaded.", []string{"plugin"}, nil)
	descPluginNextTrial = prometheus.NewDesc("purser_plugin_quarantine_seconds",
		"Seconds until a quarantined plugin's next trial call (0 when healthy or due).", []string{"plugin"}, nil)
	descPluginLogDropped = prometheus.NewDesc("purser_plugin_log_lines_dropped_total",
		"Guest log lines dropped by the plugin's line rate (plugins.limits.log_lines_per_second).", []string{"plugin"}, nil)
)

// pluginCollector exports plugin health and log drops, read from the
// registry at scrape time (plugins come and go with reloads).
type pluginCollector struct {
	reg *host.Registry
	now func() time.Time
}

func (c pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPluginHealthy
	ch <- descPluginNextTrial
	ch <- descPluginLogDropped
}

func (c pluginCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, st := range c.reg.Status() {
		healthy, wait := 0.0, 0.0
		if st.Loaded && st.Health.Healthy {
			healthy = 1
		}
		if !st.Health.Healthy {
			wait = max(st.Health.NextTrial.Sub(now).Seconds(), 0)
		}
		name := st.Name
		if name == "" {
			name = st.File // never loaded
		}
		ch <- prometheus.MustNewConstMetric(descPluginHealthy, prometheus.GaugeValue, healthy, name)
		ch <- prometheus.MustNewConstMetric(descPluginNextTrial, prometheus.GaugeValue, wait, name)
		ch <- prometheus.MustNewConstMetric(descPluginLogDropped, prometheus.CounterValue, float64(st.Stats.LogLinesDropped), name)
	}
}
