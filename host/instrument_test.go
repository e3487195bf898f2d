package host

import (
	"context"
	"os"
	"testing"
)

// TestModulesAreInstrumented: every test guest (WAT and Go) goes through
// the cheap stop mechanism, and the rewritten module still validates.
func TestModulesAreInstrumented(t *testing.T) {
	h, _ := newTestHost(t, Config{})
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
	out, err := instrument(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := instrument(out); err == nil {
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
