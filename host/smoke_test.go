package host

import (
	"context"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
)

func TestEstimatorAndPolicy(t *testing.T) {
	h, logs := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	est := load(t, h, "estimator", Spec{})
	defer est.Close()
	res, info, err := est.Estimate(context.Background(), estReq("Read"))
	if err != nil || res.Nanos != 1_000_000 {
		t.Fatalf("estimate = %+v, %v", res, err)
	}
	if want := "plugin:estimator@" + est.Digest()[:12]; info.Source != want || est.SourceLabel() != want {
		t.Fatalf("source %q, label %q, want %q", info.Source, est.SourceLabel(), want)
	}
	pol := load(t, h, "policy", Spec{Config: []byte(`{"x":1}`)})
	defer pol.Close()
	req := abi.AdmitRequest{Call: estReq("Bash").Call, EstimateNanos: 10}
	req.Budget = abi.Budget{LimitNanos: 100, CommittedNanos: 95, RemainingNanos: 5}
	got, _, err := pol.Admit(context.Background(), req)
	if err != nil || got.Verdict != abi.Deny || got.Reason != "estimate exceeds remaining budget" {
		t.Fatalf("admit = %+v, %v", got, err)
	}
	req.EstimateNanos = 5
	if got, _, err = pol.Admit(context.Background(), req); err != nil || got.Verdict != abi.Allow || got.Reason != "" {
		t.Fatalf("admit = %+v, %v", got, err)
	}
	if _, _, err := pol.Estimate(context.Background(), estReq("x")); !errorsIs(err, ErrWrongKind) {
		t.Fatalf("estimate on a policy: %v", err)
	}
	if !strings.Contains(logs.String(), "purser.host.policy") || !strings.Contains(logs.String(), "admit called") {
		t.Fatalf("log import output missing:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `{"x":1}`) {
		t.Fatalf("config not delivered to purser_init:\n%s", logs.String())
	}
}
