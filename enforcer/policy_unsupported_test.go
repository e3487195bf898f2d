package enforcer

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// A policy that answers "not mine" (a plugin's unsupported, the bridge's
// ErrNotHandled) is skipped and recorded: not a failure, not a deny, even
// fail-closed; the rest of the chain decides.
func TestPolicyNotHandledIsSkippedNotDenied(t *testing.T) {
	notMine := verdictPolicy("not-mine", Allow, fmt.Errorf("%w: plugin does not handle this call", ErrNotHandled))
	e := newTestEnforcer(t, Config{Policies: []PolicySpec{notMine, verdictPolicy("p2", Ask, nil)}})
	mustAccount(t, e, AccountSpec{ID: "a"})
	d, err := e.Check(context.Background(), Call{Account: "a", Tool: "Read"})
	if err != nil || d.Verdict != Ask || d.Policy != "p2" {
		t.Fatalf("got %v by %q (%q), %v; want ask by p2", d.Verdict, d.Policy, d.Reason, err)
	}
	o := d.Policies[0]
	if o.Policy != "not-mine" || o.Err != nil || o.Verdict != Allow || !strings.Contains(o.Reason, "skipped") {
		t.Fatalf("outcome %+v: want a recorded skip without error", o)
	}
}
