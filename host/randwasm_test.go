package host

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"pgregory.net/rapid"
)

// rwModulesPerCheck: rapid runs a property 100 times by default
// (-rapid.checks); drawing several modules per run gives more draws
// without touching rapid's flags.
const rwModulesPerCheck = 3

// rwRunTimeout bounds the checks of one property run; modules run in well
// under a millisecond, so only a generator bug can reach it.
const rwRunTimeout = 5 * time.Second

// runModule instantiates bin as a fresh, anonymous instance in the wazero
// runtime r, calls "run" once and returns the result or the error. The
// instance and its compiled code are closed before returning, so one r can
// serve many modules. Compile errors are wrapped as "compile: ...".
func runModule(ctx context.Context, r wazero.Runtime, bin []byte) (uint64, error) {
	compiled, err := r.CompileModule(ctx, bin)
	if err != nil {
		return 0, fmt.Errorf("compile: %w", err)
	}
	defer compiled.Close(ctx)
	return runCompiled(ctx, r, compiled, 1)
}

// runCompiled instantiates compiled anonymously and calls "run" calls
// times, returning the first result.
func runCompiled(ctx context.Context, r wazero.Runtime, compiled wazero.CompiledModule, calls int) (uint64, error) {
	mod, err := r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		return 0, fmt.Errorf("instantiate: %w", err)
	}
	defer mod.Close(ctx)
	run := mod.ExportedFunction("run")
	if run == nil {
		return 0, errors.New(`no export "run"`)
	}
	var first uint64
	for i := 0; i < calls; i++ {
		res, err := run.Call(ctx)
		if err != nil {
			return 0, fmt.Errorf("run call %d: %w", i+1, err)
		}
		if len(res) != 1 {
			return 0, fmt.Errorf("run call %d: %d results", i+1, len(res))
		}
		if i == 0 {
			first = res[0]
		}
	}
	return first, nil
}

// checkModule compiles bin, calls "run" twice on one instance and once on
// a fresh one, and requires the two first calls to agree (the generator
// promises deterministic modules; a later call may differ because run
// changes globals and memory).
func checkModule(ctx context.Context, r wazero.Runtime, bin []byte) (uint64, error) {
	compiled, err := r.CompileModule(ctx, bin)
	if err != nil {
		return 0, fmt.Errorf("compile: %w", err)
	}
	defer compiled.Close(ctx)
	first, err := runCompiled(ctx, r, compiled, 2)
	if err != nil {
		return 0, err
	}
	again, err := runCompiled(ctx, r, compiled, 1)
	if err != nil {
		return 0, fmt.Errorf("fresh instance: %w", err)
	}
	if again != first {
		return 0, fmt.Errorf("not deterministic: run gave %#x, then %#x on a fresh instance", first, again)
	}
	return first, nil
}

// reportModule saves a failing module under dir and describes the
// failure. The hex is printed too because dir is usually t.TempDir, gone
// when the test ends: `echo HEX | xxd -r -p > m.wasm` recovers the module.
func reportModule(dir string, bin []byte, err error) string {
	f, ferr := os.CreateTemp(dir, "randwasm-*.wasm")
	path := "(not saved)"
	if ferr == nil {
		if _, werr := f.Write(bin); werr == nil {
			path = f.Name()
		}
		f.Close()
	}
	return fmt.Sprintf("generated module (%d bytes, saved to %s) fails: %v\nhex: %s", len(bin), path, err, hex.EncodeToString(bin))
}

// rwReportDir is where failing modules go: $RANDWASM_DIR if set (kept),
// else the test's temporary directory.
func rwReportDir(t *testing.T) string {
	if d := os.Getenv("RANDWASM_DIR"); d != "" {
		return d
	}
	return t.TempDir()
}

// TestGenModuleValid: every generated module compiles, instantiates and
// runs deterministically on the interpreter, and gives the same result on
// the compiler for a sample.
func TestGenModuleValid(t *testing.T) {
	ctx := context.Background()
	// Closing on a deadline turns a module that does not terminate (a
	// generator bug) into a reported failure instead of a hung test.
	interp := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCloseOnContextDone(true))
	defer interp.Close(ctx)
	comp := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	defer comp.Close(ctx)
	dir := rwReportDir(t)
	draws := 0
	rapid.Check(t, func(rt *rapid.T) {
		ctx, cancel := context.WithTimeout(ctx, rwRunTimeout)
		defer cancel()
		for i := 0; i < rwModulesPerCheck; i++ {
			bin := genModule(rt)
			draws++
			want, err := checkModule(ctx, interp, bin)
			if err != nil {
				rt.Fatal(reportModule(dir, bin, fmt.Errorf("interpreter: %w", err)))
			}
			// Compiling is slow: a sample suffices. Drawn, not counted, so a
			// failing case replays (and shrinks) the same way.
			if rapid.IntRange(0, 24).Draw(rt, "compiler") != 0 {
				continue
			}
			got, err := checkModule(ctx, comp, bin)
			if err == nil && got != want {
				err = fmt.Errorf("run gave %#x, the interpreter %#x", got, want)
			}
			if err != nil {
				rt.Fatal(reportModule(dir, bin, fmt.Errorf("compiler: %w", err)))
			}
		}
	})
	t.Logf("%d modules checked", draws) // 300 with rapid's default 100 checks
}

// TestGenModuleReportsInvalid: a module wazero rejects is reported with
// wazero's error and saved for inspection.
func TestGenModuleReportsInvalid(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	dir := t.TempDir()
	bin := rapid.Custom(genBrokenModule).Example(1)
	_, err := checkModule(ctx, r, bin)
	if err == nil {
		t.Fatal("a module whose run leaves no result was accepted")
	}
	_, direct := r.CompileModule(ctx, bin)
	if direct == nil || !strings.Contains(err.Error(), direct.Error()) {
		t.Fatalf("error %q does not carry wazero's %v", err, direct)
	}
	msg := reportModule(dir, bin, err)
	if !strings.Contains(msg, direct.Error()) || !strings.Contains(msg, hex.EncodeToString(bin)) {
		t.Fatalf("report lacks the error or the module:\n%s", msg)
	}
	saved, _ := filepath.Glob(filepath.Join(dir, "randwasm-*.wasm"))
	if len(saved) != 1 {
		t.Fatalf("saved %v", saved)
	}
	if b, _ := os.ReadFile(saved[0]); string(b) != string(bin) {
		t.Fatal("saved module differs")
	}
	if _, err := runModule(ctx, r, bin); err == nil || !strings.Contains(err.Error(), direct.Error()) {
		t.Fatalf("runModule: %v", err)
	}
}

// TestGenModuleFeatures measures how often each construct appears, and
// module sizes and run times, over fixed seeds; it fails if a forced
// construct is rare or a module is big or slow.
func TestGenModuleFeatures(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	const n = 300
	count := map[string]int{}
	var size, maxSize int
	var times []time.Duration
	for seed := 0; seed < n; seed++ {
		m := rapid.Custom(genModuleInfo).Example(seed)
		for f := range m.seen {
			count[f]++
		}
		size += len(m.bin)
		maxSize = max(maxSize, len(m.bin))
		d, err := timeRun(ctx, r, m.bin)
		if err != nil {
			t.Fatal(reportModule(t.TempDir(), m.bin, err))
		}
		times = append(times, d)

	}
	names := make([]string, 0, len(count))
	for f := range count {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		t.Logf("%-22s %3d%%", f, count[f]*100/n)
	}
	slices.Sort(times)
	t.Logf("size: mean %d B, max %d B; instantiate (start included) + run, interpreted: median %v, p95 %v, max %v (noisy)",
		size/n, maxSize, times[n/2], times[n*95/100], times[n-1])
	for _, f := range rwForced {
		if count[f]*100/n < 40 {
			t.Errorf("%s in only %d%% of modules", f, count[f]*100/n)
		}
	}
	if maxSize > 8<<10 {
		t.Errorf("a module of %d bytes", maxSize)
	}
}

// timeRun times instantiating (which runs the start function) and one call
// of run, compilation excluded.
func timeRun(ctx context.Context, r wazero.Runtime, bin []byte) (time.Duration, error) {
	compiled, err := r.CompileModule(ctx, bin)
	if err != nil {
		return 0, fmt.Errorf("compile: %w", err)
	}
	defer compiled.Close(ctx)
	begin := time.Now()
	_, err = runCompiled(ctx, r, compiled, 1)
	return time.Since(begin), err
}
