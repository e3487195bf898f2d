package host

import (
	"context"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"pgregory.net/rapid"
)

// TestFuelProperty: for random valid programs (randwasm_gen_test.go), the
// instrumented module computes what the original computes when its fuel
// suffices; its fuel is the same on every run and for any slice; a budget
// of exactly that fuel suffices and one unit less runs out.
func TestFuelProperty(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	rapid.Check(t, func(rt *rapid.T) {
		bin := genModule(rt)
		want, err := runModule(ctx, r, bin)
		if err != nil {
			rt.Fatalf("original: %v", err)
		}
		slice := rapid.Int64Range(1000, 1<<20).Draw(rt, "slice")
		costs := FuelCosts{Slice: slice}.or(DefaultFuelCosts())
		ib, err := instrument(bin, costs)
		if err != nil {
			rt.Fatalf("instrument: %v", err)
		}
		const plenty = 1 << 40
		got, used, err := runMetered(ctx, r, ib, plenty)
		if err != nil || got != want {
			rt.Fatalf("instrumented: %d, %v; original: %d", got, err, want)
		}
		if used <= 0 || used > plenty {
			rt.Fatalf("fuel used %d", used)
		}
		// Same fuel on a fresh instance and under another slice.
		other, err := instrument(bin, FuelCosts{Slice: 1000 + slice/3}.or(DefaultFuelCosts()))
		if err != nil {
			rt.Fatal(err)
		}
		if _, again, err := runMetered(ctx, r, other, plenty); err != nil || again != used {
			rt.Fatalf("fuel %d then %d (%v)", used, again, err)
		}
		if got, exact, err := runMetered(ctx, r, ib, used); err != nil || got != want || exact != used {
			rt.Fatalf("budget = fuel used: %d, %d, %v", got, exact, err)
		}
		if _, over, err := runMetered(ctx, r, ib, used-1); err == nil || over <= used-1 {
			rt.Fatalf("budget one short: used %d, err %v", over, err)
		}
	})
}

// runMetered runs "run" on a fresh instance of an instrumented module with
// a budget, the way the host does: the start function (moved to an export)
// on its own budget first. It returns the result and the fuel "run" used;
// the error is errFuelOut when it used more than budget.
func runMetered(ctx context.Context, r wazero.Runtime, bin []byte, budget int64) (uint64, int64, error) {
	compiled, err := r.CompileModule(ctx, bin)
	if err != nil {
		return 0, 0, fmt.Errorf("compile: %w", err)
	}
	defer compiled.Close(ctx)
	mod, err := r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		return 0, 0, fmt.Errorf("instantiate: %w", err)
	}
	defer mod.Close(ctx)
	fuel := mod.ExportedGlobal(fuelGlobalExport).(api.MutableGlobal)
	bank := mod.ExportedGlobal(bankGlobalExport).(api.MutableGlobal)
	set := func(limit int64) {
		slice := min(limit, int64(1000)) // the module's own slice refills from bank
		fuel.Set(uint64(slice))
		bank.Set(uint64(limit - slice))
	}
	left := func() int64 { return int64(fuel.Get()) + int64(bank.Get()) }
	if start := mod.ExportedFunction(startExport); start != nil {
		set(1 << 40)
		if _, err := start.Call(ctx); err != nil {
			return 0, 0, fmt.Errorf("start: %w", err)
		}
	}
	set(budget)
	res, err := mod.ExportedFunction("run").Call(ctx)
	used := budget - left()
	if used > budget {
		return 0, used, fmt.Errorf("%w after %d units (trap: %v)", errFuelOut, used, err)
	}
	if err != nil {
		return 0, used, err
	}
	return res[0], used, nil
}

var errFuelOut = fmt.Errorf("fuel exhausted")
