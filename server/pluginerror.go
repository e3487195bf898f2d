package server

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/purser-dev/purser/enforcer"
)

// PluginErrorNamer names the plugin behind a failure ("plugin:<name>@<12
// hex>", "" if none) and its kind (host.ErrorKind's names: fuel_exhausted,
// timeout, trap, guest_error, pool_wait, unhealthy, ...). cmd/ supplies it
// so that the server never imports the Wasm host.
type PluginErrorNamer func(err error) (plugin, code string)

// pluginError is plugin_error in estimate and decision responses: the
// plugin failure that changed the outcome.
type pluginError struct {
	Plugin  string `json:"plugin"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// pluginErrorMessageBytesMax bounds plugin_error.message; the host already
// bounds a guest's own text, this bounds what wraps it.
const pluginErrorMessageBytesMax = 1024

// estimatePluginError reports an estimate that fell back because its
// estimator failed; a declined call (unsupported) sets no FallbackErr.
func (s *Server) estimatePluginError(est enforcer.Estimate) *pluginError {
	if est.FallbackErr == nil {
		return nil
	}
	return s.pluginErrorOf("", est.FallbackErr)
}

// decisionPluginError picks the failure that changed d most: a failed
// policy that denied (fail-closed or refused params; the chain stops at
// it), else an estimate that fell back (every layer saw its price), else
// the first policy skipped fail-open. The decision log keeps them all.
func (s *Server) decisionPluginError(d enforcer.Decision) *pluginError {
	var skipped *enforcer.PolicyOutcome
	for i := range d.Policies {
		o := &d.Policies[i]
		switch {
		case o.Err == nil:
		case !o.FailOpen:
			return s.pluginErrorOf(o.Policy, o.Err)
		case skipped == nil:
			skipped = o
		}
	}
	if pe := s.estimatePluginError(d.Estimate); pe != nil || skipped == nil {
		return pe
	}
	return s.pluginErrorOf(skipped.Policy, skipped.Err)
}

// pluginErrorOf describes err; policy, when set, names the failing policy.
// The message is the caller's own call's error: the host keeps other
// callers' guest text out of it (a quarantine names only the last kind).
func (s *Server) pluginErrorOf(policy string, err error) *pluginError {
	plugin, code := "", ""
	if s.cfg.PluginErrors != nil {
		plugin, code = s.cfg.PluginErrors(err)
	}
	if errors.Is(err, enforcer.ErrInvalidParams) {
		code = "invalid_params" // the bridge maps it onto the enforcer's sentinel
	}
	if policy != "" {
		plugin = policy
	}
	if plugin == "" {
		plugin = "estimator" // a Go estimator, not a plugin
	}
	if code == "" {
		code = "other"
	}
	msg := err.Error()
	if code == "tenant" {
		// The tenant resolver's error comes from the ledger and may name
		// its host; it stays in the decision log.
		msg = plugin + ": the call's tenant (root account) could not be resolved"
	}
	return &pluginError{Plugin: plugin, Code: code, Message: boundText(msg, pluginErrorMessageBytesMax)}
}

// boundText is s as one line of valid UTF-8 (control characters become
// spaces) cut to at most n bytes on a rune boundary.
func boundText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
