package host

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

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
