package host

import (
	"context"
	"errors"
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
	m := newMeter(ctx, t)
	defer m.r.Close(ctx)
	rapid.Check(t, func(rt *rapid.T) {
		bin := genModule(rt)
		want, err := runModule(ctx, m.r, bin)
		if err != nil {
			rt.Fatalf("original: %v", err)
		}
		ib, err := instrument(bin, DefaultFuelCosts())
		if err != nil {
			rt.Fatalf("instrument: %v", err)
		}
		m.slice = rapid.Int64Range(1, 1<<20).Draw(rt, "slice")
		const plenty = 1 << 40
		got, used, err := m.run(ctx, ib, plenty)
		if err != nil || got != want {
			rt.Fatalf("instrumented: %d, %v; original: %d", got, err, want)
		}
		if used <= 0 || used > plenty {
			rt.Fatalf("fuel used %d", used)
		}
		// Same fuel on a fresh instance under another slice.
		m.slice = 1 + m.slice/3
		if _, again, err := m.run(ctx, ib, plenty); err != nil || again != used {
			rt.Fatalf("fuel %d then %d (%v)", used, again, err)
		}
		if got, exact, err := m.run(ctx, ib, used); err != nil || got != want || exact != used {
			rt.Fatalf("budget = fuel used: %d, %d, %v", got, exact, err)
		}
		if _, over, err := m.run(ctx, ib, used-1); !errors.Is(err, ErrFuelExhausted) || over <= used-1 {
			rt.Fatalf("budget one short: used %d, err %v", over, err)
		}
	})
}

// meter runs instrumented modules the way the host does, with its own
// purser_fuel.refill: one slice in the guest, the rest in a bank.
type meter struct {
	r     wazero.Runtime
	slice int64
	bank  int64
}

func newMeter(ctx context.Context, t *testing.T) *meter {
	m := &meter{r: wazero.NewRuntime(ctx), slice: 1000}
	_, err := m.r.NewHostModuleBuilder(fuelImportModule).NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
			total := m.bank + int64(stack[0])
			if total < 0 {
				panic(ErrFuelExhausted)
			}
			next := min(total, m.slice)
			m.bank, stack[0] = total-next, uint64(next)
		}), []api.ValueType{api.ValueTypeI64}, []api.ValueType{api.ValueTypeI64}).
		Export(fuelImportRefill).Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run calls "run" on a fresh instance with a budget, after the start
// function (moved to an export) on a budget of its own. It returns the
// result and the fuel "run" used; the error wraps ErrFuelExhausted when it
// used more than the budget.
func (m *meter) run(ctx context.Context, bin []byte, budget int64) (uint64, int64, error) {
	compiled, err := m.r.CompileModule(ctx, bin)
	if err != nil {
		return 0, 0, fmt.Errorf("compile: %w", err)
	}
	defer compiled.Close(ctx)
	mod, err := m.r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		return 0, 0, fmt.Errorf("instantiate: %w", err)
	}
	defer mod.Close(ctx)
	fuel := mod.ExportedGlobal(fuelGlobalExport).(api.MutableGlobal)
	set := func(limit int64) {
		slice := min(limit, m.slice)
		fuel.Set(uint64(slice))
		m.bank = limit - slice
	}
	if start := mod.ExportedFunction(startExport); start != nil {
		set(1 << 40)
		if _, err := start.Call(ctx); err != nil {
			return 0, 0, fmt.Errorf("start: %w", err)
		}
	}
	set(budget)
	res, err := mod.ExportedFunction("run").Call(ctx)
	used := budget - (int64(fuel.Get()) + m.bank)
	if used > budget {
		return 0, used, fmt.Errorf("%w after %d units (trap: %v)", ErrFuelExhausted, used, err)
	}
	if err != nil {
		return 0, used, err
	}
	return res[0], used, nil
}
