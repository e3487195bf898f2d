// Package wasmtest loads a built plugin (.wasm) into wazero directly, the
// way abi/ABI.md describes the host's call sequence, so the plugins module
// can check its committed binaries without the host package: WASI with no
// files, no environment and no start function; the purser.log import;
// _initialize; ABI version; manifest; purser_init with a config; then
// estimate and admission calls through purser_alloc.
package wasmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/purser-dev/purser/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Guest is one instance of a plugin module. It is not safe for concurrent
// use (neither is a plugin instance).
type Guest struct {
	File     string
	Manifest abi.Manifest
	Version  uint32

	ctx                    context.Context
	rt                     wazero.Runtime
	mod                    api.Module
	alloc, estimate, admit api.Function
	bufPtr, bufCap         uint32
	req                    []byte

	mu   sync.Mutex
	logs []string
	out  bytes.Buffer // WASI stdout and stderr
}

// Error is an error result returned by the guest.
type Error struct {
	Code    abi.Code
	Message string
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Message }

// Loader loads guests sharing one compilation cache, so a module compiled
// once is not compiled again by the next Load (Go guests take seconds).
type Loader struct {
	cache wazero.CompilationCache
}

// NewLoader returns a Loader with an in-memory compilation cache.
func NewLoader() *Loader { return &Loader{cache: wazero.NewCompilationCache()} }

// Load is Loader.Load without a shared cache.
func Load(file string, config *string) (*Guest, error) { return (&Loader{}).Load(file, config) }

// Load instantiates the module in file and initialises it with config
// (nil means the guest gets no purser_init call; "" means "{}").
func (l *Loader) Load(file string, config *string) (*Guest, error) {
	bin, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	g := &Guest{File: file, ctx: ctx}
	rc := wazero.NewRuntimeConfigCompiler().WithMemoryLimitPages(512)
	if l.cache != nil {
		rc = rc.WithCompilationCache(l.cache)
	}
	g.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	fail := func(format string, args ...any) (*Guest, error) {
		g.Close()
		return nil, fmt.Errorf("%s: "+format, append([]any{file}, args...)...)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, g.rt); err != nil {
		return fail("wasi: %v", err)
	}
	_, err = g.rt.NewHostModuleBuilder(abi.ImportModule).NewFunctionBuilder().
		WithFunc(func(_ context.Context, m api.Module, level, ptr, n uint32) {
			b, _ := m.Memory().Read(ptr, n)
			g.mu.Lock()
			g.logs = append(g.logs, fmt.Sprintf("%d %s", level, b))
			g.mu.Unlock()
		}).Export(abi.ImportLog).Instantiate(ctx)
	if err != nil {
		return fail("host module: %v", err)
	}
	cm, err := g.rt.CompileModule(ctx, bin)
	if err != nil {
		return fail("compile: %v", err)
	}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != abi.WASIModule && !(mod == abi.ImportModule && name == abi.ImportLog) {
			return fail("unknown import %s.%s", mod, name)
		}
	}
	if len(cm.ImportedMemories()) > 0 {
		return fail("imports a memory")
	}
	if _, ok := cm.ExportedFunctions()[abi.ExportStart]; ok {
		return fail("exports _start (a WASI command, not a reactor)")
	}
	g.mod, err = g.rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions().
		WithStdout(&g.out).WithStderr(&g.out).WithName(""))
	if err != nil {
		return fail("instantiate: %v", err)
	}
	if f := g.mod.ExportedFunction(abi.ExportInitialize); f != nil {
		if _, err := f.Call(ctx); err != nil {
			return fail("_initialize: %v (output %q)", err, g.out.String())
		}
	}
	res, err := g.call(abi.ExportABIVersion)
	if err != nil {
		return fail("%v", err)
	}
	g.Version = uint32(res)
	if !abi.Compatible(g.Version) {
		return fail("ABI version %s not supported", abi.VersionString(g.Version))
	}
	if res, err = g.call(abi.ExportManifest); err != nil {
		return fail("%v", err)
	}
	mb, err := g.read(res)
	if err != nil {
		return fail("manifest: %v", err)
	}
	if err := json.Unmarshal(mb, &g.Manifest); err != nil {
		return fail("manifest %q: %v", mb, err)
	}
	if err := g.Manifest.Validate(); err != nil {
		return fail("manifest: %v", err)
	}
	if g.Manifest.ABI != "" && g.Manifest.ABI != abi.VersionString(g.Version) {
		return fail("manifest abi %q != purser_abi_version %s", g.Manifest.ABI, abi.VersionString(g.Version))
	}
	var raw struct {
		Schema json.RawMessage `json:"config_schema"`
	}
	_ = json.Unmarshal(mb, &raw)
	g.Manifest.ConfigSchema = raw.Schema
	g.alloc = g.mod.ExportedFunction(abi.ExportAlloc)
	g.estimate = g.mod.ExportedFunction(abi.ExportEstimate)
	g.admit = g.mod.ExportedFunction(abi.ExportAdmit)
	if g.alloc == nil {
		return fail("no purser_alloc export")
	}
	if call := g.Manifest.Kind.CallExport(); g.mod.ExportedFunction(call) == nil {
		return fail("kind %s but no %s export", g.Manifest.Kind, call)
	}
	if config != nil {
		cfg := *config
		if cfg == "" {
			cfg = "{}"
		}
		init := g.mod.ExportedFunction(abi.ExportInit)
		if init == nil {
			return fail("config given but no purser_init export")
		}
		ptr, err := g.write([]byte(cfg))
		if err != nil {
			return fail("%v", err)
		}
		r, err := init.Call(ctx, uint64(ptr), uint64(len(cfg)))
		if err != nil {
			return fail("purser_init: %v", err)
		}
		if r[0] != 0 {
			rec, err := g.read(r[0])
			if err != nil {
				return fail("purser_init result: %v", err)
			}
			res, err := abi.ParseResult(rec)
			if err != nil {
				return fail("purser_init result: %v", err)
			}
			g.Close()
			return nil, &Error{Code: res.Status, Message: string(res.Text)}
		}
		// Like the host, take the tools from the manifest as it reads after
		// purser_init (they may depend on the config; abi/ABI.md section 5).
		if res, err = g.call(abi.ExportManifest); err != nil {
			return fail("manifest after purser_init: %v", err)
		}
		var after abi.Manifest
		if mb, err = g.read(res); err == nil {
			err = json.Unmarshal(mb, &after)
		}
		if err == nil {
			err = after.Validate()
		}
		if err != nil {
			return fail("manifest after purser_init: %v", err)
		}
		g.Manifest.Tools = after.Tools
	}
	return g, nil
}

// Close releases the runtime.
func (g *Guest) Close() {
	if g.rt != nil {
		_ = g.rt.Close(g.ctx)
	}
}

// Logs returns what the guest logged through purser.log ("<level> <msg>").
func (g *Guest) Logs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.logs...)
}

// Output is what the guest wrote to WASI stdout and stderr.
func (g *Guest) Output() string { return g.out.String() }

// MemoryBytes is the size of the guest's linear memory.
func (g *Guest) MemoryBytes() uint32 { return g.mod.Memory().Size() }

func (g *Guest) call(name string, args ...uint64) (uint64, error) {
	f := g.mod.ExportedFunction(name)
	if f == nil {
		return 0, fmt.Errorf("no %s export", name)
	}
	r, err := f.Call(g.ctx, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w (output %q)", name, err, g.out.String())
	}
	return r[0], nil
}

// read copies the packed (ptr, len) region out of guest memory.
func (g *Guest) read(packed uint64) ([]byte, error) {
	ptr, n := abi.UnpackPtrLen(packed)
	b, ok := g.mod.Memory().Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("packed pointer %d+%d outside memory (%d bytes)", ptr, n, g.mod.Memory().Size())
	}
	return append([]byte(nil), b...), nil
}

// write puts b in the guest, calling purser_alloc only when b does not fit
// the buffer obtained last (as the host does).
func (g *Guest) write(b []byte) (uint32, error) {
	if g.bufCap == 0 || uint32(len(b)) > g.bufCap {
		r, err := g.alloc.Call(g.ctx, uint64(len(b)))
		if err != nil {
			return 0, fmt.Errorf("purser_alloc(%d): %w", len(b), err)
		}
		if r[0] == 0 {
			return 0, errors.New("purser_alloc returned 0")
		}
		g.bufPtr, g.bufCap = uint32(r[0]), uint32(len(b))
	}
	if !g.mod.Memory().Write(g.bufPtr, b) {
		return 0, fmt.Errorf("purser_alloc buffer %d+%d outside memory", g.bufPtr, len(b))
	}
	return g.bufPtr, nil
}

func (g *Guest) run(f api.Function, name string) (abi.Result, error) {
	if f == nil {
		return abi.Result{}, fmt.Errorf("%s: no %s export", g.File, name)
	}
	ptr, err := g.write(g.req)
	if err != nil {
		return abi.Result{}, err
	}
	r, err := f.Call(g.ctx, uint64(ptr), uint64(len(g.req)))
	if err != nil {
		return abi.Result{}, fmt.Errorf("%s: %s: %w (output %q)", g.File, name, err, g.out.String())
	}
	ptr, n := abi.UnpackPtrLen(r[0])
	rec, ok := g.mod.Memory().Read(ptr, n) // aliases memory: parsed before the next call
	if !ok {
		return abi.Result{}, fmt.Errorf("%s: %s: bad output %d+%d", g.File, name, ptr, n)
	}
	res, err := abi.ParseResult(rec)
	if err != nil {
		return res, fmt.Errorf("%s: %s: %w", g.File, name, err)
	}
	if res.Status != abi.CodeOK {
		return res, &Error{Code: res.Status, Message: string(res.Text)}
	}
	return res, nil
}

// Estimate runs purser_estimate.
func (g *Guest) Estimate(c abi.Call) (int64, error) {
	g.req = abi.AppendEstimateRequest(g.req[:0], &abi.EstimateRequest{Call: c})
	res, err := g.run(g.estimate, abi.ExportEstimate)
	if err != nil {
		return 0, err
	}
	e, err := res.Estimate()
	return e.Nanos, err
}

// Admit runs purser_admit.
func (g *Guest) Admit(r abi.AdmitRequest) (abi.AdmitResult, error) {
	g.req = abi.AppendAdmitRequest(g.req[:0], &r)
	res, err := g.run(g.admit, abi.ExportAdmit)
	if err != nil {
		return abi.AdmitResult{}, err
	}
	return res.Admit()
}

// Code is the ABI code of an *Error (CodeOK for nil, CodeInternal for any
// other error).
func Code(err error) abi.Code {
	var e *Error
	switch {
	case err == nil:
		return abi.CodeOK
	case errors.As(err, &e):
		return e.Code
	}
	return abi.CodeInternal
}
