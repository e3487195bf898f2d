package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
	"github.com/purser-dev/purser/pricing"
	"github.com/purser-dev/purser/server"
	"github.com/purser-dev/purser/signing"
)

// problems collects every configuration error with its key path, so one
// run reports them all.
type problems struct{ errs []error }

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return &ConfigError{Problems: p.errs}
}

// ConfigError lists every problem found in the configuration.
type ConfigError struct{ Problems []error }

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  " + p.Error()
	}
	return fmt.Sprintf("invalid configuration (%d problem(s)):\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

func (p *problems) usd(path, s string) enforcer.Nanos {
	n, err := enforcer.ParseUSD(s)
	if err != nil {
		p.add(path, "%v", err)
	}
	return n
}

// built is the typed result of a valid Config.
type built struct {
	enforcer enforcer.Config
	accounts []enforcer.AccountOptions
	tokens   []server.Token
	plugins  []host.Spec
	limits   host.Limits
	// estimatePerCallMax bounds plugin estimates (bridge.EstimatorConfig).
	estimatePerCallMax enforcer.Nanos
	logLevel           hclog.Level
	// prices is the LLM price table (embedded snapshot or
	// pricing.llm.litellm_file, with the config's overrides); nil when
	// it did not load (a problem is reported).
	prices    *pricing.Table
	pricesOpt pricing.Options
	// signatures is the plugin signature policy; nil: not checked.
	signatures *signing.Policy
	bundle     *bundleSetup // plugins.bundle; nil: none
}

func (c *Config) build() (*built, error) {
	var p problems
	b := &built{enforcer: enforcer.DefaultConfig()}
	c.buildPricing(&p, b)
	c.Calibration.build(&p, &b.enforcer)
	c.buildLedgerRules(&p, b)
	b.tokens = c.buildTokens(&p)
	b.limits = c.Plugins.Limits.toHost(&p, "plugins.limits")
	b.estimatePerCallMax = c.Plugins.estimatePerCallMax(&p)
	b.plugins = c.buildPlugins(&p)
	b.signatures = c.Plugins.buildSignatures(&p)
	b.bundle = c.Plugins.Bundle.build(&p, c.Plugins.TrustedKeys)
	c.Server.validate(&p)
	c.Notifier.Webhook.validate(&p)
	switch c.Store.Kind {
	case "sqlite", "memory":
		if c.Store.DSN != "" {
			p.add("store.dsn", "is only used with store.kind postgres (store.kind is %q)", c.Store.Kind)
		}
	case "postgres":
		c.Store.validatePostgres(&p)
	default:
		p.add("store.kind", "must be sqlite, memory or postgres, got %q", c.Store.Kind)
	}
	b.logLevel = hclog.LevelFromString(c.Log.Level)
	if b.logLevel == hclog.NoLevel {
		p.add("log.level", "must be trace, debug, info, warn or error, got %q", c.Log.Level)
	}
	return b, p.err()
}

func (s ServerConfig) validate(p *problems) {
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		p.add("server.addr", "%v", err)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"read_header_timeout", s.ReadHeaderTimeout}, {"read_timeout", s.ReadTimeout}, {"write_timeout", s.WriteTimeout},
		{"idle_timeout", s.IdleTimeout}, {"shutdown_timeout", s.ShutdownTimeout}} {
		if d.v <= 0 {
			p.add("server."+d.key, "must be > 0, got %s", d.v)
		}
	}
	if s.ReadHeaderTimeout > s.ReadTimeout {
		p.add("server.read_header_timeout", "must be <= server.read_timeout (%s), got %s", s.ReadTimeout, s.ReadHeaderTimeout)
	}
	if s.ConnectionsMax < 1 || s.ConnectionsMax > 1<<20 {
		p.add("server.connections_max", "must be within 1..1048576, got %d", s.ConnectionsMax)
	}
	if s.BodyBytesMax < 1 {
		p.add("server.body_bytes_max", "must be > 0, got %d", s.BodyBytesMax)
	}
}

// webhookSecretMin is the shortest signing secret accepted, in bytes.
const webhookSecretMin = 16

func (w WebhookConfig) validate(p *problems) {
	const path = "notifier.webhook."
	if w.URL == "" {
		return
	}
	if u, err := neturl.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(path+"url", "must be an absolute http:// or https:// URL")
	}
	if len(w.Secret) < webhookSecretMin {
		p.add(path+"secret", "is required with a url and must be at least %d bytes (e.g. openssl rand -hex 32; "+
			"PURSER_NOTIFIER__WEBHOOK__SECRET keeps it out of the file)", webhookSecretMin)
	}
	for key, d := range map[string]time.Duration{"timeout": w.Timeout, "backoff": w.Backoff, "backoff_max": w.BackoffMax,
		"delivery_timeout": w.DeliveryTimeout} {
		if d <= 0 {
			p.add(path+key, "must be > 0, got %s", d)
		}
	}
	if w.Backoff > w.BackoffMax {
		p.add(path+"backoff", "must be <= notifier.webhook.backoff_max (%s), got %s", w.BackoffMax, w.Backoff)
	}
	if w.AttemptsMax < 1 || w.AttemptsMax > 100 {
		p.add(path+"attempts_max", "must be within 1..100, got %d", w.AttemptsMax)
	}
	if w.QueueMax < 1 || w.QueueMax > 1<<20 {
		p.add(path+"queue_max", "must be within 1..1048576, got %d", w.QueueMax)
	}
}

func (c *Config) buildPricing(p *problems, b *built) {
	ec := &b.enforcer
	over := map[string]enforcer.Nanos{}
	for _, tool := range sortedKeys(c.Pricing.Table) {
		over[tool] = p.usd("pricing.table."+tool, c.Pricing.Table[tool])
	}
	if t, err := ec.Table.With(over); err != nil {
		p.add("pricing.table", "%v", err)
	} else {
		ec.Table = t
	}
	ec.Unknown.Base = p.usd("pricing.unknown.base_usd", c.Pricing.Unknown.BaseUSD)
	buf, err := enforcer.ParseUSD(c.Pricing.Unknown.Buffer) // a ratio, read exactly like money
	if err != nil || buf < enforcer.NanosPerUSD || buf%100_000 != 0 {
		p.add("pricing.unknown.buffer", "must be a decimal >= 1.0 with at most 4 decimals (e.g. 1.20), got %q", c.Pricing.Unknown.Buffer)
	}
	ec.Unknown.BufferBP = int64(buf) / 100_000
	ec.Unknown.Strict = c.Pricing.Unknown.Strict
	if ec.Unknown.Base <= 0 {
		p.add("pricing.unknown.base_usd", "must be > 0 so unknown tools are never free")
	}
	c.buildLLM(p, b)
}

func (c *Config) buildLLM(p *problems, b *built) {
	l, r := c.Pricing.LLM, &b.enforcer.LLM
	r.Tools = append([]string{"LLM"}, l.Aliases...)
	r.Minimum = p.usd("pricing.llm.minimum_usd", l.MinimumUSD)
	def, err := enforcer.ParsePerMTokUSD(l.DefaultUSDPerMTok)
	if err != nil {
		p.add("pricing.llm.default_usd_per_mtok", "%v", err)
	}
	r.DefaultPrice = def
	b.pricesOpt = pricing.Options{UnknownModel: l.UnknownModel, Overrides: map[string]enforcer.ModelPrice{}}
	for _, m := range sortedKeys(l.Models) {
		b.pricesOpt.Overrides[m] = modelPrice(p, "pricing.llm.models."+m, l.Models[m])
	}
	b.prices, err = pricing.Load(l.LiteLLMFile, b.pricesOpt)
	switch {
	case errors.Is(err, pricing.ErrUnknownModel):
		p.add("pricing.llm.unknown_model", "%v", err)
	case err != nil:
		p.add("pricing.llm.litellm_file", "%v", err)
	default:
		r.Prices = b.prices
	}
}

func modelPrice(p *problems, path string, m ModelConfig) enforcer.ModelPrice {
	parse := func(field, s string) enforcer.PerMTok {
		if s == "" {
			return 0
		}
		v, err := enforcer.ParsePerTokenUSD(s)
		if err != nil {
			p.add(path+"."+field, "%v", err)
		}
		return v
	}
	// Both are required: an absent price would silently be $0.
	for _, f := range [...]struct{ key, v string }{{"input_usd_per_token", m.InputUSDPerToken}, {"output_usd_per_token", m.OutputUSDPerToken}} {
		if f.v == "" {
			p.add(path+"."+f.key, "is required")
		}
	}
	return enforcer.ModelPrice{Input: parse("input_usd_per_token", m.InputUSDPerToken),
		Output: parse("output_usd_per_token", m.OutputUSDPerToken), CacheRead: parse("cache_read_usd_per_token", m.CacheReadUSDPerToken),
		CacheWrite:   parse("cache_write_usd_per_token", m.CacheWriteUSDPerToken),
		CacheWrite1h: parse("cache_write_1h_usd_per_token", m.CacheWrite1hUSDPerToken)}
}

func (c *Config) buildLedgerRules(p *problems, b *built) {
	ec := &b.enforcer
	ec.ReservationTTL, ec.ApprovalTTL, ec.ApprovalsPendingMax = c.Reservation.TTL, c.Approvals.TTL, c.Approvals.PendingMax
	if c.Reservation.TTL <= 0 || c.Reservation.TTL > c.Reservation.TTLMax {
		p.add("reservations.ttl", "must be > 0 and <= reservations.ttl_max (%s), got %s", c.Reservation.TTLMax, c.Reservation.TTL)
	}
	ec.Tiers = map[string]enforcer.Nanos{}
	for _, t := range sortedKeys(c.Tiers) {
		ec.Tiers[t] = p.usd("tiers."+t, c.Tiers[t])
	}
	for i, pct := range c.Thresholds {
		if pct <= 0 || pct > 1000 {
			p.add(fmt.Sprintf("thresholds_pct[%d]", i), "must be within 1..1000, got %d", pct)
		}
	}
	seen := map[string]bool{}
	for i, a := range c.Accounts {
		path := fmt.Sprintf("accounts[%d]", i)
		if a.ID == "" {
			p.add(path+".id", "is required")
		}
		if seen[a.ID] {
			p.add(path+".id", "%q is declared twice", a.ID)
		}
		seen[a.ID] = true
		if a.Parent != "" && !seen[a.Parent] {
			p.add(path+".parent", "%q must be declared before its child %q", a.Parent, a.ID)
		}
		if err := enforcer.CheckAccountName(a.ID, a.Parent); err != nil {
			p.add(path+".parent", "%v", err)
		}
		opt := enforcer.AccountOptions{ID: a.ID, Parent: a.Parent, Tier: a.Tier, PercentOfParent: a.PercentOfParent,
			Supervisor: a.Supervisor, Labels: a.Labels}
		if a.LimitUSD != "" {
			l := p.usd(path+".limit_usd", a.LimitUSD)
			opt.Limit = &l
		}
		if _, ok := ec.Tiers[a.Tier]; a.Tier != "" && !ok {
			p.add(path+".tier", "unknown tier %q (known: %s)", a.Tier, strings.Join(sortedKeys(ec.Tiers), ", "))
		}
		b.accounts = append(b.accounts, opt)
	}
}

func (c *Config) buildTokens(p *problems) []server.Token {
	var out []server.Token
	for i, t := range c.Auth.Tokens {
		path := fmt.Sprintf("auth.tokens[%d]", i)
		if t.Role != string(server.RoleAdmin) && t.Role != string(server.RoleAgent) {
			p.add(path+".role", "must be admin or agent, got %q", t.Role)
		}
		if len(t.SHA256) != 64 {
			p.add(path+".sha256", "must be the 64-hex SHA-256 of the token (purser token hash TOKEN prints it)")
		}
		out = append(out, server.Token{Name: t.Name, SHA256: strings.ToLower(t.SHA256), Role: server.Role(t.Role), Accounts: t.Accounts})
	}
	return out
}

func (c *Config) buildPlugins(p *problems) []host.Spec {
	var out []host.Spec
	for i, e := range c.Plugins.Entries {
		path := fmt.Sprintf("plugins.entries[%d]", i)
		if e.Path == "" {
			p.add(path+".path", "is required")
			continue
		}
		spec := host.Spec{File: e.Path, SHA256: strings.ToLower(e.SHA256), Order: e.Order, Limits: e.Limits.toHost(p, path+".limits")}
		iso, err := host.ParseIsolation(e.Isolation)
		if err != nil {
			p.add(path+".isolation", "must be tenant or shared, got %q", e.Isolation)
		}
		spec.Isolation = iso
		switch e.FailMode {
		case "", "closed":
		case "open":
			spec.FailMode = host.FailOpen
		default:
			p.add(path+".fail_mode", "must be closed or open, got %q", e.FailMode)
		}
		if e.Config != nil {
			raw, err := json.Marshal(e.Config)
			if err != nil {
				p.add(path+".config", "%v", err)
			}
			spec.Config = raw
		}
		out = append(out, spec)
	}
	return out
}

func (c PluginsConfig) estimatePerCallMax(p *problems) enforcer.Nanos {
	if c.EstimatePerCallMaxUSD == "" {
		return 0 // the bridge's default
	}
	n, err := enforcer.ParseUSD(c.EstimatePerCallMaxUSD)
	if err != nil || n <= 0 {
		p.add("plugins.estimate_per_call_max_usd", "must be a positive USD amount, got %q", c.EstimatePerCallMaxUSD)
		return 0
	}
	return n
}

// moduleLimits checks and converts the load limits (0 = the default).
func (l LimitsConfig) moduleLimits(p *problems, path string) host.ModuleLimits {
	m := host.ModuleLimits{ModuleBytesMax: l.ModuleBytesMax, TableElementsMax: l.TableElementsMax,
		TableElementsTotalMax: l.TableElementsTotalMax, GlobalsMax: l.GlobalsMax, FunctionsMax: l.FunctionsMax,
		FunctionBodyBytesMax: l.FunctionBodyBytesMax, BlockNestingDepthMax: l.BlockNestingDepthMax, CodeBytesMax: l.CodeBytesMax,
		FunctionLocalsMax: l.FunctionLocalsMax, LocalsTotalMax: l.LocalsTotalMax,
		DataSegmentBytesMax: l.DataSegmentBytesMax, DataBytesTotalMax: l.DataBytesTotalMax,
		ElementSegmentEntriesMax: l.ElementSegmentEntriesMax, ElementEntriesTotalMax: l.ElementEntriesTotalMax}
	for _, f := range []struct {
		key string
		v   int
	}{{"module_bytes_max", m.ModuleBytesMax}, {"table_elements_max", m.TableElementsMax},
		{"table_elements_total_max", m.TableElementsTotalMax}, {"globals_max", m.GlobalsMax}, {"functions_max", m.FunctionsMax},
		{"function_body_bytes_max", m.FunctionBodyBytesMax}, {"block_nesting_depth_max", m.BlockNestingDepthMax},
		{"function_locals_max", m.FunctionLocalsMax}, {"locals_total_max", m.LocalsTotalMax},
		{"code_bytes_max", m.CodeBytesMax}, {"data_segment_bytes_max", m.DataSegmentBytesMax},
		{"data_bytes_total_max", m.DataBytesTotalMax}, {"element_segment_entries_max", m.ElementSegmentEntriesMax},
		{"element_entries_total_max", m.ElementEntriesTotalMax}} {
		if f.v < 0 || f.v > 1<<30 {
			p.add(path+"."+f.key, "must be in [0, 2^30] (0 = default), got %d", f.v)
		}
	}
	return m
}

func (l LimitsConfig) toHost(p *problems, path string) host.Limits {
	for name, v := range map[string]int64{"input_bytes_max": int64(l.InputBytesMax), "output_bytes_max": int64(l.OutputBytesMax),
		"log_bytes_per_call_max": int64(l.LogBytesPerCallMax), "instances_max": int64(l.InstancesMax),
		"failures_before_unhealthy": int64(l.FailuresBeforeUnhealthy), "call_timeout": int64(l.CallTimeout), "init_timeout": int64(l.InitTimeout),
		"fuel_per_call_max": l.FuelPerCallMax, "fuel_init_max": l.FuelInitMax} {
		if v < 0 {
			p.add(path+"."+name, "must be >= 0 (0 = default), got %d", v)
		}
	}
	if l.MemoryPagesMax > 65536 {
		p.add(path+".memory_pages_max", "must be <= 65536 (4 GiB), got %d", l.MemoryPagesMax)
	}
	for name, v := range map[string]int64{"fuel_per_call_max": l.FuelPerCallMax, "fuel_init_max": l.FuelInitMax} {
		if v > 1<<62 {
			p.add(path+"."+name, "must be <= 2^62, got %d", v)
		}
	}
	if l.FuelPerInputByte > 1<<30 {
		p.add(path+".fuel_per_input_byte", "must be <= 2^30 (negative: no scaling), got %d", l.FuelPerInputByte)
	}
	return host.Limits{MemoryPagesMax: l.MemoryPagesMax, CallTimeout: l.CallTimeout, InitTimeout: l.InitTimeout,
		InputBytesMax: l.InputBytesMax, OutputBytesMax: l.OutputBytesMax, LogBytesPerCallMax: l.LogBytesPerCallMax,
		InstancesMax: l.InstancesMax, FailuresBeforeUnhealthy: l.FailuresBeforeUnhealthy,
		FuelPerCallMax: l.FuelPerCallMax, FuelPerInputByte: l.FuelPerInputByte, FuelInitMax: l.FuelInitMax,
		ModuleLimits: l.moduleLimits(p, path), Containment: l.containment(p, path)}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
