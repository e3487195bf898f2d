// Package server is purser's HTTP JSON API: handlers, bearer-token auth
// with roles and account scopes, the decision log and Prometheus metrics.
// It depends on the enforcer, never on the Wasm host: plugin listing and
// reload come in through the PluginAdmin interface.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/server/decisionlog"
)

// PluginAdmin lists and reloads plugins; cmd/ adapts the Wasm host to it.
type PluginAdmin interface {
	Plugins() []PluginInfo
	Reload(ctx context.Context) error
}

// DecisionLogger receives decision events (a *decisionlog.Writer).
type DecisionLogger interface {
	Log(decisionlog.Event) bool
}

// Config is the server's immutable configuration.
type Config struct {
	Tokens []Token
	// BodyBytesMax caps request bodies (default 1 MiB).
	BodyBytesMax int64
	// ReservationTTLMax caps ttl_ms (default 24h).
	ReservationTTLMax time.Duration
	// ShutdownTimeout bounds the drain of requests in flight (default 15s).
	ShutdownTimeout time.Duration
	// Connection limits (defaults in listen.go): time to read a request's
	// headers, the whole request with its body, to answer, and to keep an
	// idle keep-alive connection; connections served at once (more wait).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	ConnectionsMax                                            int
	// LogParams puts raw params into the decision log (default: a hash only).
	LogParams bool
	// LedgerName names the store in 503 answers ("sqlite", "postgres");
	// "" says "the ledger".
	LedgerName string
	// LedgerRetryAfter is the Retry-After of a 503 ledger_unavailable,
	// whole seconds (default 5s: long enough not to hammer a database that
	// is restarting, short enough that agents resume soon after it is back).
	LedgerRetryAfter time.Duration

	// PluginErrors names the plugin and kind behind a plugin failure for
	// plugin_error (optional: without it the code is "other" and an
	// estimator is named "estimator").
	PluginErrors PluginErrorNamer

	DecisionLog DecisionLogger // optional
	Metrics     *Metrics       // optional
	Plugins     PluginAdmin    // optional
	// Ready reports whether dependencies are up; nil means always ready.
	Ready  func(ctx context.Context) error
	Clock  enforcer.Clock
	Logger hclog.Logger
}

// Server serves the API for one Enforcer.
type Server struct {
	cfg    Config
	e      *enforcer.Enforcer
	auth   *authenticator
	logger hclog.Logger
	// mux is the root handler (Serve's); router holds the routes.
	mux    http.Handler
	router *http.ServeMux
	// notReady is the last readiness failure logged, so a probe every few
	// seconds logs an outage once per distinct reason, not per probe.
	notReady atomic.Pointer[string]
	// patterns lists every registered route ("POST /v1/check"), so a test
	// can hold openapi.json to the real routes.
	patterns []string
}

// New builds a Server.
func New(e *enforcer.Enforcer, cfg Config) (*Server, error) {
	if e == nil {
		return nil, errors.New("server: enforcer is nil")
	}
	if cfg.BodyBytesMax <= 0 {
		cfg.BodyBytesMax = 1 << 20
	}
	if cfg.ReservationTTLMax <= 0 {
		cfg.ReservationTTLMax = 24 * time.Hour
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	if cfg.LedgerRetryAfter < time.Second {
		cfg.LedgerRetryAfter = 5 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = enforcer.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	auth, err := newAuthenticator(cfg.Tokens)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, e: e, auth: auth, logger: cfg.Logger, router: http.NewServeMux()}
	s.mux = http.HandlerFunc(s.serveHTTP)
	s.routes()
	return s, nil
}

// AuthEnabled reports whether tokens are configured. Without them the
// caller must listen on loopback only (cmd/ enforces it).
func (s *Server) AuthEnabled() bool { return s.auth.enabled() }

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.mux }

// serveHTTP routes r; a request no route matches (404, or 405 with Allow)
// gets the JSON error envelope like every other error, not the mux's text.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.router.Handler(r); pattern == "" {
		s.router.ServeHTTP(&envelopeWriter{ResponseWriter: w, r: r}, r)
		return
	}
	s.router.ServeHTTP(w, r)
}

// envelopeWriter turns the mux's plain-text 404 and 405 into the JSON
// envelope, keeping its headers (Allow); anything else passes through.
type envelopeWriter struct {
	http.ResponseWriter
	r         *http.Request
	swallowed bool
}

func (w *envelopeWriter) WriteHeader(status int) {
	var body errorDetail
	switch status {
	case http.StatusNotFound:
		body = errorDetail{Code: "not_found", Message: fmt.Sprintf("no route for %s %s (the API is described at /openapi.json)", w.r.Method, w.r.URL.Path)}
	case http.StatusMethodNotAllowed:
		body = errorDetail{Code: "method_not_allowed", Message: fmt.Sprintf("%s is not allowed on %s; allowed: %s", w.r.Method, w.r.URL.Path, w.Header().Get("Allow"))}
	default:
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.Header().Del("X-Content-Type-Options")
	writeJSON(w.ResponseWriter, status, errorBody{Error: body})
	w.swallowed = true
}

func (w *envelopeWriter) Write(b []byte) (int, error) {
	if w.swallowed {
		return len(b), nil // the mux's text body, replaced by the envelope
	}
	return w.ResponseWriter.Write(b)
}

// Serve answers on ln until ctx ends, then drains requests in flight for
// up to ShutdownTimeout. At most ConnectionsMax connections are served at
// once; slow headers, bodies and answers are cut off by the timeouts.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	readHeader, read, write, idle, connsMax := s.cfg.connLimits()
	ln = newLimitListener(ln, connsMax)
	hs := &http.Server{Handler: closeRefused(s.mux), ReadHeaderTimeout: readHeader, ReadTimeout: read,
		WriteTimeout: write, IdleTimeout: idle, ErrorLog: s.logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	return nil
}

// endpoint is a handler that may fail; the wrapper writes the error.
type endpoint func(w http.ResponseWriter, r *http.Request, p *principal) error

func (s *Server) handle(pattern, route string, role Role, h endpoint) {
	s.patterns = append(s.patterns, pattern)
	s.router.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() { s.cfg.Metrics.observeRequest(route, sw.status, time.Since(start)) }()
		if r.Header.Get("Origin") != "" {
			// Browsers send Origin on cross-site requests; purser has no
			// CORS, so refusing them stops CSRF against an auth-off sidecar.
			s.writeError(sw, r, errForbidden("cross-origin requests are refused (Origin: %s)", r.Header.Get("Origin")))
			return
		}
		p, ok := s.auth.authenticate(r)
		if !ok {
			s.writeError(sw, r, &apiError{http.StatusUnauthorized, "unauthorized", "missing or unknown bearer token"})
			return
		}
		if role == RoleAdmin && p.role != RoleAdmin {
			s.writeError(sw, r, errForbidden("%s needs the admin role; token %q is %s", route, p.name, p.role))
			return
		}
		r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.BodyBytesMax)
		if err := h(sw, r, p); err != nil {
			s.writeError(sw, r, err)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) routes() {
	s.handle("POST /v1/estimate", "estimate", RoleAgent, s.estimate)
	s.handle("POST /v1/check", "check", RoleAgent, s.check)
	s.handle("POST /v1/reservations", "reserve", RoleAgent, s.reserve)
	s.handle("GET /v1/reservations", "reservations", RoleAgent, s.listReservations)
	s.handle("GET /v1/reservations/{id}", "reservation", RoleAgent, s.getReservation)
	s.handle("POST /v1/reservations/{id}/commit", "commit", RoleAgent, s.commit)
	s.handle("POST /v1/reservations/{id}/release", "release", RoleAgent, s.release)
	s.handle("POST /v1/reservations/{id}/extend", "extend", RoleAgent, s.extend)
	s.handle("GET /v1/accounts", "accounts", RoleAgent, s.listAccounts)
	s.handle("GET /v1/accounts/{id...}", "account", RoleAgent, s.getAccount)
	s.handle("PUT /v1/accounts/{id...}", "put_account", RoleAdmin, s.putAccount)
	s.handle("GET /v1/approvals", "approvals", RoleAdmin, s.listApprovals)
	s.handle("GET /v1/approvals/{id}", "approval", RoleAgent, s.getApproval)
	s.handle("POST /v1/approvals/{id}/approve", "approve", RoleAdmin, s.decideApproval(true))
	s.handle("POST /v1/approvals/{id}/deny", "deny", RoleAdmin, s.decideApproval(false))
	s.handle("GET /v1/plugins", "plugins", RoleAgent, s.listPlugins)
	s.handle("POST /v1/plugins/reload", "reload", RoleAdmin, s.reloadPlugins)
	s.plain("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.plain("GET /readyz", s.readyz)
	s.plain("GET /openapi.json", serveOpenAPI)
	if s.cfg.Metrics != nil {
		// Metrics carry per-account money: with auth on, any valid token.
		metrics := s.cfg.Metrics.Handler()
		s.handle("GET /metrics", "metrics", RoleAgent, func(w http.ResponseWriter, r *http.Request, _ *principal) error {
			metrics.ServeHTTP(w, r)
			return nil
		})
	}
}

// plain registers an unauthenticated route.
func (s *Server) plain(pattern string, h http.HandlerFunc) {
	s.patterns = append(s.patterns, pattern)
	s.router.HandleFunc(pattern, h)
}

// readyz is unauthenticated, so its body stays generic: the reason names
// database hosts, ports, users and files, and goes to the log, or to an
// unscoped admin token that asks (same URL, with its bearer token). Plugins
// never make it fail: a failing plugin's calls fall back to the built-in
// estimate or its fail mode. ?verbose with a valid token (any role, as
// GET /v1/plugins) adds each plugin's health and quarantine.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var err error
	if s.cfg.Ready != nil {
		err = s.cfg.Ready(r.Context())
	}
	if err != nil {
		s.logNotReady(err)
	} else if s.notReady.Swap(nil) != nil {
		s.logger.Info("ready again")
	}
	p, authed := s.auth.authenticate(r)
	if r.URL.Query().Has("verbose") && authed {
		s.readyDetail(w, p, err)
		return
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: s.notReadyError(p, err)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// notReadyError says why only to an unscoped admin token; auth off means
// every caller is anonymous, so the generic message then.
func (s *Server) notReadyError(p *principal, err error) errorDetail {
	msg := "not ready: a dependency is unavailable (the reason is in the server log)"
	if p != nil && s.auth.enabled() && p.role == RoleAdmin && p.all {
		msg = "not ready: " + err.Error()
	}
	return errorDetail{Code: "not_ready", Message: msg}
}

// readinessDetail is GET /readyz?verbose for a valid token.
type readinessDetail struct {
	Status string `json:"status"` // "ready" or "not_ready", as the status code says
	// Degraded: a plugin is unhealthy or not loaded; the server is still
	// ready because that plugin's calls fall back.
	Degraded bool         `json:"degraded"`
	Plugins  []PluginInfo `json:"plugins"`
	Error    *errorDetail `json:"error,omitempty"`
}

func (s *Server) readyDetail(w http.ResponseWriter, p *principal, err error) {
	out := readinessDetail{Status: "ready", Plugins: []PluginInfo{}}
	if s.cfg.Plugins != nil {
		out.Plugins = append(out.Plugins, s.cfg.Plugins.Plugins()...)
	}
	for _, pi := range out.Plugins {
		out.Degraded = out.Degraded || pi.Health != PluginHealthy
	}
	status := http.StatusOK
	if err != nil {
		e := s.notReadyError(p, err)
		out.Status, out.Error, status = "not_ready", &e, http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
}

func (s *Server) logNotReady(err error) {
	reason := err.Error()
	if prev := s.notReady.Swap(&reason); prev == nil || *prev != reason {
		s.logger.Warn("not ready", "error", err)
	}
}
