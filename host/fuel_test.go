package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
)

// countFuel is count.wat's purser_estimate counted by hand: each of the
// 100 000 iterations of its loop runs 8 instructions (local.get, const,
// add, local.set, local.get, const, lt_u, br_if), then three stores with
// their operands and the result take 11. Structure (loop, end) is free.
const countFuel = 11 + 100_000*8

// TestFuelIsExact pins the charge of a known program, whatever the slice
// (how often the guest reaches a safe point) is.
func TestFuelIsExact(t *testing.T) {
	for _, slice := range []int64{1000, 7919, DefaultFuelCosts().Slice} {
		h, _ := newTestHost(t, Config{FuelCosts: FuelCosts{Slice: slice}})
		p := load(t, h, "count", Spec{})
		for i := range 3 {
			res, info, err := p.Estimate(context.Background(), estReq("x"))
			if err != nil || res.Nanos != 100_000 {
				t.Fatalf("slice %d: %+v %v", slice, res, err)
			}
			if info.Fuel != countFuel {
				t.Fatalf("slice %d call %d: fuel %d, want %d", slice, i, info.Fuel, countFuel)
			}
		}
		p.Close()
	}
}

// TestFuelBudgetBoundary: a budget of exactly the program's fuel suffices,
// one unit less stops it with the typed error, for any slice.
func TestFuelBudgetBoundary(t *testing.T) {
	for _, slice := range []int64{1000, DefaultFuelCosts().Slice} {
		h, _ := newTestHost(t, Config{FuelCosts: FuelCosts{Slice: slice}, noSmokeCalls: true}) // the short budget fails every call
		exact := load(t, h, "count", Spec{Limits: Limits{FuelPerCallMax: countFuel, FuelPerInputByte: -1}})
		if _, info, err := exact.Estimate(context.Background(), estReq("x")); err != nil || info.Fuel != countFuel || info.FuelLimit != countFuel {
			t.Fatalf("slice %d, exact budget: %+v %v", slice, info, err)
		}
		short := load(t, h, "count", Spec{Limits: Limits{FuelPerCallMax: countFuel - 1, FuelPerInputByte: -1}})
		_, info, err := short.Estimate(context.Background(), estReq("x"))
		var ce *CallError
		if !errors.As(err, &ce) || !errors.Is(err, ErrFuelExhausted) || !strings.Contains(ce.Message, "800010-unit budget") {
			t.Fatalf("slice %d, one unit short: %v (info %+v)", slice, err, info)
		}
		if info.FuelLimit != countFuel-1 || info.Fuel <= info.FuelLimit {
			t.Fatalf("exhausted call reports %+v", info)
		}
		if st := short.Stats(); st.Errors["fuel_exhausted"] != 1 || st.Instances != 0 {
			t.Fatalf("stats after exhaustion: %+v", st)
		}
		exact.Close()
		short.Close()
	}
}

// TestFuelScalesWithInput: the budget grows by FuelPerInputByte per
// request byte.
func TestFuelScalesWithInput(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	p := load(t, h, "count", Spec{Limits: Limits{FuelPerCallMax: 1000, FuelPerInputByte: 10_000}})
	defer p.Close()
	req := estReq("x")
	_, info, err := p.Estimate(context.Background(), req)
	if want := int64(1000 + 10_000*req.EncodedSize()); err != nil || info.FuelLimit != want {
		t.Fatalf("limit %d, want %d (%v)", info.FuelLimit, want, err)
	}
}

// TestFuelDeterministicAcrossHosts: every kind of guest (WAT, Go, Rust)
// uses the same fuel for the same request on fresh instances of separate
// hosts, and stateless guests on every call.
func TestFuelDeterministicAcrossHosts(t *testing.T) {
	req := estReq("LLM")
	req.Call.Params = []byte(`{"prompt":"` + strings.Repeat("hello world ", 80) + `"}`)
	req.Call.PromptChars = int64(len("hello world ") * 80)
	adm := abi.AdmitRequest{Call: estReq("Bash").Call, EstimateNanos: 5}
	cases := []struct {
		file      string
		stateless bool // no guest GC or caches: every call costs the same
	}{
		{wasmPath("estimator"), true},
		{wasmPath("count"), true},
		{wasmPath("policy"), true},
		{filepath.Join("..", "plugins", "policies", "max-cost-per-call", "max-cost-per-call.wasm"), true},
		{wasmPath("gobad"), false},
		{filepath.Join("..", "plugins", "estimators", "llm-tokens", "llm-tokens.wasm"), false},
	}
	for _, c := range cases {
		var runs [][]int64
		for range 2 {
			h, _ := newTestHost(t, Config{})
			p := load(t, h, filepath.Base(c.file), Spec{File: c.file, Config: configFor(c.file)})
			var fuels []int64
			for range 3 {
				var info CallInfo
				var err error
				if p.Kind() == abi.KindPolicy {
					_, info, err = p.Admit(context.Background(), adm)
				} else {
					_, info, err = p.Estimate(context.Background(), req)
				}
				if err != nil || info.Fuel <= 0 || info.Fuel > info.FuelLimit {
					t.Fatalf("%s: %+v %v", c.file, info, err)
				}
				fuels = append(fuels, info.Fuel)
			}
			p.Close()
			runs = append(runs, fuels)
		}
		t.Logf("%s: fuel per call %v", filepath.Base(c.file), runs[0])
		if !slices.Equal(runs[0], runs[1]) {
			t.Errorf("%s: fuel differs between hosts: %v vs %v", c.file, runs[0], runs[1])
		}
		if c.stateless && (runs[0][0] != runs[0][1] || runs[0][1] != runs[0][2]) {
			t.Errorf("%s: fuel differs between calls: %v", c.file, runs[0])
		}
	}
}

func configFor(file string) []byte {
	if strings.Contains(file, "max-cost-per-call") {
		return []byte(`{"limit_usd":"1.00"}`)
	}
	if strings.HasSuffix(file, "policy.wasm") {
		return []byte(`{"x":1}`)
	}
	return nil
}

// TestInitFuel: creating an instance has its own budget; a Go guest's
// runtime start does not fit in a tiny one, and the refusal says which
// limit to raise.
func TestInitFuel(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	_, err := h.Load(context.Background(), Spec{File: wasmPath("gobad"), Limits: Limits{FuelInitMax: 10_000}})
	var le *LoadError
	if !errors.As(err, &le) || !errors.Is(err, ErrFuelExhausted) || !strings.Contains(err.Error(), "fuel_init_max") {
		t.Fatalf("err = %v", err)
	}
	_, err = h.Load(context.Background(), Spec{File: wasmPath("startloop"), Limits: Limits{InitTimeout: 3600e9}})
	if !errors.Is(err, ErrFuelExhausted) {
		t.Fatalf("a start function that never returns: %v", err)
	}
}

// TestInstrumentedCache: with a cache directory the instrumented module is
// written once per digest and cost table, reused by the next host, and
// rebuilt when the file is damaged.
func TestInstrumentedCache(t *testing.T) {
	dir := t.TempDir()
	loadOnce := func(costs FuelCosts) {
		h, _ := newTestHost(t, Config{CompilationCacheDir: dir, FuelCosts: costs})
		p := load(t, h, "count", Spec{})
		if _, info, err := p.Estimate(context.Background(), estReq("x")); err != nil || info.Fuel != countFuel*costs.or(DefaultFuelCosts()).Instruction {
			t.Fatalf("%+v %v", info, err)
		}
		p.Close()
		_ = h.Close(context.Background())
	}
	loadOnce(FuelCosts{})
	files, _ := filepath.Glob(filepath.Join(dir, fuelCacheDir, "*.wasm"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v", files)
	}
	first, _ := os.ReadFile(files[0])
	// The next host reads it: make the cached copy distinguishable by
	// damaging it, and check it is replaced by a correct one.
	if err := os.WriteFile(files[0], first[:len(first)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	loadOnce(FuelCosts{})
	if again, _ := os.ReadFile(files[0]); !bytes.Equal(again, first) {
		t.Fatal("a damaged cache file was not rebuilt")
	}
	// Another cost table is another entry.
	loadOnce(FuelCosts{Instruction: 2})
	if files, _ = filepath.Glob(filepath.Join(dir, fuelCacheDir, "*.wasm")); len(files) != 2 {
		t.Fatalf("cache holds %v", files)
	}
}

// TestInstrumentedCacheIsUsed: a valid cached file is what the host runs,
// without instrumenting again. The test plants a module that instruments
// differently (Instruction cost 3) under the default table's name.
func TestInstrumentedCacheIsUsed(t *testing.T) {
	dir := t.TempDir()
	bin, err := os.ReadFile(wasmPath("count"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHost(t, Config{CompilationCacheDir: dir})
	planted, err := instrument(bin, FuelCosts{Instruction: 3}.or(DefaultFuelCosts()))
	if err != nil {
		t.Fatal(err)
	}
	path := h.fuelCachePath(sha256Of(bin))
	if err := writeChecked(path, planted); err != nil {
		t.Fatal(err)
	}
	p := load(t, h, "count", Spec{})
	defer p.Close()
	if _, info, err := p.Estimate(context.Background(), estReq("x")); err != nil || info.Fuel != 3*countFuel {
		t.Fatalf("fuel %d (%v): the cached module was not used", info.Fuel, err)
	}
}

// TestNotMeterableRefused: a module the instrumenter cannot rewrite is
// refused with ErrNotMeterable, not run unbounded.
func TestNotMeterableRefused(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	_, err := h.Load(context.Background(), Spec{File: wasmPath("reservedexport")})
	var le *LoadError
	if !errors.As(err, &le) || !errors.Is(err, ErrNotMeterable) || !strings.Contains(err.Error(), "__purser_") {
		t.Fatalf("err = %v", err)
	}
	if ErrorKind(err) != "not_meterable" {
		t.Fatalf("kind %q", ErrorKind(err))
	}
}

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }

// TestRustLLMEstimatorMatchesGo: the Rust benchmark guest (llmchars)
// prices prompts as llm-tokens does with its defaults, metered, so the
// fuel benchmarks compare the same work in both languages.
func TestRustLLMEstimatorMatchesGo(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	goP := load(t, h, "llm-tokens", Spec{File: filepath.Join("..", "plugins", "estimators", "llm-tokens", "llm-tokens.wasm")})
	rsP := load(t, h, "llmchars", Spec{File: filepath.Join("..", "testplugins", "rust", "llmchars", "llmchars.wasm")})
	defer goP.Close()
	defer rsP.Close()
	for _, prompt := range []string{"hi", strings.Repeat("abcdefghij", 100), strings.Repeat("é€😀 ", 3000), `say \"hi\"\n\u00e9`} {
		var params map[string]any
		if err := json.Unmarshal([]byte(`{"prompt":"`+prompt+`"}`), &params); err != nil {
			t.Fatal(err)
		}
		call, err := CallFromParams("LLM", "acct", params) // as the bridge does: prompt_chars in the header
		if err != nil {
			t.Fatal(err)
		}
		req := abi.EstimateRequest{Call: call}
		want, _, err := goP.Estimate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		got, info, err := rsP.Estimate(context.Background(), req)
		if err != nil || got.Nanos != want.Nanos || info.Fuel <= 0 {
			t.Errorf("prompt %.20q: rust %d (%v, fuel %d), go %d", prompt, got.Nanos, err, info.Fuel, want.Nanos)
		}
	}
}

// TestInitFuelReported: what starting an instance took is reported, the
// same on every host, including purser_init's share (the Rust plugin's
// whole start is its purser_init).
func TestInitFuelReported(t *testing.T) {
	file := filepath.Join("..", "plugins", "policies", "max-cost-per-call", "max-cost-per-call.wasm")
	var got []int64
	for range 2 {
		h, _ := newTestHost(t, Config{})
		p := load(t, h, "max-cost-per-call", Spec{File: file, Config: configFor(file)})
		got = append(got, p.InitFuel())
		p.Close()
		ins, err := h.Inspect(context.Background(), Spec{File: file, Config: configFor(file)})
		if err != nil || ins.InitFuel != got[len(got)-1] || ins.InitFuelLimit != DefaultLimits().FuelInitMax {
			t.Fatalf("inspect: %+v %v", ins, err)
		}
	}
	if got[0] <= 0 || got[0] != got[1] {
		t.Fatalf("init fuel %v", got)
	}
	h, _ := newTestHost(t, Config{})
	g := load(t, h, "gobad", Spec{})
	defer g.Close()
	if g.InitFuel() <= got[0] { // a Go runtime start is far more than a no_std init
		t.Fatalf("Go guest init fuel %d", g.InitFuel())
	}
}
