package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

const testSecret = "whsec-test-0123456789abcdef"

// verifySignature is the recipe of docs/webhooks.md, written without the
// package's Sign: split the header, recompute the HMAC over "<t>.<body>",
// compare in constant time, and refuse timestamps outside the window.
func verifySignature(header string, body []byte, secret string, now time.Time, window time.Duration) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(unix, 0)); d > window || d < -window {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	return hmac.Equal(got, mac.Sum(nil))
}

type hookRequest struct {
	body               []byte
	signature, deliver string
}

// hookServer answers the nth request (from 1) with status(n).
func hookServer(t *testing.T, status func(n int) int) (*httptest.Server, func() []hookRequest) {
	var mu sync.Mutex
	var got []hookRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, hookRequest{body: b, signature: r.Header.Get("Purser-Signature"), deliver: r.Header.Get("Purser-Delivery")})
		n := len(got)
		mu.Unlock()
		w.WriteHeader(status(n))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []hookRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]hookRequest(nil), got...)
	}
}

func newTestWebhook(t *testing.T, opts WebhookOptions) *Webhook {
	t.Helper()
	if opts.Secret == nil {
		opts.Secret = []byte(testSecret)
	}
	if opts.Backoff == 0 {
		opts.Backoff, opts.BackoffMax = time.Millisecond, 4*time.Millisecond
	}
	w, err := NewWebhook(opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWebhookRetriesUntilDeliveredAndSignsEveryAttempt(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	srv, got := hookServer(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	w := newTestWebhook(t, WebhookOptions{URL: srv.URL + "/hooks/SECRET", Clock: fixedClock(now)})
	w.Notify(enforcer.Alert{Account: "team", ThresholdPct: 90, Level: enforcer.AlertWarning, Committed: 900, Limit: 1000})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := got()
	if len(reqs) != 3 {
		t.Fatalf("%d requests; want 2 failures then a delivery", len(reqs))
	}
	for i, r := range reqs {
		if !verifySignature(r.signature, r.body, testSecret, now, 5*time.Minute) {
			t.Errorf("attempt %d: signature %q does not verify", i+1, r.signature)
		}
		if r.deliver == "" || r.deliver != reqs[0].deliver {
			t.Errorf("attempt %d: delivery id %q; want one id for every attempt (%q)", i+1, r.deliver, reqs[0].deliver)
		}
	}
	var a alertBody
	if err := json.Unmarshal(reqs[2].body, &a); err != nil || a.Account != "team" || a.ThresholdPct != 90 || a.Level != "warning" {
		t.Errorf("body %s (%v)", reqs[2].body, err)
	}
	if verifySignature(reqs[0].signature, reqs[0].body, "another-secret", now, 5*time.Minute) ||
		verifySignature(reqs[0].signature, []byte(`{"account":"forged"}`), testSecret, now, 5*time.Minute) ||
		verifySignature(reqs[0].signature, reqs[0].body, testSecret, now.Add(time.Hour), 5*time.Minute) {
		t.Error("the signature must fail for another secret, another body and outside the replay window")
	}
	if s := w.Stats(); s.Delivered != 1 || s.Retries != 2 || s.Failed != 0 {
		t.Errorf("stats %+v; want 1 delivered after 2 retries", s)
	}
}

func TestWebhookGivesUpAfterAttemptsMaxAndCountsTheFailure(t *testing.T) {
	srv, got := hookServer(t, func(int) int { return http.StatusInternalServerError })
	w := newTestWebhook(t, WebhookOptions{URL: srv.URL, AttemptsMax: 3})
	w.Notify(enforcer.Alert{Account: "team"})
	_ = w.Close(context.Background())
	if n, s := len(got()), w.Stats(); n != 3 || s.Failed != 1 || s.Retries != 2 || s.Delivered != 0 {
		t.Errorf("%d requests, stats %+v; want 3 attempts, 1 failure", n, s)
	}
}

func TestWebhookDoesNotRetryAClientError(t *testing.T) {
	srv, got := hookServer(t, func(int) int { return http.StatusBadRequest })
	w := newTestWebhook(t, WebhookOptions{URL: srv.URL, AttemptsMax: 5})
	w.Notify(enforcer.Alert{Account: "team"})
	_ = w.Close(context.Background())
	if n, s := len(got()), w.Stats(); n != 1 || s.Failed != 1 || s.Retries != 0 {
		t.Errorf("%d requests, stats %+v; want 1 attempt, 1 failure", n, s)
	}
}

func TestWebhookDeliveryTimeoutBoundsRetries(t *testing.T) {
	srv, got := hookServer(t, func(int) int { return http.StatusBadGateway })
	// Attempts are practically unbounded here: only the total time stops them.
	w := newTestWebhook(t, WebhookOptions{URL: srv.URL, AttemptsMax: 1 << 30, Backoff: 5 * time.Millisecond,
		BackoffMax: 5 * time.Millisecond, DeliveryTimeout: 100 * time.Millisecond})
	w.Notify(enforcer.Alert{Account: "team"})
	_ = w.Close(context.Background())
	if s := w.Stats(); s.Failed != 1 || s.Delivered != 0 || len(got()) < 1 {
		t.Errorf("stats %+v after %d attempts; want 1 failure", s, len(got()))
	}
}

func TestWebhookFullQueueDropsAndCountsWithoutBlocking(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		<-release
	}))
	defer srv.Close()
	w := newTestWebhook(t, WebhookOptions{URL: srv.URL, QueueMax: 1})
	for i := 0; i < 10; i++ { // the sender holds at most 1 in flight and 1 queued
		w.Notify(enforcer.Alert{Account: "team"})
	}
	close(release)
	_ = w.Close(context.Background())
	s := w.Stats()
	if s.DroppedQueueFull < 8 || s.DroppedQueueFull+s.Delivered != 10 {
		t.Errorf("stats %+v; want >= 8 dropped (queue_full) and the rest delivered", s)
	}
}

func TestWebhookCloseDrainsTheQueueThenStopsAtItsDeadline(t *testing.T) {
	srv, got := hookServer(t, func(int) int { return http.StatusOK })
	w := newTestWebhook(t, WebhookOptions{URL: srv.URL})
	for i := 0; i < 3; i++ {
		w.Notify(enforcer.Alert{Account: "team"})
	}
	if err := w.Close(context.Background()); err != nil || len(got()) != 3 || w.Stats().Delivered != 3 {
		t.Fatalf("close: %v; %d delivered; want every queued alert sent", err, len(got()))
	}
	w.Notify(enforcer.Alert{Account: "late"}) // after Close: dropped, no panic
	if s := w.Stats(); s.DroppedShutdown != 1 {
		t.Errorf("stats %+v; want the late alert dropped as shutdown", s)
	}

	down, _ := hookServer(t, func(int) int { return http.StatusServiceUnavailable })
	w = newTestWebhook(t, WebhookOptions{URL: down.URL, Backoff: time.Hour, BackoffMax: time.Hour})
	for i := 0; i < 3; i++ {
		w.Notify(enforcer.Alert{Account: "team"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err == nil || !strings.Contains(err.Error(), "3 alert(s) undelivered") {
		t.Errorf("close past its deadline: %v", err)
	}
	if s := w.Stats(); s.DroppedShutdown != 3 || s.Delivered+s.Failed != 0 {
		t.Errorf("stats %+v; want 3 dropped at shutdown", s)
	}
}

func TestWebhookNotifyRacingCloseIsSafe(t *testing.T) {
	srv, _ := hookServer(t, func(int) int { return http.StatusOK })
	w := newTestWebhook(t, WebhookOptions{URL: srv.URL, QueueMax: 4})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				w.Notify(enforcer.Alert{Account: "team"})
			}
		}()
	}
	_ = w.Close(context.Background())
	wg.Wait()
	s := w.Stats()
	if total := s.Delivered + s.Failed + s.DroppedQueueFull + s.DroppedShutdown; total != 400 {
		t.Errorf("stats %+v account for %d of 400 alerts", s, total)
	}
}

func TestWebhookMetricsAreExported(t *testing.T) {
	m := NewMetrics(nil, MetricsOptions{})
	m.WatchWebhook(func() WebhookStats {
		return WebhookStats{Delivered: 4, Failed: 1, Retries: 7, DroppedQueueFull: 2, DroppedShutdown: 3}
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{`purser_webhook_deliveries_total{result="delivered"} 4`, `purser_webhook_deliveries_total{result="failed"} 1`,
		`purser_webhook_retries_total 7`, `purser_webhook_dropped_total{reason="queue_full"} 2`, `purser_webhook_dropped_total{reason="shutdown"} 3`,
		`purser_webhook_queue_length 0`} {
		if !strings.Contains(rec.Body.String(), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

func TestWebhookErrorsHideThePath(t *testing.T) {
	w := newTestWebhook(t, WebhookOptions{URL: "http://127.0.0.1:1/hooks/SECRET"})
	defer w.Close(context.Background())
	_, err := w.send(context.Background(), "id", []byte("{}"))
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %v must not contain the URL path", err)
	}
}

func TestWebhookNeedsASecretAndAnAbsoluteURL(t *testing.T) {
	if _, err := NewWebhook(WebhookOptions{URL: "http://example.com/h"}); err == nil {
		t.Error("a webhook without a secret was accepted")
	}
	if _, err := NewWebhook(WebhookOptions{URL: "example.com/h", Secret: []byte("s")}); err == nil {
		t.Error("a relative URL was accepted")
	}
}

func TestWebhookBackoffDoublesUpToItsCapWithJitter(t *testing.T) {
	w := &Webhook{opts: WebhookOptions{Backoff: time.Second, BackoffMax: 30 * time.Second}}
	for n := 1; n <= 100; n++ {
		full := min(time.Second<<min(n-1, 10), 30*time.Second)
		if d := w.backoff(n); d < full/2 || d > full {
			t.Errorf("backoff after attempt %d = %s; want within [%s, %s]", n, d, full/2, full)
		}
	}
}
