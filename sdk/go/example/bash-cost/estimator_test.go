package main

import (
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/pursertest"
)

func TestEstimate(t *testing.T) {
	p, err := pursertest.New(Plugin(), `{"base_usd":"0.01"}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Estimate(pursertest.NewCall("Bash", `{"command":"ls -la"}`))
	if err != nil || got != 10_000_000+6*10_000 { // $0.01 + 6 chars x $0.00001
		t.Fatalf("got %d, %v", got, err)
	}
	if _, err := p.Estimate(pursertest.NewCall("Bash", `{"command":42}`)); pursertest.Code(err) != abi.CodeBadParams {
		t.Fatalf("numeric command: %v", err)
	}
	if _, err := p.Estimate(pursertest.NewCall("Read", `{}`)); pursertest.Code(err) != abi.CodeUnsupported {
		t.Fatalf("Read: %v", err)
	}
	if _, err := pursertest.New(Plugin(), `{"base":"1"}`); pursertest.Code(err) != abi.CodeBadConfig {
		t.Fatalf("unknown config field: %v", err)
	}
}
