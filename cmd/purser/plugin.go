package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/bridge"
	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
)

func runPlugin(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usagef("usage: purser plugin inspect FILE.wasm [--json] | test FILE.wasm --cases CASES.yaml | new --lang go NAME | keygen --out NAME | sign --key NAME.key FILE.wasm | verify --pub NAME.pub FILE.wasm")
	}
	switch args[0] {
	case "inspect":
		return runPluginInspect(ctx, args[1:], out)
	case "test":
		return runPluginTest(ctx, args[1:], out)
	case "new":
		return runPluginNew(ctx, args[1:], out)
	case "keygen":
		return runPluginKeygen(ctx, args[1:], out)
	case "sign":
		return runPluginSign(ctx, args[1:], out)
	case "verify":
		return runPluginVerify(ctx, args[1:], out)
	}
	return usagef("purser plugin: unknown subcommand %q (inspect, test, new, keygen, sign, verify)", args[0])
}

// splitFileArg accepts FILE before or after the flags.
func splitFileArg(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func quietHost(ctx context.Context) (*host.Host, error) {
	return host.New(ctx, host.Config{})
}

func runPluginInspect(ctx context.Context, args []string, out io.Writer) error {
	file, rest := splitFileArg(args)
	fs := newFlags("plugin inspect", out)
	asJSON := fs.Bool("json", false, "print JSON")
	config := fs.String("config", "", "plugin config JSON for the smoke test (plugins that require config refuse {})")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	}
	if file == "" {
		return usagef("usage: purser plugin inspect FILE.wasm [--json] [--config JSON]")
	}
	cfg, err := configJSON(nilIfEmpty(*config))
	if err != nil {
		return usagef("--config: %v", err)
	}
	h, err := quietHost(ctx)
	if err != nil {
		return err
	}
	defer h.Close(ctx)
	in, err := h.Inspect(ctx, host.Spec{File: file, Config: cfg})
	if err != nil {
		return err
	}
	// Without --config, a plugin whose purser_init refuses {} lacking keys
	// its schema requires is not invalid: it needs its config before it can
	// be smoke-tested. One that refuses {} without its schema saying why is.
	needsConfig := *config == "" && len(in.ConfigMissing) > 0
	if *asJSON {
		err = printJSON(out, inspectionJSON(in, needsConfig))
	} else {
		printInspection(out, in, needsConfig)
	}
	if err == nil && in.LoadError != nil && !needsConfig {
		return &exitError{exitDeny}
	}
	return err
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func inspectionJSON(in host.Inspection, needsConfig bool) map[string]any {
	m := map[string]any{"file": in.File, "sha256": in.SHA256, "size_bytes": in.SizeBytes, "exports": in.Exports, "imports": in.Imports,
		"valid": in.LoadError == nil, "status": inspectionStatus(in, needsConfig)}
	if in.LoadError != nil {
		m["error"] = in.LoadError.Error()
	}
	if in.ConfigRefused != "" {
		m["config_error"], m["config_missing"] = in.ConfigRefused, in.ConfigMissing
	}
	if in.LoadError == nil {
		m["init_fuel"], m["init_fuel_limit"] = in.InitFuel, in.InitFuelLimit
	}
	if mf := in.Manifest; mf != nil {
		m["name"], m["version"], m["kind"], m["abi_version"], m["tools"] = mf.Name, mf.Version, mf.Kind, mf.ABI, mf.Tools
		manifest := map[string]any{}
		_ = json.Unmarshal(mf.AppendJSON(nil), &manifest)
		m["manifest"] = manifest
	}
	return m
}

// inspectionStatus is "valid" (validated and smoke-tested), "needs_config"
// or "invalid".
func inspectionStatus(in host.Inspection, needsConfig bool) string {
	switch {
	case in.LoadError == nil:
		return "valid"
	case needsConfig:
		return "needs_config"
	}
	return "invalid"
}

func printInspection(out io.Writer, in host.Inspection, needsConfig bool) {
	fmt.Fprintf(out, "file:     %s\nsha256:   %s\nsize:     %d bytes\n", in.File, in.SHA256, in.SizeBytes)
	if mf := in.Manifest; mf != nil {
		fmt.Fprintf(out, "name:     %s\nversion:  %s\nkind:     %s\nabi:      %s\ntools:    %s\n", mf.Name, mf.Version, mf.Kind, mf.ABI, strings.Join(mf.Tools, ", "))
		if len(mf.ConfigSchema) > 0 {
			fmt.Fprintf(out, "config:   %s\n", mf.ConfigSchema)
		}
	}
	fmt.Fprintf(out, "exports:\n  %s\nimports:\n  %s\n", strings.Join(in.Exports, "\n  "), strings.Join(in.Imports, "\n  "))
	if needsConfig {
		fmt.Fprintf(out, "valid:    not smoke-tested: purser_init needs a config and refused {}: %s\n", in.ConfigRefused)
		printMissing(out, in.ConfigMissing)
		fmt.Fprintln(out, "(pass the plugin's config with --config JSON to smoke-test it)")
	} else if in.LoadError != nil {
		fmt.Fprintf(out, "INVALID:  %v\n", in.LoadError)
		printMissing(out, in.ConfigMissing)
		// Only a refusal by purser_init is about the config; for any other
		// the hint would send the author looking in the wrong place.
		var ce *host.CallError
		if errors.As(in.LoadError, &ce) && ce.Op == "init" {
			fmt.Fprintln(out, "(purser_init refused the config: pass the plugin's config with --config JSON)")
		}
	} else {
		fmt.Fprintln(out, "valid:    yes (validated and smoke-tested)")
		fmt.Fprintf(out, "startup:  %d fuel of %d (start, _initialize, manifest, purser_init)\n", in.InitFuel, in.InitFuelLimit)
	}
}

// testCase is one row of a plugin test table (YAML).
type testCase struct {
	Name     string            `json:"name"`
	Config   any               `json:"config"` // JSON text or a YAML mapping; overrides the file's config
	Tool     string            `json:"tool"`
	Account  string            `json:"account"`
	Params   map[string]any    `json:"params"`
	Labels   map[string]string `json:"labels"`
	Estimate string            `json:"estimate_usd"` // policies: the estimate under judgement
	Budget   struct {
		LimitUSD     string `json:"limit_usd"`
		CommittedUSD string `json:"committed_usd"`
		PendingUSD   string `json:"pending_usd"`
	} `json:"budget"`
	Want         string `json:"want"`          // policies: allow, ask, deny
	Reason       string `json:"reason"`        // exact reason, when given
	WantEstimate string `json:"want_estimate"` // estimators: decimal USD
	WantError    string `json:"want_error"`    // an ABI code name (bad_config, unsupported, ...)
	Message      string `json:"message"`
}

type caseFile struct {
	Config any        `json:"config"`
	Cases  []testCase `json:"cases"`
}

func runPluginTest(ctx context.Context, args []string, out io.Writer) error {
	file, rest := splitFileArg(args)
	fs := newFlags("plugin test", out)
	casesPath := fs.String("cases", "", "YAML table of cases (required)")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if file == "" || *casesPath == "" {
		return usagef("usage: purser plugin test FILE.wasm --cases CASES.yaml")
	}
	cf, err := readCases(*casesPath)
	if err != nil {
		return err
	}
	h, err := quietHost(ctx)
	if err != nil {
		return err
	}
	defer h.Close(ctx)
	failed := 0
	for i, c := range cf.Cases {
		info, err := runCase(ctx, h, file, cf.Config, c)
		if err != nil {
			failed++
			fmt.Fprintf(out, "FAIL %s (case %d): %v%s\n", c.Name, i+1, err, fuelNote(info))
			continue
		}
		fmt.Fprintf(out, "ok   %s%s\n", c.Name, fuelNote(info))
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", len(cf.Cases)-failed, failed)
	if failed > 0 {
		return &exitError{exitDeny}
	}
	return nil
}

func readCases(path string) (*caseFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--cases: %v", err)
	}
	m, err := yaml.Parser().Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: not YAML: %w", path, err)
	}
	j, _ := json.Marshal(m)
	var cf caseFile
	dec := json.NewDecoder(strings.NewReader(string(j)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(cf.Cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", path)
	}
	return &cf, nil
}

func configJSON(v any) (json.RawMessage, error) {
	switch c := v.(type) {
	case nil:
		return nil, nil
	case string:
		return json.RawMessage(c), nil // sent as given: refusing bad JSON is the plugin's job
	}
	return json.Marshal(v)
}

// fuelNote reports a case's fuel the way function runners report
// instruction counts: deterministic, so it belongs in test output.
func fuelNote(info host.CallInfo) string {
	if info.FuelLimit == 0 {
		return ""
	}
	return fmt.Sprintf("  (fuel %d of %d, %.2f%%)", info.Fuel, info.FuelLimit, 100*float64(info.Fuel)/float64(info.FuelLimit))
}

// runCase loads the plugin on a fresh instance, so the fuel it reports is
// the same on every run.
func runCase(ctx context.Context, h *host.Host, file string, fileCfg any, c testCase) (host.CallInfo, error) {
	cfgV := fileCfg
	if c.Config != nil {
		cfgV = c.Config
	}
	cfg, err := configJSON(cfgV)
	if err != nil {
		return host.CallInfo{}, err
	}
	p, err := h.Load(ctx, host.Spec{File: file, Config: cfg})
	if err != nil {
		return host.CallInfo{}, checkError(c, err, "load")
	}
	defer p.Close()
	call := enforcer.Call{Account: c.Account, Tool: c.Tool, Params: c.Params}
	if p.Kind() == abi.KindEstimator {
		return runEstimateCase(ctx, p, call, c)
	}
	return runAdmitCase(ctx, p, call, c)
}

func runEstimateCase(ctx context.Context, p *host.Plugin, call enforcer.Call, c testCase) (host.CallInfo, error) {
	req, err := bridge.EstimateRequest(call)
	if err != nil {
		return host.CallInfo{}, err
	}
	res, info, err := p.Estimate(ctx, req)
	if err != nil || c.WantError != "" {
		return info, checkError(c, err, "estimate")
	}
	want, err := enforcer.ParseUSD(c.WantEstimate)
	if err != nil {
		return info, fmt.Errorf("want_estimate: %v", err)
	}
	if got := enforcer.Nanos(res.Nanos); got != want {
		return info, fmt.Errorf("estimate %s, want %s", got, want)
	}
	return info, nil
}

func runAdmitCase(ctx context.Context, p *host.Plugin, call enforcer.Call, c testCase) (host.CallInfo, error) {
	in, err := c.policyInput(call)
	if err != nil {
		return host.CallInfo{}, err
	}
	req, err := bridge.AdmitRequest(in)
	if err != nil {
		return host.CallInfo{}, err
	}
	res, info, err := p.Admit(ctx, req)
	if err != nil || c.WantError != "" {
		return info, checkError(c, err, "admit")
	}
	if res.Verdict.String() != c.Want {
		return info, fmt.Errorf("verdict %s (%q), want %s", res.Verdict, res.Reason, c.Want)
	}
	if c.Reason != "" && res.Reason != c.Reason {
		return info, fmt.Errorf("reason %q, want %q", res.Reason, c.Reason)
	}
	return info, nil
}

func (c testCase) policyInput(call enforcer.Call) (enforcer.PolicyInput, error) {
	in := enforcer.PolicyInput{Call: call, Budget: enforcer.Snapshot{ID: call.Account, Labels: c.Labels}}
	parse := func(field, s string) (enforcer.Nanos, error) {
		if s == "" {
			return 0, nil
		}
		n, err := enforcer.ParseUSD(s)
		if err != nil {
			return 0, fmt.Errorf("%s: %v", field, err)
		}
		return n, nil
	}
	var err error
	var errs []error
	in.Estimate.Nanos, err = parse("estimate_usd", c.Estimate)
	errs = append(errs, err)
	in.Estimate.Source = enforcer.SourceTable
	in.Budget.Committed, err = parse("budget.committed_usd", c.Budget.CommittedUSD)
	errs = append(errs, err)
	in.Budget.Pending, err = parse("budget.pending_usd", c.Budget.PendingUSD)
	errs = append(errs, err)
	if c.Budget.LimitUSD != "" {
		l, err := parse("budget.limit_usd", c.Budget.LimitUSD)
		errs = append(errs, err)
		in.Budget.Limit = &l
	}
	return in, errors.Join(errs...)
}

// checkError compares a failure with the case's want_error (a code name
// such as "bad_config") and message.
func checkError(c testCase, err error, op string) error {
	if c.WantError == "" {
		return fmt.Errorf("%s failed: %w", op, err)
	}
	if err == nil {
		return fmt.Errorf("%s succeeded, want error %s", op, c.WantError)
	}
	var ce *host.CallError
	var le *host.LoadError
	msg := err.Error()
	code := ""
	switch {
	case errors.As(err, &ce):
		code, msg = abi.Code(ce.Code).String(), ce.Message
	case errors.As(err, &le):
		code = "load_error"
		if errors.As(le.Err, &ce) {
			code, msg = abi.Code(ce.Code).String(), ce.Message
		}
	}
	if !strings.EqualFold(normalizeCode(code), normalizeCode(c.WantError)) {
		return fmt.Errorf("error code %s (%v), want %s", code, err, c.WantError)
	}
	if c.Message != "" && msg != c.Message {
		return fmt.Errorf("error message %q, want %q", msg, c.Message)
	}
	return nil
}

func normalizeCode(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }

func printMissing(out io.Writer, keys []string) {
	if len(keys) > 0 {
		fmt.Fprintf(out, "missing:  %s (required by the config schema)\n", strings.Join(keys, ", "))
	}
}
