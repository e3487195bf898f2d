package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	neturl "net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/enforcer"
)

// Webhook headers. The signature is HMAC-SHA256, keyed with the configured
// secret, over "<t>.<body>" where t is the Unix time of the attempt; see
// docs/webhooks.md for how to verify it.
const (
	SignatureHeader = "Purser-Signature" // t=<unix seconds>,v1=<hex HMAC-SHA256>
	DeliveryHeader  = "Purser-Delivery"  // one id per alert, the same on every retry
)

// WebhookOptions configure alert delivery; zero values take the defaults.
type WebhookOptions struct {
	URL    string
	Secret []byte // HMAC-SHA256 key for the signature; required
	// AttemptTimeout bounds one POST (default 5s).
	AttemptTimeout time.Duration
	// QueueMax is how many alerts wait for the sender (default 256).
	QueueMax int
	// AttemptsMax bounds POSTs per alert, the first included (default 5).
	AttemptsMax int
	// Backoff is the wait before the first retry; it doubles per retry up
	// to BackoffMax, and each wait is jittered to between half and all of
	// it (defaults 1s and 30s).
	Backoff, BackoffMax time.Duration
	// DeliveryTimeout bounds one alert's attempts and waits (default 2m).
	DeliveryTimeout time.Duration
	Clock           enforcer.Clock
	Logger          hclog.Logger
}

// WebhookStats counts what happened to alerts.
type WebhookStats struct {
	Delivered uint64 // accepted with a 2xx answer
	Failed    uint64 // given up: attempts or time used up, or refused with a 4xx
	Retries   uint64 // attempts after an alert's first
	// Dropped without trying: the queue was full, or the sender was
	// shutting down (after Close, or queued when Close's deadline passed).
	DroppedQueueFull, DroppedShutdown uint64
	Queued                            int
}

// Webhook posts signed alerts as JSON to a URL. Notify never blocks the
// ledger: alerts queue (bounded) for one sender goroutine that retries with
// exponential back-off; what cannot be queued is dropped and counted.
type Webhook struct {
	opts    WebhookOptions
	logHost string // the URL's host only: webhook paths often carry secrets
	client  *http.Client
	queue   chan enforcer.Alert
	ctx     context.Context // cancelled when Close gives up draining
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex // guards closed against Notify racing Close
	closed  bool

	delivered, failed, retries, droppedFull, droppedShutdown atomic.Uint64
}

// NewWebhook starts a sender; Close stops it after sending what is queued.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	u, err := neturl.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("webhook: the URL must be absolute http(s)")
	}
	if len(opts.Secret) == 0 {
		return nil, errors.New("webhook: a signing secret is required")
	}
	opts.withDefaults()
	w := &Webhook{opts: opts, logHost: u.Host, queue: make(chan enforcer.Alert, opts.QueueMax), done: make(chan struct{})}
	w.client = &http.Client{Timeout: opts.AttemptTimeout,
		// A redirect would send the signed alert somewhere unconfigured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	w.ctx, w.stop = context.WithCancel(context.Background())
	go w.loop()
	return w, nil
}

func (o *WebhookOptions) withDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.AttemptTimeout, 5*time.Second)
	def(&o.Backoff, time.Second)
	def(&o.BackoffMax, 30*time.Second)
	def(&o.DeliveryTimeout, 2*time.Minute)
	if o.QueueMax <= 0 {
		o.QueueMax = 256
	}
	if o.AttemptsMax <= 0 {
		o.AttemptsMax = 5
	}
	if o.Clock == nil {
		o.Clock = enforcer.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
}

// Notify queues the alert; after Close, or when the queue is full, the
// alert is dropped and counted.
func (w *Webhook) Notify(a enforcer.Alert) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.droppedShutdown.Add(1)
		return
	}
	select {
	case w.queue <- a:
	default:
		w.droppedFull.Add(1)
		w.opts.Logger.Warn("alert webhook queue full: alert dropped", "account", a.Account, "queue_max", w.opts.QueueMax)
	}
}

func (w *Webhook) loop() {
	defer close(w.done)
	for a := range w.queue {
		if w.ctx.Err() != nil {
			w.droppedShutdown.Add(1)
			continue
		}
		w.deliver(a)
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

// deliver posts one alert until it is accepted, refused, or its attempts
// or time run out.
func (w *Webhook) deliver(a enforcer.Alert) {
	body, err := json.Marshal(alertBody{Account: a.Account, ThresholdPct: a.ThresholdPct, Level: string(a.Level),
		CommittedNanos: int64(a.Committed), LimitNanos: int64(a.Limit), Overdrawn: a.Overdrawn, At: a.At.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		w.giveUp(a, 0, err)
		return
	}
	id := deliveryID()
	ctx, cancel := context.WithTimeout(w.ctx, w.opts.DeliveryTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		retry, err := w.send(ctx, id, body)
		switch {
		case err == nil:
			w.delivered.Add(1)
			return
		case w.ctx.Err() != nil:
			w.droppedShutdown.Add(1)
			return
		case !retry || attempt >= w.opts.AttemptsMax:
			w.giveUp(a, attempt, err)
			return
		}
		select {
		case <-time.After(w.backoff(attempt)):
			w.retries.Add(1)
		case <-ctx.Done():
			if w.ctx.Err() != nil {
				w.droppedShutdown.Add(1)
				return
			}
			w.giveUp(a, attempt, fmt.Errorf("%w (delivery_timeout %s)", err, w.opts.DeliveryTimeout))
			return
		}
	}
}

func (w *Webhook) giveUp(a enforcer.Alert, attempts int, err error) {
	w.failed.Add(1)
	w.opts.Logger.Warn("alert webhook failed", "host", w.logHost, "account", a.Account, "attempts", attempts, "error", err)
}

// backoff is the wait after attempt n: Backoff x 2^(n-1), capped, with
// jitter so many purser hosts do not retry in step.
func (w *Webhook) backoff(n int) time.Duration {
	d := w.opts.Backoff
	for i := 1; i < n && d < w.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, w.opts.BackoffMax)
	return d/2 + mrand.N(d/2+1)
}

// send makes one signed POST; retry says whether a later attempt may
// succeed (network errors, timeouts, 408, 429 and 5xx).
func (w *Webhook) send(ctx context.Context, id string, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "purser-webhook")
	req.Header.Set(DeliveryHeader, id)
	req.Header.Set(SignatureHeader, Sign(w.opts.Secret, w.opts.Clock.Now(), body))
	resp, err := w.client.Do(req)
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return true, fmt.Errorf("POST to %s: %w", w.logHost, ue.Err) // url.Error would print the secret path
	}
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("POST to %s: status %s", w.logHost, resp.Status)
	default:
		return false, fmt.Errorf("POST to %s: refused with status %s (not retried)", w.logHost, resp.Status)
	}
}

// Sign returns the Purser-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>." + body)>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

func deliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Stats returns the delivery counters.
func (w *Webhook) Stats() WebhookStats {
	return WebhookStats{Delivered: w.delivered.Load(), Failed: w.failed.Load(), Retries: w.retries.Load(),
		DroppedQueueFull: w.droppedFull.Load(), DroppedShutdown: w.droppedShutdown.Load(), Queued: len(w.queue)}
}

// Close stops taking alerts and sends what is queued, retrying as usual,
// until ctx ends; then what is left is dropped (counted as shutdown).
func (w *Webhook) Close(ctx context.Context) error {
	before := w.droppedShutdown.Load()
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		w.stop()
		return nil
	case <-ctx.Done():
	}
	w.stop()
	<-w.done
	if n := w.droppedShutdown.Load() - before; n > 0 {
		return fmt.Errorf("alert webhook: drain stopped (%w) with %d alert(s) undelivered", ctx.Err(), n)
	}
	return nil
}
