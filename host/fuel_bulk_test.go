package host

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bulkOnceInstructions is fuel-bulkonce.wat's purser_estimate counted by
// hand: memory.grow and its operand and drop (3), seven bulk operations
// with three operands each (28), three stores with their operands (9)
// and the result (1).
const bulkOnceInstructions = 41

// bulkOnceFuel is what fuel-bulkonce.wat's call costs under c.
func bulkOnceFuel(c FuelCosts) int64 {
	bytes := 4096/c.BulkBytesPerUnit + 1000/c.BulkBytesPerUnit + 256/c.BulkBytesPerUnit
	return bulkOnceInstructions*c.Instruction + 2*c.MemoryGrowPerPage + bytes + 100*c.TableGrowPerElement + (100+50+8)*c.TableBulkPerElement
}

// TestFuelBulkOperationsChargeTheirSize pins the price of each bulk
// operation: its instruction plus its size in the cost table's units
// (before issue 12, table operations and memory.init cost one unit
// whatever their size, and memory.grow a flat 1,001).
func TestFuelBulkOperationsChargeTheirSize(t *testing.T) {
	for _, costs := range []FuelCosts{{}, {Instruction: 2, MemoryGrowPerPage: 10, BulkBytesPerUnit: 1, TableBulkPerElement: 3, TableGrowPerElement: 5}} {
		h, _ := newTestHost(t, Config{FuelCosts: costs, noSmokeCalls: true}) // the one-short budget fails every call
		want := bulkOnceFuel(costs.or(DefaultFuelCosts()))
		p := load(t, h, "fuel-bulkonce", Spec{})
		if _, info, err := p.Estimate(context.Background(), estReq("x")); err != nil || info.Fuel != want {
			t.Fatalf("costs %+v: fuel %d (%v), want %d", costs, info.Fuel, err, want)
		}
		exact := load(t, h, "fuel-bulkonce", Spec{Limits: Limits{FuelPerCallMax: want, FuelPerInputByte: -1}})
		if _, _, err := exact.Estimate(context.Background(), estReq("x")); err != nil {
			t.Fatalf("costs %+v: budget = fuel: %v", costs, err)
		}
		short := load(t, h, "fuel-bulkonce", Spec{Limits: Limits{FuelPerCallMax: want - 1, FuelPerInputByte: -1}})
		if _, _, err := short.Estimate(context.Background(), estReq("x")); !errors.Is(err, ErrFuelExhausted) {
			t.Fatalf("costs %+v: budget one short: %v", costs, err)
		}
	}
}

// TestBulkBombsRunOutOfFuel: guests that loop over huge bulk operations
// (issue 12 holes 1 and 2: table.grow by 10 M entries, table.fill of a
// whole table; and the other bulk operations) stop on their fuel, well
// inside the deadline, because each operation is charged its size before
// it runs. Before, table operations and memory.init cost one unit each:
// table.grow ran the host out of memory (a Go fatal error under a 4 GB
// address-space limit) and the others ran until the deadline. The
// deadline is generous (the test asserts which limit stops the call, not
// how fast); fuel-membulk faults in 32 MiB of fresh memory, which takes
// this VM up to 0.3 s, so it gets more.
func TestBulkBombsRunOutOfFuel(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout time.Duration
	}{{"fuel-tablegrow", time.Second}, {"fuel-tablefill", time.Second}, {"fuel-tablecopy", time.Second},
		{"fuel-meminit", time.Second}, {"fuel-membulk", 10 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			// The load's smoke call would refuse these guests (they fail every
			// call); the test is about what stops the call.
			h, _ := newTestHost(t, Config{Limits: Limits{CallTimeout: c.timeout, InstancesMax: 1}, noSmokeCalls: true})
			p := load(t, h, c.name, Spec{})
			_, info, err := p.Estimate(context.Background(), estReq("x"))
			if !errors.Is(err, ErrFuelExhausted) {
				t.Fatalf("err = %v (fuel %d of %d), want ErrFuelExhausted", err, info.Fuel, info.FuelLimit)
			}
		})
	}
}

// TestDeadlineStopsSlowInstructions: under a cost table that prices bulk
// bytes very cheaply and a slice no call reaches, fuel-slowfill spends
// seconds in memory.fill without visiting the host. The watchdog's stop
// global makes its next loop test stop it: the call fails with ErrTimeout
// (before, it ran to the end and succeeded, 1-2 s past its deadline). How
// far past the deadline it stops is logged, not asserted (BENCHMARKS.md,
// "Bulk operations", has the measurement). The collector is off: a
// stop-the-world that starts while a guest runs waits for its next visit
// to the host, and stops the watchdog too, which is what the slice (and
// pricing every operation by its work) bounds.
func TestDeadlineStopsSlowInstructions(t *testing.T) {
	const timeout = 100 * time.Millisecond
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	h, _ := newTestHost(t, Config{
		FuelCosts: FuelCosts{BulkBytesPerUnit: 1 << 20, Slice: 1 << 40},
		Limits:    Limits{CallTimeout: timeout, FuelPerCallMax: 1 << 40},
		// The load's smoke call would time out too and refuse the guest.
		noSmokeCalls: true,
	})
	p := load(t, h, "fuel-slowfill", Spec{})
	for range 3 {
		start := time.Now()
		_, info, err := p.Estimate(context.Background(), estReq("x"))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v after %v (fuel %d), want ErrTimeout", err, time.Since(start), info.Fuel)
		}
		t.Logf("stopped %v after the %v deadline", time.Since(start)-timeout, timeout)
	}
}

// TestDeadlineStopsSlowHostCalls: fuel-randomget asks WASI for 16 MB of
// random bytes per loop iteration, ~10 ms of host work for one unit of
// fuel, so on the default costs it never reaches a refill. The watchdog's
// stop global makes its next loop test stop it at the deadline; before,
// it ran all 300 iterations (2-3 s) and succeeded.
func TestDeadlineStopsSlowHostCalls(t *testing.T) {
	h, _ := newTestHost(t, Config{Limits: Limits{CallTimeout: 100 * time.Millisecond, FuelPerCallMax: 1 << 40}, noSmokeCalls: true}) // WASI bytes cost fuel now: a budget this large keeps it a deadline test
	p := load(t, h, "fuel-randomget", Spec{})
	start := time.Now()
	_, info, err := p.Estimate(context.Background(), estReq("x"))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v after %v (fuel %d), want ErrTimeout", err, time.Since(start), info.Fuel)
	}
	t.Logf("stopped after %v", time.Since(start))
}

// TestDeadlineRacingCallsKeepExactFuel hammers the watchdog's stop global:
// goroutines call count.wat (~1-2 ms) on a deadline of about that length,
// so the watchdog fires before, during and just after calls. Every call
// either succeeds with count.wat's exact fuel or fails with ErrTimeout:
// raising the stop global never changes what a call is charged, and an
// instance reused after a late fire starts with the global lowered.
func TestDeadlineRacingCallsKeepExactFuel(t *testing.T) {
	h, _ := newTestHost(t, Config{Limits: Limits{CallTimeout: 2 * time.Millisecond, InstancesMax: 4, FailuresBeforeUnhealthy: 1 << 20}, noSmokeCalls: true}) // a 2 ms deadline would fail the smoke call
	p := load(t, h, "count", Spec{})
	var wg sync.WaitGroup
	var ok, timedOut atomic.Int64
	for range 4 {
		wg.Go(func() {
			for range 50 {
				_, info, err := p.Estimate(context.Background(), estReq("x"))
				switch {
				case err == nil && info.Fuel == countFuel:
					ok.Add(1)
				case errors.Is(err, ErrTimeout):
					timedOut.Add(1)
				default:
					t.Errorf("fuel %d, err %v: want %d and no error, or ErrTimeout", info.Fuel, err, countFuel)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d calls succeeded, %d timed out", ok.Load(), timedOut.Load())
}
