package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/purser-dev/purser/enforcer"
)

// Metrics is purser's Prometheus instrumentation, on its own registry (no
// global state). A nil *Metrics records nothing.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.HistogramVec
	decisions   *prometheus.CounterVec
	sources     *prometheus.CounterVec
	settles     *prometheus.CounterVec
	extensions  *prometheus.CounterVec
	pluginCalls *prometheus.HistogramVec
	pluginErrs  *prometheus.CounterVec
	pluginFuel  *prometheus.HistogramVec
	instances   *prometheus.GaugeVec
	reloads     *prometheus.CounterVec
	alerts      *prometheus.CounterVec
}

// MetricsOptions bound what per-account series exist.
type MetricsOptions struct {
	// Accounts get per-account gauges; every other account is only in the
	// totals (cardinality stays bounded by config).
	Accounts []string
	// DecisionLogDropped, when set, is exported as a counter.
	DecisionLogDropped func() uint64
}

// NewMetrics registers purser's collectors; ledger feeds the gauges read
// at scrape time.
func NewMetrics(ledger enforcer.Ledger, opts MetricsOptions) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "purser_http_request_duration_seconds",
		Help: "HTTP request latency by route and status class.", Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .05, .25, 1}},
		[]string{"route", "code"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "purser_decisions_total",
		Help: "Admission decisions by outcome and deciding layer."}, []string{"outcome", "layer"})
	m.sources = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "purser_estimates_total",
		Help: "Estimates by source (plugin name without digest, table, llm, unknown, cache)."}, []string{"source"})
	m.settles = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "purser_settlements_total",
		Help: "Reservations settled, by final state and cost source."}, []string{"state", "cost_source"})
	m.extensions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "purser_extensions_total",
		Help: "Hold extensions by outcome: allow, deny (budget), or the API error code (already_settled, conflict, ...)."}, []string{"outcome"})
	m.pluginCalls = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "purser_plugin_call_duration_seconds",
		Help: "Wasm plugin call latency.", Buckets: []float64{.000002, .000005, .00001, .00002, .00005, .0001, .0005, .001, .01, .1}},
		[]string{"plugin", "kind"})
	m.pluginFuel = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "purser_plugin_call_fuel",
		Help:    "Fuel (about one unit per Wasm instruction; deterministic per input) used by each plugin call.",
		Buckets: prometheus.ExponentialBuckets(100, 10, 8)}, // 100 .. 1e9
		[]string{"plugin", "kind"})
	m.pluginErrs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "purser_plugin_errors_total",
		Help: "Wasm plugin call failures by error kind."}, []string{"plugin", "error"})
	m.instances = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "purser_plugin_instances",
		Help: "Live Wasm instances per plugin."}, []string{"plugin"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "purser_plugin_reloads_total",
		Help: "Plugin reload attempts by result."}, []string{"plugin", "result"})
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "purser_threshold_alerts_total",
		Help: "Budget threshold and overdraft alerts by level."}, []string{"level"})
	m.reg.MustRegister(m.requests, m.decisions, m.sources, m.settles, m.extensions, m.pluginCalls, m.pluginFuel, m.pluginErrs, m.instances, m.reloads, m.alerts)
	if opts.DecisionLogDropped != nil {
		m.WatchDecisionLog(opts.DecisionLogDropped)
	}
	if ledger != nil {
		m.WatchLedger(ledger, opts.Accounts)
	}
	return m
}

// WatchDecisionLog exports the decision log's drop counter. Call it once.
func (m *Metrics) WatchDecisionLog(dropped func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "purser_decision_log_dropped_total",
		Help: "Decision events dropped because the disk could not keep up."}, func() float64 { return float64(dropped()) }))
}

// WatchWebhook exports the alert webhook's counters (read at scrape time).
// Call it once.
func (m *Metrics) WatchWebhook(stats func() WebhookStats) {
	m.reg.MustRegister(webhookCollector(stats))
}

var (
	descWebhookDeliveries = prometheus.NewDesc("purser_webhook_deliveries_total",
		"Alerts the webhook finished with, by result: delivered (2xx) or failed (attempts or time used up, or refused with a 4xx).", []string{"result"}, nil)
	descWebhookRetries = prometheus.NewDesc("purser_webhook_retries_total", "Webhook POSTs after an alert's first attempt.", nil, nil)
	descWebhookDropped = prometheus.NewDesc("purser_webhook_dropped_total",
		"Alerts dropped without being sent, by reason: queue_full or shutdown.", []string{"reason"}, nil)
	descWebhookQueued = prometheus.NewDesc("purser_webhook_queue_length", "Alerts waiting for the webhook sender.", nil, nil)
)

type webhookCollector func() WebhookStats

func (c webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWebhookDeliveries
	ch <- descWebhookRetries
	ch <- descWebhookDropped
	ch <- descWebhookQueued
}

func (c webhookCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descWebhookDeliveries, s.Delivered, "delivered")
	counter(descWebhookDeliveries, s.Failed, "failed")
	counter(descWebhookRetries, s.Retries)
	counter(descWebhookDropped, s.DroppedQueueFull, "queue_full")
	counter(descWebhookDropped, s.DroppedShutdown, "shutdown")
	ch <- prometheus.MustNewConstMetric(descWebhookQueued, prometheus.GaugeValue, float64(s.Queued))
}

// WatchLedger exports the ledger's gauges (read at scrape time), with
// per-account series for accounts only. Call it once.
func (m *Metrics) WatchLedger(ledger enforcer.Ledger, accounts []string) {
	m.reg.MustRegister(&ledgerCollector{ledger: ledger, accounts: append([]string(nil), accounts...)})
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry exposes the registry so other parts (the plugin host) can add
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) observeRequest(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status/100)+"xx").Observe(d.Seconds())
}

func (m *Metrics) observeDecision(d enforcer.Decision) {
	if m == nil {
		return
	}
	layer := d.Layer
	if layer == "" {
		layer = "none"
	}
	m.decisions.WithLabelValues(d.Verdict.String(), layer).Inc()
	m.observeEstimate(d.Estimate.Source)
}

func (m *Metrics) observeEstimate(source string) {
	if m == nil {
		return
	}
	if name, _, ok := strings.Cut(source, "@"); ok { // drop the digest: bounded cardinality
		source = name
	}
	m.sources.WithLabelValues(source).Inc()
}

func (m *Metrics) observeSettle(r enforcer.Reservation) {
	if m == nil {
		return
	}
	m.settles.WithLabelValues(string(r.State), string(r.CostSource)).Inc()
}

// observeExtension counts an extension; outcome is allow, deny or an API
// error code (a bounded set).
func (m *Metrics) observeExtension(outcome string) {
	if m == nil {
		return
	}
	m.extensions.WithLabelValues(outcome).Inc()
}

// ObservePluginCall records one plugin call and the fuel it used (0: it
// never reached the guest, not recorded); errKind is "" on success.
func (m *Metrics) ObservePluginCall(plugin, kind string, d time.Duration, fuel int64, errKind string) {
	if m == nil {
		return
	}
	m.pluginCalls.WithLabelValues(plugin, kind).Observe(d.Seconds())
	if fuel > 0 {
		m.pluginFuel.WithLabelValues(plugin, kind).Observe(float64(fuel))
	}
	if errKind != "" {
		m.pluginErrs.WithLabelValues(plugin, errKind).Inc()
	}
}

// ObservePluginInstances sets the live instance count of a plugin.
func (m *Metrics) ObservePluginInstances(plugin string, n int) {
	if m == nil {
		return
	}
	m.instances.WithLabelValues(plugin).Set(float64(n))
}

// ObservePluginReload counts a reload attempt.
func (m *Metrics) ObservePluginReload(plugin string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reloads.WithLabelValues(plugin, result).Inc()
}

// Notify counts alerts; wire it into the ledger's notifier chain.
func (m *Metrics) Notify(a enforcer.Alert) {
	if m == nil {
		return
	}
	m.alerts.WithLabelValues(string(a.Level)).Inc()
}

// ledgerCollector reads the ledger at scrape time.
type ledgerCollector struct {
	ledger   enforcer.Ledger
	accounts []string
}

var (
	descPending   = prometheus.NewDesc("purser_pending_nanos", "Money held by pending reservations, summed over root accounts.", nil, nil)
	descOverdrawn = prometheus.NewDesc("purser_overdrawn_accounts", "Accounts currently overdrawn.", nil, nil)
	descCommitted = prometheus.NewDesc("purser_account_committed_nanos", "Committed spend of a configured account.", []string{"account"}, nil)
	descRemaining = prometheus.NewDesc("purser_account_remaining_nanos", "Remaining budget of a configured account with a limit.", []string{"account"}, nil)
)

func (c *ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descOverdrawn
	ch <- descCommitted
	ch <- descRemaining
}

func (c *ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	all, err := c.ledger.Accounts(ctx)
	if err != nil {
		return
	}
	var pending, overdrawn float64
	for _, a := range all {
		if a.Parent == "" {
			pending += float64(a.Pending) // display only: Prometheus values are floats
		}
		if a.Overdrawn {
			overdrawn++
		}
	}
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, pending)
	ch <- prometheus.MustNewConstMetric(descOverdrawn, prometheus.GaugeValue, overdrawn)
	for _, id := range c.accounts {
		s, err := c.ledger.Snapshot(ctx, id)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descCommitted, prometheus.GaugeValue, float64(s.Committed), id)
		if s.Limit != nil {
			ch <- prometheus.MustNewConstMetric(descRemaining, prometheus.GaugeValue, float64(s.Remaining()), id)
		}
	}
}
