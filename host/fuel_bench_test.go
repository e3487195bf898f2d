package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/abi"
)

// BenchmarkFuel compares, in one run, each workload under fuel metering
// (the default), unbounded (no stop mechanism at all) and wazero's context
// polling with a timer per call (WithCloseOnContextDone, the mechanism
// fuel replaces):
//
//	go test ./host -run '^$' -bench BenchmarkFuel -count 6
//
// Workloads: a trivial call (WAT), the LLM estimate on a 1 KB prompt (Go
// llm-tokens; Rust testplugins/rust/llmchars, which scans the params JSON
// the same way), and an admission decision (Go ask-above-utilization,
// Rust max-cost-per-call).
func BenchmarkFuel(b *testing.B) {
	for _, w := range fuelWorkloads() {
		for _, m := range []struct {
			name string
			kind stopKind
		}{{"fuel", stopWatchdog}, {"unbounded", stopNone}, {"ctxpoll", stopContext}} {
			b.Run(w.name+"/"+m.name, func(b *testing.B) {
				h, _ := newTestHost(b, benchConfig(m.kind))
				p := w.load(b, h)
				defer p.Close()
				var fuel int64
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					fuel = w.call(b, p)
				}
				if m.kind == stopWatchdog {
					b.ReportMetric(float64(fuel), "fuel/op")
				}
			})
		}
	}
}

// fuelWorkload is one plugin and the request BenchmarkFuel sends it.
type fuelWorkload struct {
	name   string
	file   string
	config string
	est    *abi.EstimateRequest
	adm    *abi.AdmitRequest
}

func (w fuelWorkload) load(b *testing.B, h *Host) *Plugin {
	var cfg []byte
	if w.config != "" {
		cfg = []byte(w.config)
	}
	return load(b, h, w.name, Spec{File: w.file, Config: cfg})
}

// call makes one call and returns its fuel.
func (w fuelWorkload) call(b *testing.B, p *Plugin) int64 {
	var info CallInfo
	var err error
	if w.est != nil {
		_, info, err = p.Estimate(context.Background(), *w.est)
	} else {
		_, info, err = p.Admit(context.Background(), *w.adm)
	}
	if err != nil {
		b.Fatal(err)
	}
	return info.Fuel
}

func fuelWorkloads() []fuelWorkload {
	llm := estReq("LLM")
	prompt := strings.Repeat("abcdefghij", 100) // 1 KB
	llm.Call.Params = []byte(`{"model":"gpt-4o","prompt":"` + prompt + `"}`)
	llm.Call.Model, llm.Call.PromptChars = "gpt-4o", int64(len(prompt))
	admit := abi.AdmitRequest{Call: estReq("Bash").Call, EstimateNanos: 50_000_000}
	admit.Call.Budget = abi.Budget{LimitNanos: 1_000_000_000, CommittedNanos: 600_000_000, RemainingNanos: 400_000_000}
	plug := func(kind, name string) string { return filepath.Join("..", "plugins", kind, name, name+".wasm") }
	return []fuelWorkload{
		{"trivial/wat", wasmPath("estimator"), "", &llm, nil},
		{"llm/go", plug("estimators", "llm-tokens"), "", &llm, nil},
		{"llm/rust", filepath.Join("..", "testplugins", "rust", "llmchars", "llmchars.wasm"), "", &llm, nil},
		{"admit/go", plug("policies", "ask-above-utilization"), `{"ask_above_pct":50}`, nil, &admit},
		{"admit/rust", plug("policies", "max-cost-per-call"), `{"limit_usd":"1.00"}`, nil, &admit},
	}
}

// BenchmarkBulkCharges prices issue 12's instrumentation (every bulk
// operation charged by its size, every fuel test comparing with the stop
// global rather than 0) against the instrumentation before it, on the
// BenchmarkFuel workloads. On a shared VM two runs of the same code
// differ by 10-30%, so both versions are loaded side by side in one
// process and timed in alternation: 21 rounds of ~20 ms per version, in
// alternating order; the metric is the median of the per-round ratios.
//
//	go test ./host -run '^$' -bench BenchmarkBulkCharges -benchtime 1x
func BenchmarkBulkCharges(b *testing.B) {
	for _, w := range fuelWorkloads() {
		b.Run(w.name, func(b *testing.B) {
			var ps [2]*Plugin // current, baseline
			for i := range ps {
				cfg := benchConfig(stopWatchdog)
				cfg.FuelCosts.baseline = i == 1
				h, _ := newTestHost(b, cfg)
				ps[i] = w.load(b, h)
			}
			timeCalls := func(p *Plugin, n int) (time.Duration, int64) {
				start := time.Now()
				var fuel int64
				for range n {
					fuel = w.call(b, p)
				}
				return time.Since(start), fuel
			}
			d, _ := timeCalls(ps[0], 200)
			n := max(1, int(20*time.Millisecond/(d/200+1)))
			const rounds = 21
			var ratios, perCall [2][]float64
			for r := range rounds {
				var ds [2]time.Duration
				var fuel [2]int64
				for k := range 2 {
					i := (k + r) % 2
					ds[i], fuel[i] = timeCalls(ps[i], n)
				}
				if fuel[0] != fuel[1] {
					b.Logf("fuel per call differs: %d, baseline %d", fuel[0], fuel[1])
				}
				ratios[0] = append(ratios[0], float64(ds[0])/float64(ds[1]))
				for i := range 2 {
					perCall[i] = append(perCall[i], float64(ds[i])/float64(n))
				}
			}
			b.ReportMetric(median(ratios[0]), "ratio")
			b.ReportMetric(median(perCall[0]), "ns/call")
			b.ReportMetric(median(perCall[1]), "baseline-ns/call")
		})
	}
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

// BenchmarkFuelPauses measures what long guest calls do to the rest of
// the process: GOMAXPROCS goroutines run the loop guest at its fuel limit
// (each call burns fuel_per_call_max and stops with ErrFuelExhausted)
// while this goroutine sleeps 200 µs at a time, recording how late it
// wakes (scheduling latency), and forces a GC every 20 ms, recording the
// stop-the-world pauses the runtime reports. The sub-benchmarks vary the
// slice, the fuel between two safe points; "slice=none" gives the guest
// no safe point within a call (the slice exceeds the budget).
//
//	go test ./host -run '^$' -bench BenchmarkFuelPauses -benchtime 400x -count 3
func BenchmarkFuelPauses(b *testing.B) {
	const budget = 50_000_000 // 2.5x the default fuel_per_call_max
	for _, slice := range []int64{50_000, 100_000, 250_000, 1_000_000, 1 << 40} {
		name := "slice=" + strconv.FormatInt(slice, 10)
		if slice > budget {
			name = "slice=none"
		}
		b.Run(name, func(b *testing.B) {
			cfg := benchConfig(stopWatchdog)
			cfg.FuelCosts.Slice = slice
			cfg.Limits.FuelPerCallMax = budget
			cfg.Limits.InstancesMax = runtime.GOMAXPROCS(0)
			cfg.Limits.FailuresBeforeUnhealthy = 1 << 30 // every call fails by design
			cfg.noSmokeCalls = true                      // and so would the load's smoke call
			h, _ := newTestHost(b, cfg)
			p := load(b, h, "loop", Spec{})
			defer p.Close()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var calls atomic.Int64
			for range runtime.GOMAXPROCS(0) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, _, err := p.Estimate(context.Background(), estReq("x")); !errors.Is(err, ErrFuelExhausted) {
							b.Errorf("want ErrFuelExhausted, got %v", err)
							return
						}
						calls.Add(1)
					}
				}()
			}
			pausesBefore := gcPauses()
			var late []time.Duration
			lastGC := time.Now()
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				time.Sleep(200 * time.Microsecond)
				late = append(late, time.Since(t0)-200*time.Microsecond)
				if time.Since(lastGC) > 20*time.Millisecond {
					runtime.GC()
					lastGC = time.Now()
				}
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			slices.Sort(late)
			b.ReportMetric(float64(late[len(late)/2].Microseconds()), "wake-late-p50-µs")
			b.ReportMetric(float64(late[len(late)*99/100].Microseconds()), "wake-late-p99-µs")
			b.ReportMetric(float64(late[len(late)-1].Microseconds()), "wake-late-max-µs")
			b.ReportMetric(gcPauseMax(pausesBefore, gcPauses())*1e6, "gc-pause-max-µs")
			b.ReportMetric(float64(calls.Load()), "guest-calls")
		})
	}
}

// gcPauses reads the runtime's histogram of stop-the-world GC pauses.
func gcPauses() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64Histogram()
}

// gcPauseMax is the upper bound of the highest bucket that gained counts
// between two readings.
func gcPauseMax(before, after *metrics.Float64Histogram) float64 {
	for i := len(after.Counts) - 1; i >= 0; i-- {
		if after.Counts[i] > before.Counts[i] {
			return after.Buckets[i+1]
		}
	}
	return 0
}

// BenchmarkInstrumentGo rewrites a shipped Go plugin (about 3 MB): the
// one-time cost per digest, paid at the first load only when a
// compilation cache directory is configured.
func BenchmarkInstrumentGo(b *testing.B) {
	bin, err := os.ReadFile(filepath.Join("..", "plugins", "estimators", "llm-tokens", "llm-tokens.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	costs := DefaultFuelCosts()
	b.SetBytes(int64(len(bin)))
	b.ReportMetric(float64(len(bin))/(1<<20), "module-MiB")
	for b.Loop() {
		if _, err := instrument(bin, costs); err != nil {
			b.Fatal(err)
		}
	}
}
