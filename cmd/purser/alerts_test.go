package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/server"
)

func TestServeWiresASignedWebhookWithMetricsAndDrainsItOnClose(t *testing.T) {
	var signed atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get(server.SignatureHeader), "t=") {
			signed.Add(1)
		}
	}))
	defer hook.Close()
	t.Setenv("PURSER_NOTIFIER__WEBHOOK__URL", hook.URL)
	t.Setenv("PURSER_NOTIFIER__WEBHOOK__SECRET", "0123456789abcdef0123")
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	metrics := server.NewMetrics(nil, server.MetricsOptions{})
	n, closeFn, err := alertNotifiers(cfg, hclog.NewNullLogger(), metrics)
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(enforcer.Alert{Account: "team", ThresholdPct: 50, Level: enforcer.AlertInfo})
	closeFn() // drains: the alert is delivered before it returns
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if signed.Load() != 1 || !strings.Contains(rec.Body.String(), `purser_webhook_deliveries_total{result="delivered"} 1`) {
		t.Errorf("signed deliveries %d; metrics:\n%s", signed.Load(), rec.Body.String())
	}
}
