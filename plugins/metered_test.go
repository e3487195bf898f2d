package plugins_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/host"
	"github.com/purser-dev/purser/sdk/go/pursertest"
)

// TestShippedPluginsMetered runs the cases of wasm_test.go through the
// host, which meters every module with fuel (it rewrites each one at
// load), so the shipped binaries are known to behave the same
// instrumented; each call must report fuel, the same on a second host.
// (max-cost-per-call's cases.yaml goes through the host in cmd/purser's
// `purser plugin test` test.)
func TestShippedPluginsMetered(t *testing.T) {
	ctx := context.Background()
	first := runMetered(ctx, t)
	if again := runMetered(ctx, t); len(again) != len(first) {
		t.Fatalf("%d calls, then %d", len(first), len(again))
	} else {
		for i := range first {
			if first[i] != again[i] {
				t.Errorf("call %d: fuel %d, then %d on a fresh host", i, first[i], again[i])
			}
		}
	}
}

// runMetered runs every case on a fresh host and returns each call's fuel.
func runMetered(ctx context.Context, t *testing.T) []int64 {
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	var fuels []int64
	record := func(info host.CallInfo) {
		if info.Fuel <= 0 || info.Fuel > info.FuelLimit {
			t.Errorf("fuel %d of %d", info.Fuel, info.FuelLimit)
		}
		fuels = append(fuels, info.Fuel)
	}
	llm := loadMetered(ctx, t, h, llmWasm, llmConfig)
	for _, tc := range llmCases {
		res, info, err := llm.Estimate(ctx, abi.EstimateRequest{Call: pursertest.NewCall(tc.tool, tc.params)})
		if code := guestCode(err); code != tc.code || (err == nil && res.Nanos != tc.want) {
			t.Errorf("llm-tokens %s %.60s: %d, %v; want %d, code %v", tc.tool, tc.params, res.Nanos, err, tc.want, tc.code)
		}
		record(info)
	}
	for _, p := range []struct {
		file, config string
		cases        []admitCase
	}{{toolRulesWasm, toolRulesConfig, toolRulesCases}, {utilizationWasm, utilizationConfig, utilizationCases}} {
		pol := loadMetered(ctx, t, h, p.file, p.config)
		for _, tc := range p.cases {
			got, info, err := pol.Admit(ctx, tc.request())
			if err != nil || got.Verdict != tc.want || got.Reason != tc.reason {
				t.Errorf("%s %+v: %v %q %v", p.file, tc, got.Verdict, got.Reason, err)
			}
			record(info)
		}
	}
	return fuels
}

func loadMetered(ctx context.Context, t *testing.T, h *host.Host, rel, config string) *host.Plugin {
	t.Helper()
	p, err := h.Load(ctx, host.Spec{File: filepath.FromSlash(rel), Config: []byte(config)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func guestCode(err error) abi.Code {
	var ce *host.CallError
	if errors.As(err, &ce) {
		return abi.Code(ce.Code)
	}
	if err != nil {
		return abi.Code(1 << 30) // a host failure matches no expected code
	}
	return abi.CodeOK
}
