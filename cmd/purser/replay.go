package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/replay"
)

const replayUsage = "replay real agent traces against a budget: purser replay TRACE|DIR... [--budget USD] [--trace-budget USD|P%] [--stream] [--json] [--chart FILE.svg]"

type replayFlags struct {
	config, budget, traceBudget, chart, format, prices string
	json, noPlugins, stream                            bool
	top                                                int
}

func (f *replayFlags) register(out io.Writer) *flagSet {
	fs := newFlags("replay", out)
	fs.StringVar(&f.config, "config", "", "YAML config file: estimators, plugins, policies, thresholds (default: embedded defaults)")
	fs.StringVar(&f.budget, "budget", "", "limit of the pool account every trace draws on, in USD (default: unlimited)")
	fs.StringVar(&f.traceBudget, "trace-budget", "", "limit of each trace's own account: USD, or P% of the trace's own actual cost, e.g. 25% (default: none)")
	fs.BoolVar(&f.stream, "stream", false, "simulate streaming: a call whose actual exceeds its hold extends it in steps, and is cut where an extension is denied")
	fs.StringVar(&f.chart, "chart", "", "write an SVG chart of cumulative estimate, actual and limit to this file")
	fs.StringVar(&f.format, "format", "auto", "trace format: auto, claude-code, mini-swe-agent, tau-bench, purser-jsonl")
	fs.StringVar(&f.prices, "prices", "", "LiteLLM model_prices_and_context_window.json to price reported tokens (default: built-in table)")
	fs.BoolVar(&f.json, "json", false, "print the report as one JSON object")
	fs.BoolVar(&f.noPlugins, "no-plugins", false, "do not load Wasm plugins")
	fs.IntVar(&f.top, "top", 10, "how many of the costliest steps to list")
	fs.Usage = func() {
		fmt.Fprintln(out, "Usage: "+strings.TrimPrefix(replayUsage, "replay real agent traces against a budget: ")+"\n\nFlags:")
		fs.PrintDefaults()
	}
	return &flagSet{fs}
}

// parseInterleaved accepts flags before, between and after the trace paths.
func (f *flagSet) parseInterleaved(args []string) ([]string, error) {
	var paths []string
	for {
		if err := parseFlags(f.fs, args); err != nil {
			return nil, err
		}
		if f.fs.NArg() == 0 {
			return paths, nil
		}
		paths = append(paths, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
}

func runReplay(ctx context.Context, args []string, out io.Writer) error {
	var f replayFlags
	fs := f.register(out)
	paths, err := fs.parseInterleaved(args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("replay needs at least one trace file or folder (purser replay --help)")
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	traces, err := replay.ReadPaths(paths, opts.format, opts.prices)
	if err != nil {
		return err
	}
	if len(traces) == 0 {
		return fmt.Errorf("no traces found in %s", strings.Join(paths, ", "))
	}
	rep, err := f.run(ctx, traces, opts)
	if err != nil {
		return err
	}
	if f.chart != "" {
		if err := writeChart(f.chart, rep, paths); err != nil {
			return err
		}
	}
	if f.json {
		return printJSON(out, rep)
	}
	return rep.WriteText(out)
}

type replayOptions struct {
	format              replay.Format
	prices              *replay.Prices
	budget, traceBudget *enforcer.Nanos
	traceBudgetPPM      int64 // --trace-budget P%
}

func (f *replayFlags) options() (replayOptions, error) {
	var o replayOptions
	var err error
	if o.format, err = replay.ParseFormat(f.format); err != nil {
		return o, usagef("--format: %v", err)
	}
	if o.budget, err = optionalUSD("--budget", f.budget); err != nil {
		return o, err
	}
	if strings.HasSuffix(strings.TrimSpace(f.traceBudget), "%") {
		if o.traceBudgetPPM, err = replay.ParsePercent(f.traceBudget); err != nil {
			return o, usagef("--trace-budget: %v", err)
		}
	} else if o.traceBudget, err = optionalUSD("--trace-budget", f.traceBudget); err != nil {
		return o, err
	}
	o.prices = replay.DefaultPrices()
	if f.prices != "" {
		if o.prices, err = replay.LoadPricesFile(f.prices); err != nil {
			return o, err
		}
	}
	return o, nil
}

func optionalUSD(flagName, s string) (*enforcer.Nanos, error) {
	if s == "" {
		return nil, nil
	}
	n, err := enforcer.ParseUSD(s)
	if err != nil {
		return nil, usagef("%s: %v", flagName, err)
	}
	return &n, nil
}

// run builds the engine from the config with an in-memory ledger on a
// step clock (TTLs and thresholds are deterministic) and replays.
func (f *replayFlags) run(ctx context.Context, traces []*replay.Trace, o replayOptions) (*replay.Report, error) {
	cfg, err := loadConfig(f.config, map[string]any{"store.kind": "memory", "plugins.watch": false, "log.level": "error"})
	if err != nil {
		return nil, err
	}
	clock, alerts := replay.NewStepClock(), &replay.AlertCollector{}
	ledger := enforcer.NewMemoryLedger(enforcer.LedgerOptions{Clock: clock, Notifier: alerts, ThresholdsPct: cfg.Thresholds})
	eng, err := buildEngine(ctx, cfg, engineOptions{ledger: ledger, plugins: !f.noPlugins, logOutput: os.Stderr})
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	r := &replay.Runner{Enforcer: eng.enforcer, Clock: clock, Alerts: alerts, Budget: o.budget, TraceBudget: o.traceBudget,
		TraceBudgetPPM: o.traceBudgetPPM, Stream: f.stream, TopN: f.top}
	if stderrIsTerminal() {
		r.Progress = progressBar(os.Stderr)
		defer fmt.Fprint(os.Stderr, "\r\033[K")
	}
	return r.Run(ctx, traces)
}

func writeChart(path string, rep *replay.Report, traces []string) error {
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--chart: %w", err)
	}
	names := make([]string, len(traces))
	for i, t := range traces {
		names[i] = filepath.Base(filepath.Clean(t))
	}
	title := fmt.Sprintf("purser replay: %s (%d traces, %d steps)", strings.Join(names, ", "), rep.Traces, rep.Steps)
	if err := rep.Series().WriteSVG(fh, title); err != nil {
		fh.Close()
		return fmt.Errorf("--chart %s: %w", path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("--chart %s: %w", path, err)
	}
	return nil
}

// stderrIsTerminal reports whether stderr is a character device (a
// terminal), where a progress bar helps instead of polluting a log.
func stderrIsTerminal() bool {
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func progressBar(w io.Writer) func(done, total int) {
	return func(done, total int) {
		const width = 30
		filled := width
		if total > 0 {
			filled = done * width / total
		}
		fmt.Fprintf(w, "\r[%s%s] %d/%d steps", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
	}
}
