package host

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/abi"
)

func TestEstimatorAndPolicy(t *testing.T) {
	h, logs := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	est := load(t, h, "estimator", Spec{})
	defer est.Close()
	res, info, err := est.Estimate(context.Background(), estReq("Read"))
	if err != nil || res.Nanos != 1_000_000 {
		t.Fatalf("estimate = %+v, %v", res, err)
	}
	if want := "plugin:estimator@" + est.Digest()[:12]; info.Source != want || est.SourceLabel() != want {
		t.Fatalf("source %q, label %q, want %q", info.Source, est.SourceLabel(), want)
	}
	pol := load(t, h, "policy", Spec{Config: []byte(`{"x":1}`)})
	defer pol.Close()
	req := abi.AdmitRequest{Call: estReq("Bash").Call, EstimateNanos: 10}
	req.Budget = abi.Budget{LimitNanos: 100, CommittedNanos: 95, RemainingNanos: 5}
	got, _, err := pol.Admit(context.Background(), req)
	if err != nil || got.Verdict != abi.Deny || got.Reason != "estimate exceeds remaining budget" {
		t.Fatalf("admit = %+v, %v", got, err)
	}
	req.EstimateNanos = 5
	if got, _, err = pol.Admit(context.Background(), req); err != nil || got.Verdict != abi.Allow || got.Reason != "" {
		t.Fatalf("admit = %+v, %v", got, err)
	}
	if _, _, err := pol.Estimate(context.Background(), estReq("x")); !errorsIs(err, ErrWrongKind) {
		t.Fatalf("estimate on a policy: %v", err)
	}
	if !strings.Contains(logs.String(), "purser.host.policy") || !strings.Contains(logs.String(), "admit called") {
		t.Fatalf("log import output missing:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `{"x":1}`) {
		t.Fatalf("config not delivered to purser_init:\n%s", logs.String())
	}
}

// TestLoadRefusesAPluginWhoseSmokeCallFails: load runs the call export
// once on a synthetic request; a guest that traps, runs out of fuel or
// times out there is refused instead of failing the first real call.
func TestLoadRefusesAPluginWhoseSmokeCallFails(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	cases := []struct {
		name   string
		limits Limits
		want   error
	}{
		{"trap", Limits{}, ErrTrap},
		{"loop", Limits{}, ErrFuelExhausted},
		{"loop", Limits{FuelPerCallMax: 1 << 50, CallTimeout: 50 * time.Millisecond}, ErrTimeout},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+c.want.Error(), func(t *testing.T) {
			_, err := h.Load(context.Background(), Spec{File: wasmPath(c.name), Limits: c.limits})
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrInit) || !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want a *LoadError wrapping ErrInit and %v", err, c.want)
			}
			if !strings.Contains(err.Error(), "smoke call of purser_estimate") || !strings.Contains(err.Error(), `tool "purser.smoke"`) {
				t.Fatalf("refusal does not say what was called: %v", err)
			}
			if n := h.Instances(); n != 0 {
				t.Fatalf("%d instances left", n)
			}
		})
	}
}

// TestSmokeCallAnswersThatAreNotFailuresLoad: unsupported, bad_params or
// bad output on the synthetic request do not refuse the plugin.
func TestSmokeCallAnswersThatAreNotFailuresLoad(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	for _, name := range []string{"unsupported", "guesterror", "garbage_range", "policy"} {
		p := load(t, h, name, Spec{})
		p.Close()
	}
}

// TestReloadKeepsTheOldVersionWhenTheSmokeCallTraps: a new file that
// traps on its first call never replaces a working one.
func TestReloadKeepsTheOldVersionWhenTheSmokeCallTraps(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	dir := t.TempDir()
	file := filepath.Join(dir, "est.wasm")
	copyPlugin(t, "estimator", file)
	r, err := h.NewRegistry(context.Background(), RegistryConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	est := r.Estimator("Read")
	digest := est.Digest()
	copyPlugin(t, "trap", file)
	if err := r.Reload(context.Background()); !errors.Is(err, ErrTrap) {
		t.Fatalf("reload of a trapping module: %v", err)
	}
	if est.Digest() != digest || estimateNanos(t, est) != 1_000_000 {
		t.Fatal("the trapping module replaced the working one")
	}
	if st := r.Status(); len(st) != 1 || !strings.Contains(st[0].LastError, "smoke call") {
		t.Fatalf("status does not report the refusal: %+v", st)
	}
}
