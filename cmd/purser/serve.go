package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/bridge"
	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
	"github.com/purser-dev/purser/server"
	"github.com/purser-dev/purser/server/decisionlog"
)

func runServe(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlags("serve", out)
	configPath := fs.String("config", "", "YAML config file (default: embedded defaults)")
	addr := fs.String("addr", "", "listen address (default 127.0.0.1:8181)")
	dataDir := fs.String("data-dir", "", "data folder for the SQLite ledger, decision log and compile cache (default ./purser-data)")
	store := fs.String("store", "", "ledger store: sqlite, memory, postgres, or a postgres:// DSN (kind postgres with that DSN)")
	prices := fs.String("prices", "", "LiteLLM price file replacing the embedded snapshot, re-read when it changes (pricing.llm.litellm_file)")
	if err := (&flagSet{fs}).parse(args); err != nil {
		return err
	}
	over := map[string]any{}
	for k, v := range map[string]string{"server.addr": *addr, "data_dir": *dataDir, "store.kind": *store,
		"pricing.llm.litellm_file": *prices} {
		if v != "" {
			over[k] = v
		}
	}
	if isPostgresDSN(*store) {
		over["store.kind"], over["store.dsn"] = "postgres", *store
	}
	cfg, err := loadConfig(*configPath, over)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, nil)
}

// serve runs the server until ctx ends. ready, if non-nil, receives the
// bound address once the listener is up (tests use it).
func serve(ctx context.Context, cfg *Config, ready chan<- string) error {
	start := time.Now()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	b, err := cfg.build()
	if err != nil {
		return err
	}
	logger := newLogger(b, cfg, nil)
	metrics := server.NewMetrics(nil, server.MetricsOptions{})
	notifiers, closeNotifiers, err := alertNotifiers(cfg, logger, metrics)
	if err != nil {
		return err
	}
	defer closeNotifiers()
	eng, err := buildEngine(ctx, cfg, engineOptions{plugins: true, notifier: notifiers, observer: hostObserver{metrics}, logger: logger,
		watchPrices: true})
	if err != nil {
		return err
	}
	defer eng.Close()
	defer eng.syncCalibration(context.WithoutCancel(ctx))
	metrics.WatchLedger(eng.ledger, cfg.Metrics.Accounts)
	if eng.registry != nil {
		metrics.Registry().MustRegister(pluginCollector{reg: eng.registry, now: time.Now})
	}
	if err := eng.applyAccounts(ctx); err != nil {
		return err
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go eng.sweepEvery(sweepCtx, sweepInterval)
	// Load what was learned before (this host's last run, other hosts)
	// now, not one sync_interval after start: holds use it from the first call.
	eng.syncCalibration(ctx)
	go every(sweepCtx, cfg.Calibration.SyncInterval, eng.syncCalibration)
	srv, dl, err := eng.newServer(b, metrics)
	if err != nil {
		return err
	}
	if dl != nil {
		defer dl.Close()
		metrics.WatchDecisionLog(func() uint64 { return dl.Stats().Dropped })
	}
	ln, err := listen(cfg.Server.Addr, srv.AuthEnabled())
	if err != nil {
		return err
	}
	if !srv.AuthEnabled() {
		eng.logger.Warn("auth is off (no tokens configured): listening on loopback only", "addr", ln.Addr().String())
	}
	eng.logger.Info("purser serving", "addr", ln.Addr().String(), "store", cfg.Store.Kind, "plugins", len(eng.pluginInfos()),
		"startup", time.Since(start).Round(time.Millisecond).String())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	err = srv.Serve(ctx, ln)
	eng.logger.Info("purser stopped", "error", err)
	return err
}

// sweepInterval is how often expired holds are marked and old settled
// reservations forgotten. Correctness never depends on it (expired holds
// stop counting at their expiry); it bounds storage and read cost.
const sweepInterval = time.Minute

func (eng *engine) sweepEvery(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func(ctx context.Context) {
		if n, err := eng.ledger.Sweep(ctx); err != nil {
			eng.logger.Warn("sweep failed", "error", err)
		} else if n > 0 {
			eng.logger.Debug("swept expired holds", "count", n)
		}
	})
}

// every runs fn each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

func listen(addr string, authOn bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("server.addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); !authOn && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return nil, fmt.Errorf("server.addr %q: auth is off (no auth.tokens configured), so purser listens on loopback only; use 127.0.0.1 or configure tokens", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// alertNotifiers fans threshold and overdraft alerts out to metrics, the
// log and the webhook; the returned func drains the webhook's queue for at
// most server.shutdown_timeout.
func alertNotifiers(cfg *Config, logger hclog.Logger, metrics *server.Metrics) (enforcer.Notifier, func(), error) {
	out := enforcer.MultiNotifier{metrics}
	if cfg.Notifier.Log {
		out = append(out, enforcer.LogNotifier{Logger: logger.Named("alerts")})
	}
	wh := cfg.Notifier.Webhook
	if wh.URL == "" {
		return out, func() {}, nil
	}
	log := logger.Named("webhook")
	w, err := server.NewWebhook(server.WebhookOptions{URL: wh.URL, Secret: []byte(wh.Secret), AttemptTimeout: wh.Timeout,
		QueueMax: wh.QueueMax, AttemptsMax: wh.AttemptsMax, Backoff: wh.Backoff, BackoffMax: wh.BackoffMax,
		DeliveryTimeout: wh.DeliveryTimeout, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("notifier.webhook: %w", err)
	}
	metrics.WatchWebhook(w.Stats)
	closeFn := func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			log.Warn("alerts lost at shutdown", "error", err)
		}
	}
	return append(out, w), closeFn, nil
}

func (eng *engine) newServer(b *built, metrics *server.Metrics) (*server.Server, *decisionlog.Writer, error) {
	sv := eng.cfg.Server
	sc := server.Config{Tokens: b.tokens, BodyBytesMax: sv.BodyBytesMax, ReservationTTLMax: eng.cfg.Reservation.TTLMax,
		ShutdownTimeout: sv.ShutdownTimeout, ReadHeaderTimeout: sv.ReadHeaderTimeout, ReadTimeout: sv.ReadTimeout,
		WriteTimeout: sv.WriteTimeout, IdleTimeout: sv.IdleTimeout, ConnectionsMax: sv.ConnectionsMax, LogParams: eng.cfg.DecisionLog.LogParams, Metrics: metrics,
		Logger: eng.logger.Named("server"), Ready: eng.ready, LedgerName: eng.cfg.Store.Kind, PluginErrors: pluginErrorOf}
	if eng.registry != nil {
		sc.Plugins = pluginAdmin{eng}
	}
	var dl *decisionlog.Writer
	if eng.cfg.DecisionLog.Enabled {
		var err error
		dl, err = decisionlog.Open(eng.cfg.DecisionLog.Path, decisionlog.Options{FileBytesMax: eng.cfg.DecisionLog.FileBytesMax,
			Backups: eng.cfg.DecisionLog.Backups, QueueEventsMax: eng.cfg.DecisionLog.QueueMax})
		if err != nil {
			return nil, nil, err
		}
		sc.DecisionLog = dl
	}
	srv, err := server.New(eng.enforcer, sc)
	if err != nil && dl != nil {
		dl.Close()
	}
	return srv, dl, err
}

// readyLedger is a ledger that can tell whether it can write now (SQLite
// with a full disk answers reads but not writes).
type readyLedger interface {
	Ready(ctx context.Context) error
}

// ready: the ledger can read and, where it can tell, write. Plugins that
// failed have fallbacks, so they do not make the server unready; they
// show in /v1/plugins.
func (eng *engine) ready(ctx context.Context) error {
	if r, ok := eng.ledger.(readyLedger); ok {
		if err := r.Ready(ctx); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		return nil
	}
	if _, err := eng.ledger.Accounts(ctx); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

type pluginAdmin struct{ eng *engine }

func (p pluginAdmin) Plugins() []server.PluginInfo { return p.eng.pluginInfos() }

func (p pluginAdmin) Reload(ctx context.Context) error { return p.eng.registry.Reload(ctx) }

func (eng *engine) pluginInfos() []server.PluginInfo {
	if eng.registry == nil {
		return nil
	}
	var out []server.PluginInfo
	for _, st := range eng.registry.Status() {
		health, lastErr := server.PluginHealthy, st.LastError
		var nextTrial *time.Time
		if !st.Health.Healthy {
			health = server.PluginUnhealthy
			t := st.Health.NextTrial.UTC()
			nextTrial = &t
			lastErr = joinNonEmpty(lastErr, st.Health.LastError+"; quarantined, next trial call at "+t.Format(time.RFC3339))
		}
		if !st.Loaded {
			health = server.PluginNotLoaded
		}
		var errs uint64
		for _, n := range st.Stats.Errors {
			errs += n
		}
		out = append(out, server.PluginInfo{Name: st.Name, Version: st.Version, Kind: string(st.Kind), SHA256: st.Digest,
			Health: health, Quarantined: nextTrial != nil, NextTrialAt: nextTrial, Calls: st.Stats.Calls, Errors: errs, LastError: lastErr, Path: st.File})
	}
	return out
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// pluginErrorOf names the plugin and kind behind a failure for the
// server's plugin_error: host call errors by host.ErrorKind, quotes the
// bridge refused by their own kind.
func pluginErrorOf(err error) (plugin, code string) {
	var qe *bridge.QuoteError
	if errors.As(err, &qe) {
		if errors.Is(err, bridge.ErrEstimateAboveMax) {
			return qe.Source, "estimate_above_max"
		}
		return qe.Source, "zero_estimate"
	}
	var ce *host.CallError
	if errors.As(err, &ce) {
		plugin = "plugin:" + ce.Plugin
		if len(ce.Digest) >= 12 {
			plugin += "@" + ce.Digest[:12] // the plugin's source label
		}
	}
	return plugin, host.ErrorKind(err)
}

// hostObserver forwards host events to Prometheus.
type hostObserver struct{ m *server.Metrics }

func (o hostObserver) ObserveCall(plugin, kind string, d time.Duration, fuel int64, err error) {
	ek := ""
	if err != nil {
		ek = host.ErrorKind(err)
	}
	o.m.ObservePluginCall(plugin, kind, d, fuel, ek)
}

func (o hostObserver) ObserveInstances(plugin string, n int) { o.m.ObservePluginInstances(plugin, n) }

func (o hostObserver) ObserveReload(plugin string, err error) { o.m.ObservePluginReload(plugin, err) }
