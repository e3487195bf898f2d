package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/bridge"
	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
	"github.com/purser-dev/purser/pricing"
)

// engine is everything wired together for one process.
type engine struct {
	cfg      *Config
	built    *built
	logger   hclog.Logger
	ledger   enforcer.Ledger
	enforcer *enforcer.Enforcer
	host     *host.Host
	registry *host.Registry
	tenants  *ledgerTenants // plugin isolation's tenant keys; nil without plugins
	closers  []func() error
}

type engineOptions struct {
	ledger    enforcer.Ledger // nil: open the configured store
	plugins   bool
	notifier  enforcer.Notifier
	observer  host.Observer
	logOutput io.Writer
	logger    hclog.Logger // default: a new one from the config
	// pricer replaces the configured LLM prices (replay's --prices table,
	// shared with its trace readers); nil: the config's table.
	pricer enforcer.Pricer
	// watchPrices re-reads pricing.llm.litellm_file when it changes
	// (serve); one-shot commands price with the table as loaded.
	watchPrices bool
}

func newLogger(b *built, cfg *Config, out io.Writer) hclog.Logger {
	if out == nil {
		out = os.Stderr
	}
	return hclog.New(&hclog.LoggerOptions{Name: "purser", Level: b.logLevel, JSONFormat: cfg.Log.JSON, Output: out})
}

// buildEngine wires ledger, plugins and enforcer. On error everything
// opened so far is closed.
func buildEngine(ctx context.Context, cfg *Config, opt engineOptions) (_ *engine, err error) {
	b, err := cfg.build()
	if err != nil {
		return nil, err
	}
	logger := opt.logger
	if logger == nil {
		logger = newLogger(b, cfg, opt.logOutput)
	}
	eng := &engine{cfg: cfg, built: b, logger: logger}
	defer func() {
		if err != nil {
			eng.Close()
		}
	}()
	if opt.plugins {
		if err := eng.startPlugins(ctx, opt.observer); err != nil {
			return nil, err
		}
	}
	eng.ledger = opt.ledger
	if eng.ledger == nil {
		if eng.ledger, err = eng.openLedger(ctx, opt.notifier); err != nil {
			return nil, err
		}
	}
	if eng.tenants != nil {
		eng.tenants.ledger.Store(&eng.ledger)
	}
	ec := b.enforcer
	ec.Logger = eng.logger.Named("enforcer")
	if err := eng.wirePrices(&ec, opt); err != nil {
		return nil, err
	}
	ec.CalibrationStore = calibrationStore(eng.ledger, cfg.Calibration)
	if eng.registry != nil {
		ec.Estimators = map[string]enforcer.Estimator{"*": bridge.NewEstimatorWithConfig(eng.registry,
			bridge.EstimatorConfig{EstimatePerCallMaxNanos: b.estimatePerCallMax})}
		ec.PolicyProvider = bridge.NewPolicies(eng.registry)
	}
	if eng.enforcer, err = enforcer.New(eng.ledger, ec); err != nil {
		return nil, err
	}
	return eng, nil
}

// wirePrices gives the LLM rule its prices: the caller's table, else the
// one the config built (the embedded LiteLLM snapshot by default), which
// is watched when serving from pricing.llm.litellm_file. A watched file
// that changes is swapped in atomically; a bad one keeps the old table.
func (eng *engine) wirePrices(ec *enforcer.Config, opt engineOptions) error {
	file := eng.cfg.Pricing.LLM.LiteLLMFile
	switch {
	case opt.pricer != nil:
		ec.LLM.Prices = opt.pricer
	case opt.watchPrices && file != "":
		live, err := pricing.Watch(file, eng.built.pricesOpt, eng.logger.Named("prices"))
		if err != nil {
			return fmt.Errorf("pricing.llm.litellm_file: %w", err)
		}
		eng.closers = append(eng.closers, live.Close)
		ec.LLM.Prices = live
	}
	if t := eng.built.prices; t != nil {
		o := t.Origin()
		eng.logger.Info("LLM prices", "source", o.Source, "entries", t.Len(), "load_time", o.LoadTime, "watched", opt.watchPrices && file != "")
	}
	return nil
}

func (eng *engine) ledgerOptions(n enforcer.Notifier) enforcer.LedgerOptions {
	return enforcer.LedgerOptions{Notifier: n, ThresholdsPct: eng.cfg.Thresholds, RetainSettled: eng.cfg.Reservation.RetainSettled}
}

func (eng *engine) openLedger(ctx context.Context, n enforcer.Notifier) (enforcer.Ledger, error) {
	switch eng.cfg.Store.Kind {
	case "memory":
		return enforcer.NewMemoryLedger(eng.ledgerOptions(n)), nil
	case "sqlite":
		return eng.openSQLite(ctx, n)
	case "postgres":
		return eng.openPostgres(ctx, n)
	}
	return nil, fmt.Errorf("store.kind %q is not supported", eng.cfg.Store.Kind)
}

// startPlugins loads the configured plugins; files that do not exist are
// skipped with a warning (the shipped defaults are relative to the repo).
func (eng *engine) startPlugins(ctx context.Context, obs host.Observer) error {
	eng.tenants = &ledgerTenants{}
	h, err := host.New(ctx, host.Config{Limits: eng.built.limits, CompilationCacheDir: eng.cfg.Plugins.CompilationCacheDir,
		Logger: eng.logger.Named("host"), Observer: obs, Tenants: eng.tenants, Signatures: eng.built.signatures})
	if err != nil {
		return fmt.Errorf("plugin host: %w", err)
	}
	eng.host = h
	eng.closers = append(eng.closers, func() error { return h.Close(context.WithoutCancel(ctx)) })
	var specs []host.Spec
	for _, s := range eng.built.plugins {
		if !fileExists(s.File) {
			eng.logger.Warn("plugin file not found, skipped", "path", s.File)
			continue
		}
		specs = append(specs, s)
	}
	bundled, attachBundle := eng.startBundle(ctx, h, specs)
	specs = append(specs, bundled...)
	reg, err := h.NewRegistry(ctx, host.RegistryConfig{Dir: eng.cfg.Plugins.Dir, Plugins: specs, Watch: eng.cfg.Plugins.Watch,
		ManifestChangeAllowed: eng.cfg.Plugins.ReloadManifestChangeAllowed})
	if reg == nil {
		return fmt.Errorf("plugins: %w", err)
	}
	if err != nil {
		eng.logger.Error("some plugins failed to load; their fallbacks apply", "error", err)
	}
	eng.registry = reg
	eng.closers = append(eng.closers, reg.Close)
	attachBundle(reg)
	return nil
}

// applyAccounts makes the configured accounts exist. Config is
// declarative for limits and labels: an existing account gets the
// configured limit (spend is never rewritten).
func (eng *engine) applyAccounts(ctx context.Context) error {
	for _, a := range eng.built.accounts {
		_, err := eng.enforcer.CreateAccount(ctx, a)
		if errors.Is(err, enforcer.ErrAccountExists) {
			err = eng.reconcileAccount(ctx, a)
		}
		if err != nil {
			return fmt.Errorf("accounts: %s: %w", a.ID, err)
		}
	}
	return nil
}

func (eng *engine) reconcileAccount(ctx context.Context, a enforcer.AccountOptions) error {
	limit := a.Limit
	if a.Tier != "" {
		l := eng.built.enforcer.Tiers[a.Tier]
		limit = &l
	}
	if a.PercentOfParent != 0 {
		return nil // fixed at creation
	}
	if _, err := eng.ledger.SetLimit(ctx, a.ID, limit); err != nil {
		return err
	}
	if a.Labels != nil {
		_, err := eng.ledger.SetLabels(ctx, a.ID, a.Labels)
		return err
	}
	return nil
}

// Close releases everything in reverse order of opening.
func (eng *engine) Close() {
	for i := len(eng.closers) - 1; i >= 0; i-- {
		if err := eng.closers[i](); err != nil {
			eng.logger.Error("shutdown", "error", err)
		}
	}
	eng.closers = nil
}
