package main

import (
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/pursertest"
)

const dollar = 1_000_000_000

func TestThresholds(t *testing.T) {
	p80, err := pursertest.New(Plugin(), "")
	if err != nil {
		t.Fatal(err)
	}
	p875, err := pursertest.New(Plugin(), `{"ask_above_pct":87.5}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                           string
		p                              *pursertest.Plugin
		limit, committed, pending, est int64
		want                           abi.Verdict
		reason                         string
	}{
		{"unlimited always allows", p80, -1, 1000 * dollar, 1000 * dollar, 1000 * dollar, abi.Allow, ""},
		{"well below", p80, 10 * dollar, 1 * dollar, 0, 1 * dollar, abi.Allow, ""},
		{"exactly at 80% is allowed (exclusive)", p80, 10 * dollar, 5 * dollar, 2 * dollar, 1 * dollar, abi.Allow, ""},
		{"one nano above 80% asks", p80, 10 * dollar, 5 * dollar, 2 * dollar, 1*dollar + 1, abi.Ask,
			"Utilization would reach 80.01% of the $10.00 limit (committed $5.00 + pending $2.00 + this call $1.000000001 = $8.000000001), above the 80% approval threshold"},
		{"85.5%", p80, 10 * dollar, 5 * dollar, 2 * dollar, 1_550_000_000, abi.Ask,
			"Utilization would reach 85.5% of the $10.00 limit (committed $5.00 + pending $2.00 + this call $1.55 = $8.55), above the 80% approval threshold"},
		{"pending counts", p80, 10 * dollar, 0, 9 * dollar, 0, abi.Ask,
			"Utilization would reach 90% of the $10.00 limit (committed $0.00 + pending $9.00 + this call $0.00 = $9.00), above the 80% approval threshold"},
		{"over the limit still asks (the budget layer denies first)", p80, 10 * dollar, 12 * dollar, 0, 0, abi.Ask,
			"Utilization would reach 120% of the $10.00 limit (committed $12.00 + pending $0.00 + this call $0.00 = $12.00), above the 80% approval threshold"},
		{"87.5% exactly allowed", p875, 8 * dollar, 7 * dollar, 0, 0, abi.Allow, ""},
		{"87.5% + a nano asks", p875, 8 * dollar, 7 * dollar, 0, 1, abi.Ask,
			"Utilization would reach 87.51% of the $8.00 limit (committed $7.00 + pending $0.00 + this call $0.000000001 = $7.000000001), above the 87.5% approval threshold"},
		{"zero limit, zero total allows", p80, 0, 0, 0, 0, abi.Allow, ""},
		{"zero limit, positive total asks", p80, 0, 0, 0, 1, abi.Ask,
			"Utilization would reach ∞% of the $0.00 limit (committed $0.00 + pending $0.00 + this call $0.000000001 = $0.000000001), above the 80% approval threshold"},
	} {
		c := pursertest.WithBudget(pursertest.NewCall("Bash", `{"command":"ls"}`), tc.limit, tc.committed, tc.pending)
		got, err := tc.p.Admit(c, tc.est)
		if err != nil || got.Verdict != tc.want || got.Reason != tc.reason {
			t.Errorf("%s: got %v %q, %v\n want %v %q", tc.name, got.Verdict, got.Reason, err, tc.want, tc.reason)
		}
	}
}

func TestOverThresholdAbove100(t *testing.T) {
	p, err := pursertest.New(Plugin(), `{"ask_above_pct":150}`)
	if err != nil {
		t.Fatal(err)
	}
	c := pursertest.WithBudget(pursertest.NewCall("Read", ""), 10*dollar, 15*dollar, 0)
	if got, _ := p.Admit(c, 0); got.Verdict != abi.Allow {
		t.Errorf("150%% threshold at 150%%: %v", got)
	}
}

func TestBadInput(t *testing.T) {
	p, _ := pursertest.New(Plugin(), "")
	c := pursertest.WithBudget(pursertest.NewCall("Read", ""), 10*dollar, 1<<62, 1<<62)
	if _, err := p.Admit(c, 1<<62); pursertest.Code(err) != abi.CodeBadRequest {
		t.Errorf("overflowing budget: %v", err)
	}
	for _, cfg := range []string{`{"ask_above_pct":0}`, `{"ask_above_pct":-5}`, `{"ask_above_pct":80.123}`, `{"ask_above_pct":1e2}`, `{"pct":80}`} {
		_, err := pursertest.New(Plugin(), cfg)
		if pursertest.Code(err) != abi.CodeBadConfig || !strings.Contains(err.Error(), "ask-above-utilization: ") {
			t.Errorf("config %s: %v", cfg, err)
		}
	}
}

func TestNoAllocPerCall(t *testing.T) {
	p, err := newPolicy([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	c := pursertest.WithBudget(pursertest.NewCall("Bash", ""), 10*dollar, 9*dollar, 0)
	req, err := newAdmitRequest(c, dollar)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() { _, _ = p.Admit(req) }); n != 0 {
		t.Fatalf("Admit (ask with reason) allocates %v times per call", n)
	}
}
