package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/enforcer"
)

// Webhook posts alerts as JSON to a URL. Notify never blocks the ledger:
// alerts queue (bounded) for one sender goroutine; overflow is dropped and
// counted.
type Webhook struct {
	url     string
	logHost string // the URL's host only: webhook paths often carry secrets
	client  *http.Client
	logger  hclog.Logger
	queue   chan enforcer.Alert
	done    chan struct{}
	mu      sync.Mutex // guards closed against Notify racing Close
	closed  bool
	dropped atomic.Uint64
	failed  atomic.Uint64
}

// NewWebhook starts a sender; Close stops it after sending what is queued.
func NewWebhook(url string, timeout time.Duration, queueMax int, logger hclog.Logger) *Webhook {
	host := "webhook"
	if u, err := neturl.Parse(url); err == nil {
		host = u.Host
	}
	w := &Webhook{url: url, logHost: host, client: &http.Client{Timeout: timeout}, logger: logger,
		queue: make(chan enforcer.Alert, queueMax), done: make(chan struct{})}
	go w.loop()
	return w
}

// Notify queues the alert; after Close, or when the queue is full, the
// alert is dropped and counted.
func (w *Webhook) Notify(a enforcer.Alert) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.queue <- a:
	default:
		w.dropped.Add(1)
	}
}

func (w *Webhook) loop() {
	defer close(w.done)
	for a := range w.queue {
		if err := w.send(a); err != nil {
			w.failed.Add(1)
			w.logger.Warn("alert webhook failed", "host", w.logHost, "account", a.Account, "error", err)
		}
	}
}

type alertBody struct {
	Account        string `json:"account"`
	ThresholdPct   int    `json:"threshold_pct"`
	Level          string `json:"level"`
	CommittedNanos int64  `json:"committed_nanos"`
	LimitNanos     int64  `json:"limit_nanos"`
	Overdrawn      bool   `json:"overdrawn"`
	At             string `json:"at"`
}

func (w *Webhook) send(a enforcer.Alert) error {
	body, err := json.Marshal(alertBody{Account: a.Account, ThresholdPct: a.ThresholdPct, Level: string(a.Level),
		CommittedNanos: int64(a.Committed), LimitNanos: int64(a.Limit), Overdrawn: a.Overdrawn, At: a.At.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("POST to %s: %w", w.logHost, ue.Err) // url.Error would print the secret path
	}
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// Stats returns how many alerts were dropped (queue full or closed) and
// how many deliveries failed.
func (w *Webhook) Stats() (dropped, failed uint64) { return w.dropped.Load(), w.failed.Load() }

// Close sends what is queued and stops.
func (w *Webhook) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
	return nil
}
