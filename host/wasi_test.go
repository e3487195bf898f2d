package host

import (
	"context"
	"errors"
	"testing"
	"time"
)

// sizedOnceInstructions is wasi-sizedonce.wat's purser_estimate counted by
// hand: random_get with its two operands and drop (4), fd_write with its
// four operands and drop (6), three stores with their operands (9) and
// the result (1).
const sizedOnceInstructions = 20

// sizedOnceFuel is what wasi-sizedonce.wat's call costs under c: the
// instructions, 4096 random bytes, and 3 iovecs of 60 bytes in all.
func sizedOnceFuel(c FuelCosts) int64 {
	return sizedOnceInstructions*c.Instruction + 4096/c.BulkBytesPerUnit + 3*wasiVectorCost + 60/c.BulkBytesPerUnit
}

// TestWASISizedCallsChargeTheirSize pins the price of random_get and
// fd_write: their call plus their size (before issue 12 each cost one
// unit whatever its size: 20 units in all). A budget of exactly that
// fuel suffices and one unit less fails the call, so the charge is taken
// in full and is the same on every call, whether the slice or the bank
// pays it.
func TestWASISizedCallsChargeTheirSize(t *testing.T) {
	// The last table's 4096-unit random_get is more than a slice: the bank pays.
	for _, costs := range []FuelCosts{{}, {Instruction: 2, BulkBytesPerUnit: 1}, {BulkBytesPerUnit: 1, Slice: 1000}} {
		h, _ := newTestHost(t, Config{FuelCosts: costs, noSmokeCalls: true}) // the one-short budget fails every call
		want := sizedOnceFuel(costs.or(DefaultFuelCosts()))
		p := load(t, h, "wasi-sizedonce", Spec{})
		for range 2 {
			if _, info, err := p.Estimate(context.Background(), estReq("x")); err != nil || info.Fuel != want {
				t.Fatalf("costs %+v: fuel %d (%v), want %d", costs, info.Fuel, err, want)
			}
		}
		exact := load(t, h, "wasi-sizedonce", Spec{Limits: Limits{FuelPerCallMax: want, FuelPerInputByte: -1}})
		if _, _, err := exact.Estimate(context.Background(), estReq("x")); err != nil {
			t.Fatalf("costs %+v: budget = fuel: %v", costs, err)
		}
		short := load(t, h, "wasi-sizedonce", Spec{Limits: Limits{FuelPerCallMax: want - 1, FuelPerInputByte: -1}})
		if _, _, err := short.Estimate(context.Background(), estReq("x")); !errors.Is(err, ErrFuelExhausted) {
			t.Fatalf("costs %+v: budget one short: %v", costs, err)
		}
	}
}

// TestWASIHostCallBombsRunOutOfFuel: guests that spend their time in WASI
// host calls (16 MB random_gets in an endless loop, reached through
// call_indirect so no instrumented call names the import; fd_writes of 2 M
// empty iovecs) stop on their fuel, charged before the host does the work.
// Before, each call cost one unit: the first ran into the deadline and the
// second succeeded after seconds of host work. The deadline is generous:
// the test asserts which limit stops the call, not how fast.
func TestWASIHostCallBombsRunOutOfFuel(t *testing.T) {
	for _, name := range []string{"wasi-randomloop", "wasi-iovecs"} {
		t.Run(name, func(t *testing.T) {
			// The load's smoke call would refuse these guests (they fail every call).
			h, _ := newTestHost(t, Config{Limits: Limits{CallTimeout: 10 * time.Second, InstancesMax: 1}, noSmokeCalls: true})
			p := load(t, h, name, Spec{})
			_, info, err := p.Estimate(context.Background(), estReq("x"))
			if !errors.Is(err, ErrFuelExhausted) || info.Fuel <= info.FuelLimit {
				t.Fatalf("err = %v (fuel %d of %d), want ErrFuelExhausted past the limit", err, info.Fuel, info.FuelLimit)
			}
		})
	}
}
