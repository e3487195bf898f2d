package server

import (
	"context"
	"sync"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

type accountRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (a *accountRecorder) Estimate(_ context.Context, call enforcer.Call) (enforcer.Quote, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, call.Account)
	return enforcer.Quote{Nanos: 1000, Source: "plugin:rec@000000000000"}, nil
}

// Review finding (issue 12 isolation): /v1/estimate named no account, so
// every tenant's estimates ran as one account-less tenant and shared a
// tenant-isolated plugin's instance. Each scoped token now estimates as
// its own scope.
func TestEstimatesOfDifferentTenantsAreMadeForTheirOwnAccounts(t *testing.T) {
	rec := &accountRecorder{}
	f := newFixture(t, enforcer.Config{Estimators: map[string]enforcer.Estimator{"*": rec}}, true)
	f.mustDo(agentA, "POST", "/v1/estimate", map[string]any{"tool": "Read"}, 200)
	f.mustDo(agentB, "POST", "/v1/estimate", map[string]any{"tool": "Read"}, 200)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) != 2 || rec.seen[0] != "team-a" || rec.seen[1] != "team-b" {
		t.Fatalf("estimates were made for accounts %q, want [team-a team-b]", rec.seen)
	}
}
