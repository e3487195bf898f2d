package host

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"
)

// Benchmarks (see the host section of the final report / BENCHMARKS.md):
//
//	go test ./host -run '^$' -bench . -count 5
func benchEstimate(b *testing.B, cfg Config, name string) {
	h, _ := newTestHost(b, cfg)
	p := load(b, h, name, Spec{})
	defer p.Close()
	req := estReq("Read")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := p.Estimate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// benchConfig keeps the default limits except a 1 s deadline: the loaded
// 2-core machines this runs on stall threads for 50-130 ms now and then,
// which would fail a benchmark under the 100 ms default. The deadline's
// value does not change the mechanism's cost.
func benchConfig(k stopKind) Config { return Config{Limits: Limits{CallTimeout: time.Second}, stop: k} }

// BenchmarkEstimateWAT is a trivial WAT estimator through the public API
// with the stop mechanism on (the default) and off, to price it.
func BenchmarkEstimateWAT(b *testing.B) {
	b.Run("stop=watchdog", func(b *testing.B) { benchEstimate(b, benchConfig(stopWatchdog), "estimator") })
	b.Run("stop=watchdog-nofuel", func(b *testing.B) { benchEstimate(b, benchConfig(stopWatchdogNoFuel), "estimator") })
	b.Run("stop=timer", func(b *testing.B) { benchEstimate(b, benchConfig(stopContext), "estimator") })
	b.Run("stop=none", func(b *testing.B) { benchEstimate(b, benchConfig(stopNone), "estimator") })
}

// BenchmarkEstimateWATParallel runs GOMAXPROCS goroutines on one plugin's
// pool (InstancesMax = GOMAXPROCS); compare its ns/op with the serial one.
func BenchmarkEstimateWATParallel(b *testing.B) { benchParallel(b, benchConfig(stopWatchdog)) }

func benchParallel(b *testing.B, cfg Config) {
	h, _ := newTestHost(b, cfg)
	p := load(b, h, "estimator", Spec{})
	defer p.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := estReq("Read")
		for pb.Next() {
			if _, _, err := p.Estimate(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEstimateWATParallelNoStop is the same without the stop
// mechanism, to show what the pool itself scales to.
func BenchmarkEstimateWATParallelNoStop(b *testing.B) { benchParallel(b, benchConfig(stopNone)) }

// BenchmarkEstimateWATParallelNoFuel is the parallel run on wazero's own
// termination checks (the fallback for modules that cannot be instrumented).
func BenchmarkEstimateWATParallelNoFuel(b *testing.B) {
	benchParallel(b, benchConfig(stopWatchdogNoFuel))
}

// BenchmarkLoop100k runs a guest loop of 100 000 iterations per call:
// the per-iteration cost of each stop mechanism.
func BenchmarkLoop100k(b *testing.B) {
	b.Run("stop=watchdog", func(b *testing.B) { benchEstimate(b, benchConfig(stopWatchdog), "count") })
	b.Run("stop=watchdog-nofuel", func(b *testing.B) { benchEstimate(b, benchConfig(stopWatchdogNoFuel), "count") })
	b.Run("stop=none", func(b *testing.B) { benchEstimate(b, benchConfig(stopNone), "count") })
}

// BenchmarkEstimateGo is the gobad Go guest's default path (a Go runtime
// and abi.ParseRequest per call).
func BenchmarkEstimateGo(b *testing.B) { benchEstimate(b, benchConfig(stopWatchdog), "gobad") }

// BenchmarkLoadGoWarmCache loads a Go guest into a fresh host whose
// on-disk compilation cache already holds it: compile-cache hit,
// validation, instantiation, Go runtime start, manifest and init.
func BenchmarkLoadGoWarmCache(b *testing.B) {
	dir := b.TempDir()
	bin, err := os.ReadFile(wasmPath("gobad"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	warm := func() {
		h, err := New(ctx, Config{CompilationCacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		p, err := h.Load(ctx, Spec{File: "gobad.wasm", Bytes: bin})
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
		_ = h.Close(ctx)
	}
	warm()
	b.ResetTimer()
	for b.Loop() {
		warm()
	}
}

// BenchmarkGoInstanceMemory reports what one pooled Go guest instance
// costs: its linear memory and the host heap it adds.
func BenchmarkGoInstanceMemory(b *testing.B) {
	const n = 8
	h, _ := newTestHost(b, Config{Limits: Limits{InstancesMax: n}})
	p := load(b, h, "gobad", Spec{})
	defer p.Close()
	v := p.cur.Load()
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var ins []*instance
	for len(ins) < n-1 { // the load already made one
		in, err := v.newInstance(ctx)
		if err != nil {
			b.Fatal(err)
		}
		ins = append(ins, in)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	var linear uint64
	for _, in := range ins {
		linear += uint64(in.mem.Size())
	}
	for b.Loop() {
	}
	per := float64(len(ins))
	b.ReportMetric(float64(linear)/per/(1<<20), "linear-MiB/instance")
	b.ReportMetric(float64(after.Sys-before.Sys)/per/(1<<20), "sys-MiB/instance")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/per/(1<<20), "goheap-MiB/instance")
	for _, in := range ins {
		in.close()
	}
}
