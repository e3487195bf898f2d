package host

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// TestModulesAreInstrumented: every test guest (WAT and Go) goes through
// the cheap stop mechanism, and the rewritten module still validates.
func TestModulesAreInstrumented(t *testing.T) {
	h, _ := newTestHost(t, Config{noSmokeCalls: true})
	for _, name := range []string{"estimator", "policy", "loop", "recursion", "gobad", "wasiopen"} {
		p := load(t, h, name, Spec{})
		if !p.cur.Load().rt.fuel {
			t.Errorf("%s: not instrumented", name)
		}
		p.Close()
	}
	bin, err := os.ReadFile(wasmPath("gobad"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := instrument(bin, DefaultFuelCosts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := instrument(out, DefaultFuelCosts()); err == nil {
		t.Fatal("instrumenting twice must be refused (export name taken)")
	}
	// Fallback: with instrumentation off, the same guests run on wazero's checks.
	h2, _ := newTestHost(t, Config{stop: stopWatchdogNoFuel})
	p := load(t, h2, "estimator", Spec{})
	defer p.Close()
	if p.cur.Load().rt.fuel {
		t.Fatal("instrumented although disabled")
	}
	if _, _, err := p.Estimate(context.Background(), estReq("x")); err != nil {
		t.Fatal(err)
	}
}

// TestInstrumentEveryCommittedModule rewrites every committed module (WAT,
// Go and whatever the shipped plugins are built with) and checks wazero
// accepts the result, so a decoding slip in the rewriter cannot go unseen.
func TestInstrumentEveryCommittedModule(t *testing.T) {
	var files []string
	for _, dir := range []string{"../testplugins", "../plugins"} {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".wasm") && !goPlugin(p) {
				files = append(files, p)
			}
			return nil
		})
	}
	if len(files) < 10 {
		t.Fatalf("found only %d modules", len(files))
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	for _, f := range files {
		bin, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := instrument(bin, DefaultFuelCosts())
		if err != nil && strings.HasSuffix(f, "reservedexport.wasm") {
			continue // refused on purpose (TestNotMeterableRefused)
		}
		if err != nil {
			if _, cerr := r.CompileModule(ctx, bin); cerr != nil {
				continue // not a valid module to begin with (garbage fixtures)
			}
			t.Errorf("%s: %v", f, err)
			continue
		}
		if _, err := r.CompileModule(ctx, out); err != nil {
			t.Errorf("%s: instrumented module invalid: %v", f, err)
		}
	}
}

// goPlugin skips the shipped Go plugins: gobad already covers Go's output
// and each Go module takes seconds to compile.
func goPlugin(path string) bool {
	if !strings.Contains(path, "plugins/") || strings.Contains(path, "testplugins/") {
		return false
	}
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.go"))
	return len(m) > 0
}
