package plugins_test

import (
	"os"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/plugins/internal/wasmtest"
	"github.com/purser-dev/purser/sdk/go/pursertest"
	"github.com/purser-dev/purser/sdk/go/usd"
	"gopkg.in/yaml.v3"
)

const maxCostWasm = "policies/max-cost-per-call/max-cost-per-call.wasm"

type maxCostCase struct {
	Name        string `yaml:"name"`
	Config      string `yaml:"config"`
	Tool        string `yaml:"tool"`
	EstimateUSD string `yaml:"estimate_usd"`
	Want        string `yaml:"want"`
	Reason      string `yaml:"reason"`
	WantError   string `yaml:"want_error"`
	Message     string `yaml:"message"`
}

// TestMaxCostPerCallCases runs cases.yaml against the Rust plugin.
func TestMaxCostPerCallCases(t *testing.T) {
	raw, err := os.ReadFile("policies/max-cost-per-call/cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []maxCostCase `yaml:"cases"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("cases.yaml: %v", err)
	}
	if len(file.Cases) < 10 {
		t.Fatalf("cases.yaml has %d cases", len(file.Cases))
	}
	for _, tc := range file.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			g, err := loader.Load(maxCostWasm, str(tc.Config))
			if tc.WantError != "" {
				if err == nil {
					g.Close()
					t.Fatalf("config %s loaded; want %s", tc.Config, tc.WantError)
				}
				if code := wasmtest.Code(err); code.String() != tc.WantError || !strings.HasSuffix(err.Error(), ": "+tc.Message) {
					t.Fatalf("config %s: got %v (%v); want %s: %s", tc.Config, err, code, tc.WantError, tc.Message)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			defer g.Close()
			est, err := usd.Parse(tc.EstimateUSD)
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.Admit(abi.AdmitRequest{Call: pursertest.NewCall(tc.Tool, `{"x":1}`), EstimateNanos: est,
				EstimateSource: abi.SourceTable, EstimateSourceLabel: "table"})
			if err != nil {
				t.Fatal(err)
			}
			if got.Verdict.String() != tc.Want || got.Reason != tc.Reason {
				t.Fatalf("got %v %q; want %s %q", got.Verdict, got.Reason, tc.Want, tc.Reason)
			}
		})
	}
}

func TestMaxCostPerCallWasm(t *testing.T) {
	g := load(t, maxCostWasm, `{"limit_usd":"0.10"}`)
	m := g.Manifest
	if m.Name != "max-cost-per-call" || m.Kind != abi.KindPolicy || !m.Handles("Anything") || len(m.ConfigSchema) == 0 {
		t.Fatalf("manifest %+v", m)
	}
	if logs := g.Logs(); len(logs) != 1 || logs[0] != "2 max-cost-per-call: limit $0.10" {
		t.Errorf("init logs %q", logs)
	}
	// Requests of growing size (the guest grows its buffer) and an estimate request.
	for _, n := range []int{0, 100, 70_000, 200_000, 10} {
		c := pursertest.NewCall("LLM", `{"prompt":"`+strings.Repeat("a", n)+`"}`)
		got, err := g.Admit(abi.AdmitRequest{Call: c, EstimateNanos: 150_000_000})
		if err != nil || got.Verdict != abi.Deny || got.Reason != "Operation cost $0.15 exceeds limit $0.10" {
			t.Fatalf("%d-char prompt: %v %v", n, got, err)
		}
	}
	if _, err := g.Estimate(pursertest.NewCall("Read", "")); err == nil {
		t.Error("a policy answered purser_estimate")
	}
	// Without purser_init the policy refuses to judge.
	g2, err := loader.Load(maxCostWasm, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	if _, err := g2.Admit(abi.AdmitRequest{Call: pursertest.NewCall("Read", ""), EstimateNanos: 1}); wasmtest.Code(err) != abi.CodeNotInitialized {
		t.Errorf("uninitialised: %v", err)
	}
}

func BenchmarkMaxCostPerCallWasm(b *testing.B) {
	g := load(b, maxCostWasm, `{"limit_usd":"0.10"}`)
	r := abi.AdmitRequest{Call: pursertest.NewCall("Bash", `{"command":"ls -la"}`), EstimateNanos: 150_000_000}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Admit(r); err != nil {
			b.Fatal(err)
		}
	}
}
