package server

import (
	"context"
	"strings"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

// A retried extension (a known id) of a hold settled since is not an
// "allow": a streaming client reading decision would keep streaming.
func TestExtendRetryAfterSettleIsAlreadySettled(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r1", "account": "team-a", "tool": "Read"}, 200)
	body := map[string]any{"extension_id": "e1", "add_usd": "0.05"}
	f.mustDo("", "POST", "/v1/reservations/r1/extend", body, 200)
	if again := f.mustDo("", "POST", "/v1/reservations/r1/extend", body, 200); again["decision"] != "allow" {
		t.Errorf("retry while pending: %v", again)
	}
	f.mustDo("", "POST", "/v1/reservations/r1/release", nil, 200)
	st, out := f.do("", "POST", "/v1/reservations/r1/extend", body)
	if msg := errMsg(out); st != 409 || errCode(out) != "already_settled" ||
		!strings.Contains(msg, "applied earlier") || !strings.Contains(msg, "released") {
		t.Errorf("retry of e1 on a released hold: %d %v", st, out)
	}
}

// The policy layer sees an extension as a call of the hold's tool
// estimated at the grown hold: a per-call maximum cannot be passed by
// reserving little and extending much.
func TestExtendRunsThePolicies(t *testing.T) {
	cfg := enforcer.Config{Policies: []enforcer.PolicySpec{{Policy: enforcer.MaxCostPerCall{Limit: enforcer.MustParseUSD("0.05")}}}}
	f := newFixture(t, cfg, false)
	f.mustDo("", "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "100"}, 201)
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r1", "account": "team-a", "tool": "Read"}, 200)
	out := f.mustDo("", "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "5"}, 200)
	if out["decision"] != "deny" || out["layer"] != "policy" || out["reason"] != "Operation cost $5.001 exceeds limit $0.05" ||
		resOf(t, out)["held_nanos"] != float64(1_000_000) || resOf(t, out)["state"] != "pending" {
		t.Fatalf("extension past the per-call maximum: %v", out)
	}
	if a := f.mustDo("", "GET", "/v1/accounts/team-a", nil, 200); a["pending_nanos"] != float64(1_000_000) {
		t.Errorf("a policy-denied extension changed the account: %v", a)
	}
	// The id recorded nothing: it may be used again within the cap.
	ok := f.mustDo("", "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.04"}, 200)
	if ok["decision"] != "allow" || resOf(t, ok)["held_nanos"] != float64(41_000_000) {
		t.Errorf("extension within the cap: %v", ok)
	}
	// Its retry is the first answer again, not a deny of a hold that
	// already includes it.
	if again := f.mustDo("", "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.04"}, 200); again["decision"] != "allow" {
		t.Errorf("retried extension within the cap: %v", again)
	}
	evs := f.events(4)
	if ev := evs[1]; ev.Kind != "extend" || ev.Outcome != "deny" || ev.Layer != "policy" {
		t.Errorf("policy deny event: %+v", ev)
	}
}

// A policy that asks a human refuses an extension: the call is running
// and cannot wait for an approval.
func TestExtendPolicyAskIsRefused(t *testing.T) {
	ask := enforcer.PolicyFunc{PolicyName: "ask-above", Fn: func(_ context.Context, in enforcer.PolicyInput) (enforcer.PolicyResult, error) {
		if in.Estimate.Nanos > enforcer.MustParseUSD("0.01") {
			return enforcer.PolicyResult{Verdict: enforcer.Ask, Reason: "above $0.01"}, nil
		}
		return enforcer.PolicyResult{Verdict: enforcer.Allow}, nil
	}}
	f := newFixture(t, enforcer.Config{Policies: []enforcer.PolicySpec{{Policy: ask}}}, false)
	f.mustDo("", "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "100"}, 201)
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r1", "account": "team-a", "tool": "Read"}, 200)
	out := f.mustDo("", "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "1"}, 200)
	if out["decision"] != "deny" || out["layer"] != "policy" || !strings.Contains(out["reason"].(string), "above $0.01") ||
		!strings.Contains(out["reason"].(string), "cannot wait") || resOf(t, out)["held_nanos"] != float64(1_000_000) {
		t.Errorf("extension a policy asks about: %v", out)
	}
}

// Retries (lost replies) are logged as repeats, so a reader summing the
// money in extend and commit events counts it once; metrics count once.
func TestRetriesAreLoggedAsReplays(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r1", "account": "team-a", "tool": "Read"}, 200)
	for range 2 {
		f.mustDo("", "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.05"}, 200)
	}
	for range 2 {
		f.mustDo("", "POST", "/v1/reservations/r1/commit", map[string]any{"actual_usd": "0.04"}, 200)
	}
	var added, charged int64
	var replays int
	for _, ev := range f.events(5) {
		if ev.Replay {
			replays++
			continue
		}
		if ev.Kind == "extend" && ev.Outcome == "allow" {
			added += ev.AddNanos
		}
		if ev.Kind == "commit" && ev.ChargedNanos != nil {
			charged += *ev.ChargedNanos
		}
	}
	if added != 50_000_000 || charged != 40_000_000 || replays != 2 {
		t.Errorf("decision log: added %d (want 50000000), charged %d (want 40000000), %d replays (want 2)", added, charged, replays)
	}
	m := f.metricsText()
	for _, want := range []string{`purser_extensions_total{outcome="allow"} 1`, `purser_settlements_total{cost_source="actual",state="committed"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A settled reservation holds nothing: held_nanos is 0, what it held is
// still estimate_nanos + extended_nanos.
func TestSettledReservationHoldsNothing(t *testing.T) {
	f := newFixture(t, enforcer.Config{}, false)
	f.mustDo("", "PUT", "/v1/accounts/team-a", map[string]any{"limit_usd": "1"}, 201)
	f.mustDo("", "POST", "/v1/reservations", map[string]any{"id": "r1", "account": "team-a", "tool": "Read"}, 200)
	f.mustDo("", "POST", "/v1/reservations/r1/extend", map[string]any{"extension_id": "e1", "add_usd": "0.05"}, 200)
	out := f.mustDo("", "POST", "/v1/reservations/r1/commit", nil, 200)
	if out["held_nanos"] != float64(0) || out["held_usd"] != "0.00" || out["extended_nanos"] != float64(50_000_000) ||
		out["estimate_nanos"] != float64(1_000_000) || out["charged_nanos"] != float64(51_000_000) {
		t.Errorf("committed reservation: %v", out)
	}
}
