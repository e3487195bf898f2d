package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/purser-dev/purser/abi"
)

// FailMode says what a policy failure means for admission.
type FailMode uint8

// Fail modes. The zero value is fail-closed: a broken policy denies.
const (
	FailClosed FailMode = iota
	FailOpen
)

func (m FailMode) String() string {
	if m == FailOpen {
		return "open"
	}
	return "closed"
}

// Spec says where a plugin comes from and how to run it.
type Spec struct {
	// File is the module's path; it is re-read on reload. When Bytes is set,
	// File is only used in messages.
	File  string
	Bytes []byte
	// SHA256 pins the module's digest (hex); a different module is refused.
	SHA256 string
	// Config is the plugin config, a JSON object; nil means {}.
	Config json.RawMessage
	// Limits overrides the host's limits; zero fields inherit.
	Limits   Limits
	FailMode FailMode
	// Order sorts policies (ascending; ties by name).
	Order int
	// Isolation says which callers may share an instance's state; the
	// zero value, IsolationTenant, is the safe default.
	Isolation Isolation
}

func (s *Spec) label() string {
	if s.File != "" {
		return s.File
	}
	return "<bytes>"
}

// provisionalName names a plugin in errors before its manifest is read.
func (s *Spec) provisionalName() string {
	if s.File == "" {
		return "unnamed"
	}
	return strings.TrimSuffix(filepath.Base(s.File), filepath.Ext(s.File))
}

// Load reads, validates, smoke-tests and starts a plugin. Every refusal is
// a *LoadError.
func (h *Host) Load(ctx context.Context, spec Spec) (*Plugin, error) {
	p := &Plugin{h: h, spec: spec}
	v, err := h.loadVersion(ctx, &spec)
	h.cfg.Observer.ObserveReload(nameOr(v, spec.provisionalName()), err)
	if err != nil {
		return nil, err
	}
	p.swap(v)
	return p, nil
}

func nameOr(v *version, fallback string) string {
	if v != nil {
		return v.name
	}
	return fallback
}

func (h *Host) loadVersion(ctx context.Context, spec *Spec) (*version, error) {
	lerr := func(err error, format string, args ...any) error {
		return &LoadError{Plugin: spec.provisionalName(), File: spec.label(), Reason: fmt.Sprintf(format, args...), Err: err}
	}
	bin := spec.Bytes
	if bin == nil {
		b, err := os.ReadFile(spec.File)
		if err != nil {
			return nil, lerr(fmt.Errorf("%w: %w", ErrRead, err), "%v", err)
		}
		bin = b
	}
	digest := sha256.Sum256(bin)
	hexDigest := hex.EncodeToString(digest[:])
	if pin := strings.ToLower(strings.TrimPrefix(spec.SHA256, "sha256:")); pin != "" && pin != hexDigest {
		return nil, lerr(ErrDigestMismatch, "file has sha256 %s, config pins %s", hexDigest, pin)
	}
	verified, err := h.checkSignature(spec, digest)
	if err != nil {
		return nil, lerr(fmt.Errorf("%w: %w", ErrSignature, err), "%v", err)
	}
	limits := spec.Limits.Or(h.cfg.Limits)
	if len(spec.Config) > limits.InputBytesMax {
		return nil, lerr(ErrInit, "config is %d bytes, over the %d-byte input limit", len(spec.Config), limits.InputBytesMax)
	}
	if err := limits.validate(); err != nil {
		return nil, lerr(ErrInit, "limits: %v", err)
	}
	// The load limits come first: instrumenting and compiling cost time
	// and memory in proportion to what the module declares.
	capped, err := checkModuleLimits(bin, limits)
	var mle *ModuleLimitError
	if errors.As(err, &mle) {
		return nil, limitLoadError(spec, mle)
	}
	if err != nil {
		return nil, lerr(fmt.Errorf("%w: %w", ErrInvalidModule, err), "%v", err)
	}
	// A module whose table maxima were capped is other bytes: it is
	// compiled (and cached) under their digest; its identity stays digest.
	compileDigest := digest
	if capped != nil {
		bin, compileDigest = capped, sha256.Sum256(capped)
	}
	rk := rtKey{pages: limits.MemoryPagesMax, fuel: h.stop.instrument()}
	ce, err := h.compile(ctx, compileDigest, bin, rk)
	if errors.Is(err, ErrNotMeterable) {
		// The sentinel already names the refusal; the reason keeps the detail.
		detail := strings.ReplaceAll(err.Error(), ErrNotMeterable.Error()+": ", "")
		return nil, lerr(err, "%s; purser runs only modules it can meter (see abi/ABI.md, \"Fuel\")", detail)
	}
	if err != nil {
		return nil, lerr(fmt.Errorf("%w: %w", ErrInvalidModule, err), "%v", err)
	}
	v := newVersion(h, spec, ce, compileDigest, hexDigest, limits, rk)
	v.sig.verified = verified
	if err := v.start(ctx, spec.Config); err != nil {
		v.unref()
		var le *LoadError
		if errors.As(err, &le) {
			le.File = spec.label()
			if le.Plugin == "" {
				le.Plugin = spec.provisionalName()
			}
			if v.manifest.Name != "" {
				m := v.manifest
				le.Manifest = &m
			}
			return nil, le
		}
		return nil, lerr(ErrInit, "%v", err)
	}
	return v, nil
}

// start validates the module and creates its first instance: the smoke
// test every load and reload must pass before the plugin serves calls.
func (v *version) start(ctx context.Context, config []byte) error {
	if err := validateImports(v.compiled.mod, v.compiled.rt); err != nil {
		return err
	}
	exports := v.compiled.mod.ExportedFunctions()
	for _, e := range []string{abi.ExportABIVersion, abi.ExportInitialize} {
		if err := checkExport(exports, e, e == abi.ExportABIVersion); err != nil {
			return err
		}
	}
	if _, ok := exports[abi.ExportStart]; ok {
		return &LoadError{Reason: "exports _start: it is a WASI command, not a reactor; build Go guests with -buildmode=c-shared, Rust as cdylib", Err: ErrBadSignature}
	}
	in, err := v.instantiate(ctx)
	if err != nil {
		return &LoadError{Reason: "instantiation failed: " + firstLine(err.Error()), Err: fmt.Errorf("%w: %w", ErrInit, err)}
	}
	ok := false
	defer func() {
		if !ok {
			in.close()
		}
	}()
	ictx := v.h.stop.begin(ctx, in, v.limits.InitTimeout)
	initEnded := false
	endInit := func() {
		if !initEnded {
			initEnded = true
			v.h.stop.end(in, ictx)
		}
	}
	defer endInit()
	if err := in.boot(ictx); err != nil {
		return &LoadError{Reason: err.Error(), Err: fmt.Errorf("%w: %w", ErrInit, err)}
	}
	if err := v.checkVersion(ictx, in); err != nil {
		return err
	}
	for _, e := range []string{abi.ExportAlloc, abi.ExportManifest, abi.ExportInit, abi.ExportEstimate, abi.ExportAdmit} {
		if err := checkExport(exports, e, e == abi.ExportAlloc || e == abi.ExportManifest); err != nil {
			return err
		}
	}
	if in.mem == nil {
		return &LoadError{Reason: `no memory exported as "memory"`, Err: ErrMissingExport}
	}
	if err := v.readManifest(ictx, in); err != nil {
		return err
	}
	if _, has := exports[v.manifest.Kind.CallExport()]; !has {
		return &LoadError{Plugin: v.name, Reason: fmt.Sprintf("manifest kind %q requires export %s", v.manifest.Kind, v.manifest.Kind.CallExport()), Err: ErrMissingExport}
	}
	_, v.hasInit = exports[abi.ExportInit]
	v.config = config
	if len(v.config) == 0 {
		v.config = []byte("{}")
	}
	if err := in.initialize(ictx); err != nil {
		reason := err.Error()
		var ce *CallError
		if errors.As(err, &ce) {
			reason = fmt.Sprintf("purser_init refused the config: %s (code %d): %s", abi.Code(ce.Code), ce.Code, ce.Message)
		}
		return &LoadError{Plugin: v.name, Reason: reason, Err: fmt.Errorf("%w: %w", ErrInit, err)}
	}
	if v.hasInit {
		if err := v.refreshTools(ictx, in); err != nil {
			return err
		}
	}
	if err := in.initFuelCheck(); err != nil {
		return &LoadError{Plugin: v.name, Reason: err.Error(), Err: fmt.Errorf("%w: %w", ErrInit, err)}
	}
	v.initFuel = in.initUsed + in.fuelUsed()
	endInit()
	keep, err := v.smokeCalls(ctx, in, exports)
	if err != nil {
		return err
	}
	ok = true
	if !keep {
		in.close()
		return nil
	}
	v.pool.mu.Lock()
	v.pool.live++ // the smoke-test instance takes the first slot
	v.pool.mu.Unlock()
	v.put(in, true)
	return nil
}

// Synthetic request of the smoke calls: the plugin's first named tool (or
// smokeTool when it names none), on an unlimited account with no spend.
const (
	smokeTool    = "purser.smoke"
	smokeAccount = "purser.smoke"
)

// smokeCalls runs each call export the module has (purser_estimate,
// purser_admit) once on a synthetic request, under the call limits, before
// the version is published: a plugin that traps, runs out of fuel or
// times out there would do it on the first real call, so it is refused
// (and a reload keeps the previous version). Any answer is fine, errors
// included; bad output is left to real calls, which report it, but the
// instance is not kept (keep is false).
func (v *version) smokeCalls(ctx context.Context, in *instance, exports map[string]api.FunctionDefinition) (keep bool, _ error) {
	if v.h.cfg.noSmokeCalls {
		return true, nil
	}
	call := abi.Call{Tool: smokeTool, Account: smokeAccount, Budget: abi.Unlimited(0, 0), MaxTokens: -1, Params: []byte("{}")}
	for _, t := range v.manifest.Tools {
		if t != abi.ToolAny {
			call.Tool = t
			break
		}
	}
	keep = true
	for _, name := range []string{abi.ExportEstimate, abi.ExportAdmit} {
		if _, has := exports[name]; !has {
			continue
		}
		var req []byte
		if name == abi.ExportEstimate {
			req = abi.AppendEstimateRequest(nil, &abi.EstimateRequest{Call: call})
		} else {
			req = abi.AppendAdmitRequest(nil, &abi.AdmitRequest{Call: call, EstimateNanos: 1_000_000,
				EstimateSource: abi.SourceTable, EstimateSourceLabel: "table"})
		}
		kind, msg := v.smokeCall(ctx, in, name, req)
		switch kind {
		case nil:
		case ErrTrap, ErrFuelExhausted, ErrTimeout:
			return false, &LoadError{Plugin: v.name, Err: fmt.Errorf("%w: %w", ErrInit, kind),
				Reason: fmt.Sprintf("smoke call of %s on a synthetic request (tool %q, account %q, params {}): %v: %s", name, call.Tool, call.Account, kind, msg)}
		default:
			if ctx.Err() != nil {
				return false, &LoadError{Plugin: v.name, Reason: "smoke call: " + msg, Err: fmt.Errorf("%w: %w", ErrInit, ctx.Err())}
			}
			keep = false // bad output: real calls will report it on a fresh instance
		}
	}
	return keep, nil
}

// smokeCall runs one export like Plugin.run does and classifies a
// failure; a guest's error answer is not one.
func (v *version) smokeCall(ctx context.Context, in *instance, name string, req []byte) (kind error, msg string) {
	fuel := v.limits.fuelFor(len(req))
	cctx := v.h.stop.begin(ctx, in, v.limits.CallTimeout)
	in.sink.reset()
	_, err := in.invoke(cctx, in.mod.ExportedFunction(name), req, fuel)
	used := in.fuelUsed()
	stopped := v.h.stop.stopped(in, cctx)
	v.h.stop.end(in, cctx)
	in.flushLogs()
	if used > fuel {
		return ErrFuelExhausted, fmt.Sprintf("used more than its %d-unit budget (limits.fuel_per_call_max)", fuel)
	}
	if err == nil {
		return nil, ""
	}
	msg, kind = classify(ctx, stopped, err)
	return kind, msg
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// wanted export signatures: params, results.
var exportSigs = map[string][2][]api.ValueType{
	abi.ExportABIVersion: {nil, {api.ValueTypeI32}},
	abi.ExportAlloc:      {{api.ValueTypeI32}, {api.ValueTypeI32}},
	abi.ExportManifest:   {nil, {api.ValueTypeI64}},
	abi.ExportInit:       {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI64}},
	abi.ExportEstimate:   {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI64}},
	abi.ExportAdmit:      {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI64}},
	abi.ExportInitialize: {nil, nil},
}

func checkExport(exports map[string]api.FunctionDefinition, name string, required bool) error {
	def, ok := exports[name]
	if !ok {
		if required {
			return &LoadError{Reason: "required export " + name + " is missing", Err: ErrMissingExport}
		}
		return nil
	}
	want := exportSigs[name]
	if !sameTypes(def.ParamTypes(), want[0]) || !sameTypes(def.ResultTypes(), want[1]) {
		return &LoadError{Reason: fmt.Sprintf("export %s has signature %s, want %s",
			name, sig(def.ParamTypes(), def.ResultTypes()), sig(want[0], want[1])), Err: ErrBadSignature}
	}
	return nil
}

// validateImports refuses anything but purser.log and the WASI preview 1
// functions wazero provides, each with its exact signature.
func validateImports(m wazero.CompiledModule, rt *wruntime) error {
	if mems := m.ImportedMemories(); len(mems) > 0 {
		mod, name, _ := mems[0].Import()
		return &LoadError{Reason: fmt.Sprintf("imports memory %s.%s; plugins must define and export their own", mod, name), Err: ErrUnknownImport}
	}
	logSig := []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}
	for _, def := range m.ImportedFunctions() {
		mod, name, _ := def.Import()
		var wantP, wantR []api.ValueType
		switch mod {
		case abi.ImportModule:
			if name != abi.ImportLog {
				return &LoadError{Reason: fmt.Sprintf("imports %s.%s; the host provides only %s.%s", mod, name, abi.ImportModule, abi.ImportLog), Err: ErrUnknownImport}
			}
			wantP = logSig
		case fuelImportModule: // injected by the instrumenter, which refuses modules importing it themselves
			if name != fuelImportRefill || !rt.fuel {
				return &LoadError{Reason: fmt.Sprintf("imports %s.%s, which is reserved", mod, name), Err: ErrUnknownImport}
			}
			wantP, wantR = []api.ValueType{api.ValueTypeI64}, []api.ValueType{api.ValueTypeI64}
		case abi.WASIModule:
			w, ok := rt.wasi[name]
			if !ok {
				return &LoadError{Reason: fmt.Sprintf("imports %s.%s, which is not a WASI preview 1 function", mod, name), Err: ErrUnknownImport}
			}
			wantP, wantR = w.ParamTypes(), w.ResultTypes()
		default:
			return &LoadError{Reason: fmt.Sprintf("imports %s.%s; allowed import modules are %q and %q", mod, name, abi.ImportModule, abi.WASIModule), Err: ErrUnknownImport}
		}
		if !sameTypes(def.ParamTypes(), wantP) || !sameTypes(def.ResultTypes(), wantR) {
			return &LoadError{Reason: fmt.Sprintf("import %s.%s has signature %s, want %s", mod, name,
				sig(def.ParamTypes(), def.ResultTypes()), sig(wantP, wantR)), Err: ErrBadSignature}
		}
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sig(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ", ")
	}
	return "(" + names(params) + ") -> (" + names(results) + ")"
}

func (v *version) checkVersion(ctx context.Context, in *instance) error {
	got, err := in.callI32(ctx, abi.ExportABIVersion)
	if err != nil {
		return &LoadError{Reason: "purser_abi_version failed: " + firstLine(err.Error()), Err: fmt.Errorf("%w: %w", ErrInit, err)}
	}
	if !abi.Compatible(got) {
		return &LoadError{Reason: fmt.Sprintf("plugin declares ABI %s (0x%08x); this host supports %d.0 through %s (major %d, minor <= %d)",
			abi.VersionString(got), got, abi.VersionMajor, abi.VersionString(abi.Version), abi.VersionMajor, abi.VersionMinor), Err: ErrABIVersion}
	}
	v.abiVersion = got
	return nil
}

// manifestJSON is the manifest's wire form; abi.Manifest stays free of
// encoding/json so guests need not link it.
type manifestJSON struct {
	ABI          string          `json:"abi"`
	Name         string          `json:"name"`
	Version      string          `json:"version"`
	Kind         abi.Kind        `json:"kind"`
	Tools        []string        `json:"tools"`
	Description  string          `json:"description"`
	ConfigSchema json.RawMessage `json:"config_schema"`
}

// ParseManifest decodes and validates manifest JSON.
func ParseManifest(b []byte) (abi.Manifest, error) {
	// encoding/json replaces invalid UTF-8 with U+FFFD: check the bytes.
	if err := manifestUTF8(b); err != nil {
		return abi.Manifest{}, err
	}
	var mj manifestJSON
	if err := json.Unmarshal(b, &mj); err != nil {
		return abi.Manifest{}, fmt.Errorf("manifest is not a JSON object: %w", err)
	}
	m := abi.Manifest{ABI: mj.ABI, Name: mj.Name, Version: mj.Version, Kind: mj.Kind, Tools: mj.Tools, Description: mj.Description}
	if s := strings.TrimSpace(string(mj.ConfigSchema)); s != "" && s != "null" {
		if !strings.HasPrefix(s, "{") {
			return abi.Manifest{}, errors.New("config_schema must be a JSON object")
		}
		m.ConfigSchema = []byte(s)
	}
	if err := m.Validate(); err != nil {
		return abi.Manifest{}, err
	}
	return m, nil
}

// manifestUTF8 refuses manifest JSON holding invalid UTF-8, naming the
// top-level field it is in.
func manifestUTF8(b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) == nil {
		names := make([]string, 0, len(fields))
		for k := range fields {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if !utf8.Valid(fields[k]) {
				return fmt.Errorf("manifest field %q is not valid UTF-8", k)
			}
		}
	}
	return errors.New("manifest is not valid UTF-8 (outside any field's value, e.g. in a field name)")
}

func (v *version) readManifest(ctx context.Context, in *instance) error {
	b, err := in.callPacked(ctx, abi.ExportManifest, abi.ManifestLenMax)
	if err != nil {
		return &LoadError{Reason: "purser_manifest: " + firstLine(err.Error()), Err: ErrBadManifest}
	}
	m, err := ParseManifest(b)
	if err != nil {
		return &LoadError{Reason: err.Error(), Err: ErrBadManifest}
	}
	if err := v.noteManifest(m.Name, b); err != nil {
		return err
	}
	if m.ABI != "" && m.ABI != abi.VersionString(v.abiVersion) {
		return &LoadError{Plugin: m.Name, Reason: fmt.Sprintf("manifest says abi %q but purser_abi_version returns %s", m.ABI, abi.VersionString(v.abiVersion)), Err: ErrBadManifest}
	}
	v.manifest = m
	v.setName(m.Name)
	in.sink.logger = v.logger
	return nil
}

// refreshTools reads the manifest once more after purser_init and takes
// its tools: a plugin whose tools depend on its config (llm-tokens' LLM
// aliases) can only name them then (abi/ABI.md section 5). Only the tools
// may change; later instances are assumed to answer the same.
func (v *version) refreshTools(ctx context.Context, in *instance) error {
	b, err := in.callPacked(ctx, abi.ExportManifest, abi.ManifestLenMax)
	if err != nil {
		return &LoadError{Plugin: v.name, Reason: "purser_manifest after purser_init: " + firstLine(err.Error()), Err: ErrBadManifest}
	}
	m, err := ParseManifest(b)
	if err != nil {
		return &LoadError{Plugin: v.name, Reason: "manifest after purser_init: " + err.Error(), Err: ErrBadManifest}
	}
	if m.Name != v.manifest.Name || m.Version != v.manifest.Version || m.Kind != v.manifest.Kind || m.ABI != v.manifest.ABI {
		return &LoadError{Plugin: v.name, Reason: "manifest after purser_init changed its name, version, kind or abi; only tools may depend on the config", Err: ErrBadManifest}
	}
	v.manifest.Tools = m.Tools
	return nil
}

// initialize delivers the plugin config through purser_init and binds the
// call export. It runs once per instance.
func (in *instance) initialize(ctx context.Context) error {
	v := in.v
	if v.hasInit {
		// The rest of the init budget covers purser_alloc and purser_init;
		// initUsed keeps what came before for InitFuel.
		in.initUsed = in.fuelUsed()
		in.setFuel(in.budget - in.initUsed)
		ptr, err := in.write(ctx, v.config, in.budget)
		if err != nil {
			return fmt.Errorf("writing config: %w", err)
		}
		fn := in.mod.ExportedFunction(abi.ExportInit)
		in.stack[0], in.stack[1] = uint64(ptr), uint64(len(v.config))
		if err := fn.CallWithStack(ctx, in.stack); err != nil {
			return fmt.Errorf("purser_init: %s", firstLine(err.Error()))
		}
		if in.stack[0] != 0 {
			b, err := in.readPacked(in.stack[0], v.limits.OutputBytesMax)
			if err != nil {
				return fmt.Errorf("purser_init result: %w", err)
			}
			res, err := abi.ParseResult(b)
			if err != nil {
				return fmt.Errorf("purser_init result: %w", err)
			}
			if res.Status != abi.CodeOK {
				// A *CallError so callers can read the guest's code and message.
				return &CallError{Plugin: v.name, Digest: v.hexDigest, Op: "init", Code: uint32(res.Status),
					Message: string(res.Text), Err: ErrGuestError}
			}
		}
	}
	in.call = in.mod.ExportedFunction(v.manifest.Kind.CallExport())
	in.flushLogs()
	return nil
}
