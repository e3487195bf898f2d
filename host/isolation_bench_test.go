package host

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/abi"
)

// BenchmarkIsolation measures what tenant isolation costs on the shipped
// plugins (BENCHMARKS.md, "Isolation"):
//
//	go test ./host -run '^$' -bench BenchmarkIsolation -count 5
//
// Modes: shared (IsolationShared), tenant-one (the default, every call
// for one tenant), tenant-alternate (the default, calls alternating
// between two tenants: each keeps its warm instance), tenant-switch
// (calls alternating on a pool that keeps one instance,
// TenantInstancesMin 1: the worst case, a fresh instance per call).
func BenchmarkIsolation(b *testing.B) {
	llm := estReq("LLM")
	prompt := strings.Repeat("abcdefghij", 100) // 1 KB
	llm.Call.Params = []byte(`{"model":"gpt-4o","prompt":"` + prompt + `"}`)
	llm.Call.Model, llm.Call.PromptChars = "gpt-4o", int64(len(prompt))
	admit := abi.AdmitRequest{Call: estReq("Bash").Call, EstimateNanos: 50_000_000}
	admit.Call.Budget = abi.Budget{LimitNanos: 1_000_000_000, CommittedNanos: 600_000_000, RemainingNanos: 400_000_000}
	plug := func(kind, name string) string { return filepath.Join("..", "plugins", kind, name, name+".wasm") }
	workloads := []struct {
		name   string
		file   string
		config string
		est    *abi.EstimateRequest
		adm    *abi.AdmitRequest
	}{
		{"llm-tokens", plug("estimators", "llm-tokens"), "", &llm, nil},
		{"max-cost-per-call", plug("policies", "max-cost-per-call"), `{"limit_usd":"1.00"}`, nil, &admit},
	}
	for _, w := range workloads {
		for _, m := range []struct {
			name      string
			isolation Isolation
			switching bool
			keep      int
		}{{"shared", IsolationShared, false, 0}, {"tenant-one", IsolationTenant, false, 0},
			{"tenant-alternate", IsolationTenant, true, 0}, {"tenant-switch", IsolationTenant, true, 1}} {
			b.Run(w.name+"/"+m.name, func(b *testing.B) {
				h, _ := newTestHost(b, benchConfig(stopWatchdog))
				var cfg []byte
				if w.config != "" {
					cfg = []byte(w.config)
				}
				p := load(b, h, w.name, Spec{File: w.file, Config: cfg, Isolation: m.isolation,
					Limits: Limits{InstancesMax: 1, Containment: Containment{TenantInstancesMin: m.keep}}})
				defer p.Close()
				ctx := context.Background()
				accounts := [2]string{"tenant-a", "tenant-b"}
				b.ReportAllocs()
				i := 0
				call := func() error {
					if m.switching {
						i++
					}
					var err error
					if w.est != nil {
						r := *w.est
						r.Account = accounts[i%2]
						_, _, err = p.Estimate(ctx, r)
					} else {
						r := *w.adm
						r.Account = accounts[i%2]
						_, _, err = p.Admit(ctx, r)
					}
					return err
				}
				// Warm up: each tenant's first call creates its instance
				// (a cost per tenant, not per call; tenant-switch pays it
				// on every call all the same).
				for range 2 {
					if err := call(); err != nil {
						b.Fatal(err)
					}
				}
				for b.Loop() {
					if err := call(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// Hammer on the pool alone: more instances kept than run at once, over
// the head word into the tail ones, many tenants. No more than max
// callers ever hold instances, an instance is never held by two callers,
// a caller only gets an instance of its own tenant (or a fresh one), and
// every token comes back.
func TestPoolHammerKeepsConcurrencyAndTenants(t *testing.T) {
	const concurrency, keep, tenants, workers = 3, headSlots + 70, 150, 8
	p := newPool(concurrency, keep)
	rounds := 3000
	if testing.Short() {
		rounds = 500
	}
	var running atomic.Int32
	var held sync.Map
	var wg sync.WaitGroup
	errs := make(chan string, 1)
	report := func(e string) { // the first error is enough; never block
		select {
		case errs <- e:
		default:
		}
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				tenant := "t" + strconv.Itoa((i*7+w*13)%tenants)
				in, usable, _, slot, err := p.get(context.Background(), tenant, time.Minute)
				if err != nil {
					report(err.Error())
					return
				}
				if n := running.Add(1); n > concurrency {
					report(fmt.Sprintf("%d callers hold instances, max %d", n, concurrency))
				}
				if !usable { // created, or another tenant's to replace
					in = &instance{}
					p.home(slot, in)
				}
				if _, dup := held.LoadOrStore(in, true); dup {
					report("an instance held by two callers")
				}
				if t := in.tenant.Load(); t != nil && *t != tenant {
					report("tenant " + tenant + " got an instance of " + *t)
				}
				if in.tenant.Load() == nil {
					in.tenant.Store(&tenant)
				}
				in.lastUse.Store(int64(i))
				runtime.Gosched() // let the others overlap this hold
				held.Delete(in)
				running.Add(-1)
				if !p.put(in) {
					report("put refused on an open pool")
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if p.busy() != 0 || p.nwait.Load() != 0 || p.live > keep {
		t.Fatalf("tokens %d, waiters %d, live %d after every call ended", p.busy(), p.nwait.Load(), p.live)
	}
	if idle := p.drain(); len(idle) != p.live+len(idle) || len(idle) == 0 {
		t.Fatalf("drain returned %d instances, %d still live", len(idle), p.live)
	}
}

// BenchmarkIsolationPaired runs shared and tenant (one tenant) side by
// side in one process, alternating rounds of 2,000 calls, and reports
// the median per-round ns/call of each and the median per-round ratio,
// which machine load shifts far less than separate runs
// (BENCHMARKS.md, "Isolation"):
//
//	go test ./host -run '^$' -bench IsolationPaired -benchtime 40x
func BenchmarkIsolationPaired(b *testing.B) {
	llm := estReq("LLM")
	prompt := strings.Repeat("abcdefghij", 100)
	llm.Call.Params = []byte(`{"model":"gpt-4o","prompt":"` + prompt + `"}`)
	llm.Call.Model, llm.Call.PromptChars, llm.Account = "gpt-4o", int64(len(prompt)), "tenant-a"
	admit := abi.AdmitRequest{Call: estReq("Bash").Call, EstimateNanos: 50_000_000}
	admit.Call.Budget = abi.Budget{LimitNanos: 1_000_000_000, CommittedNanos: 600_000_000, RemainingNanos: 400_000_000}
	admit.Account = "tenant-a"
	plug := func(kind, name string) string { return filepath.Join("..", "plugins", kind, name, name+".wasm") }
	for _, w := range []struct {
		name, file, config string
	}{{"llm-tokens", plug("estimators", "llm-tokens"), ""}, {"max-cost-per-call", plug("policies", "max-cost-per-call"), `{"limit_usd":"1.00"}`}} {
		b.Run(w.name, func(b *testing.B) {
			h, _ := newTestHost(b, benchConfig(stopWatchdog))
			var cfg []byte
			if w.config != "" {
				cfg = []byte(w.config)
			}
			var ps [2]*Plugin
			for i, iso := range []Isolation{IsolationShared, IsolationTenant} {
				ps[i] = load(b, h, w.name+"-"+iso.String(), Spec{File: w.file, Config: cfg, Isolation: iso, Limits: Limits{InstancesMax: 1}})
				defer ps[i].Close()
			}
			ctx := context.Background()
			const calls = 2000
			round := func(p *Plugin) float64 {
				start := time.Now()
				for range calls {
					var err error
					if w.config == "" {
						_, _, err = p.Estimate(ctx, llm)
					} else {
						_, _, err = p.Admit(ctx, admit)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				return float64(time.Since(start).Nanoseconds()) / calls
			}
			round(ps[0])
			round(ps[1])
			var shared, tenant, ratio []float64
			for i := 0; b.Loop(); i++ {
				var s, t float64
				if i%2 == 0 {
					s, t = round(ps[0]), round(ps[1])
				} else {
					t, s = round(ps[1]), round(ps[0])
				}
				shared, tenant, ratio = append(shared, s), append(tenant, t), append(ratio, t/s)
			}
			b.ReportMetric(median(shared), "shared-ns/call")
			b.ReportMetric(median(tenant), "tenant-ns/call")
			b.ReportMetric(median(ratio), "tenant/shared")
		})
	}
}
