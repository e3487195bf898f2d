package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/purser-dev/purser/enforcer"
)

// commonFlags are shared by estimate and check.
type commonFlags struct {
	config, tool, params string
	json, noPlugins      bool

	prices string // --prices: pricing.llm.litellm_file
}

func (c *commonFlags) register(fsName string, out io.Writer) *flagSet {
	fs := newFlags(fsName, out)
	fs.StringVar(&c.config, "config", "", "YAML config file (default: embedded defaults)")
	fs.StringVar(&c.tool, "tool", "", "tool name (required), e.g. Read, Bash, LLM")
	fs.StringVar(&c.params, "params", "", "tool params as a JSON object")
	fs.BoolVar(&c.json, "json", false, "print JSON")
	fs.BoolVar(&c.noPlugins, "no-plugins", false, "do not load Wasm plugins")
	fs.StringVar(&c.prices, "prices", "", "LiteLLM price file replacing the embedded snapshot (pricing.llm.litellm_file)")
	return &flagSet{fs}
}

func (c *commonFlags) call(account string) (enforcer.Call, error) {
	if c.tool == "" {
		return enforcer.Call{}, usagef("--tool is required")
	}
	call := enforcer.Call{Account: account, Tool: c.tool}
	if c.params != "" {
		dec := json.NewDecoder(strings.NewReader(c.params))
		dec.UseNumber()
		if err := dec.Decode(&call.Params); err != nil {
			return call, usagef("--params must be a JSON object: %v", err)
		}
	}
	return call, nil
}

func (c *commonFlags) engine(ctx context.Context, out io.Writer) (*engine, error) {
	over := map[string]any{"store.kind": "memory", "plugins.watch": false, "log.level": "error"}
	if c.prices != "" {
		over["pricing.llm.litellm_file"] = c.prices
	}
	cfg, err := loadConfig(c.config, over)
	if err != nil {
		return nil, err
	}
	return buildEngine(ctx, cfg, engineOptions{plugins: !c.noPlugins, logOutput: out})
}

func runEstimate(ctx context.Context, args []string, out io.Writer) error {
	var c commonFlags
	var explain bool
	fs := c.register("estimate", out)
	fs.fs.BoolVar(&explain, "explain", false, "print the arithmetic of an LLM estimate: price, tokens, cache, output, calibration")
	if err := fs.parse(args); err != nil {
		return err
	}
	call, err := c.call("")
	if err != nil {
		return err
	}
	eng, err := c.engine(ctx, out)
	if err != nil {
		return err
	}
	defer eng.Close()
	est, err := eng.enforcer.Estimate(ctx, call)
	if err != nil {
		return err
	}
	if c.json {
		doc := map[string]any{"tool": call.Tool, "estimate_usd": est.Nanos.Decimal(), "estimate_nanos": int64(est.Nanos),
			"source": est.Source, "fallback_error": errText(est.FallbackErr)}
		if explain {
			doc["explain"] = explainLines(est)
		}
		return printJSON(out, doc)
	}
	fmt.Fprintf(out, "%s  %s  (source: %s)\n", call.Tool, est.Nanos, est.Source)
	if est.FallbackErr != nil {
		fmt.Fprintf(out, "fell back because: %v\n", est.FallbackErr)
	}
	if explain {
		for _, l := range explainLines(est) {
			fmt.Fprintf(out, "  %s\n", l)
		}
	}
	return nil
}

func runCheck(ctx context.Context, args []string, out io.Writer) error {
	var c commonFlags
	fs := c.register("check", out)
	limit := fs.fs.String("limit", "", "the throwaway account's limit in USD (required)")
	used := fs.fs.String("used", "0", "USD already spent on the account")
	if err := fs.parse(args); err != nil {
		return err
	}
	call, err := c.call("check")
	if err != nil {
		return err
	}
	lim, err := enforcer.ParseUSD(*limit)
	if err != nil {
		return usagef("--limit: %v", err)
	}
	spent, err := enforcer.ParseUSD(*used)
	if err != nil {
		return usagef("--used: %v", err)
	}
	eng, err := c.engine(ctx, out)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := seedThrowaway(ctx, eng, lim, spent); err != nil {
		return err
	}
	d, err := eng.enforcer.Check(ctx, call)
	if err != nil {
		return err
	}
	if err := printDecision(out, c.json, d); err != nil {
		return err
	}
	switch d.Verdict {
	case enforcer.Deny:
		return &exitError{exitDeny}
	case enforcer.Ask:
		return &exitError{exitAsk}
	}
	return nil
}

// seedThrowaway creates the "check" account with spent already committed.
func seedThrowaway(ctx context.Context, eng *engine, limit, spent enforcer.Nanos) error {
	l := eng.ledger
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "check", Limit: &limit}); err != nil {
		return err
	}
	if spent == 0 {
		return nil
	}
	if _, err := l.SetLimit(ctx, "check", nil); err != nil {
		return err
	}
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "used", Account: "check", Tool: "used", Estimate: spent, TTL: 1 << 40}); err != nil {
		return err
	}
	if _, err := l.Commit(ctx, "used", &spent, enforcer.CostActual); err != nil {
		return err
	}
	_, err := l.SetLimit(ctx, "check", &limit)
	return err
}

func printDecision(out io.Writer, asJSON bool, d enforcer.Decision) error {
	rem := any(nil)
	if d.Remaining != enforcer.MaxNanos {
		rem = int64(d.Remaining)
	}
	if asJSON {
		return printJSON(out, map[string]any{"decision": d.Verdict.String(), "reason": d.Reason, "layer": d.Layer, "policy": d.Policy,
			"estimate_usd": d.Estimate.Nanos.Decimal(), "estimate_nanos": int64(d.Estimate.Nanos), "source": d.Estimate.Source,
			"remaining_nanos": rem})
	}
	fmt.Fprintf(out, "%s  estimate %s (source: %s)\n", strings.ToUpper(d.Verdict.String()), d.Estimate.Nanos, d.Estimate.Source)
	if d.Reason != "" {
		fmt.Fprintf(out, "reason: %s\n", d.Reason)
	}
	return nil
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// explainLines is the arithmetic of an estimate: an LLM estimate's steps,
// else one line saying where the figure came from.
func explainLines(est enforcer.Estimate) []string {
	if est.Explain != nil {
		return est.Explain.Lines()
	}
	return []string{fmt.Sprintf("%s from %s (no arithmetic beyond the source)", est.Nanos, est.Source)}
}
