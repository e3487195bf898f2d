package enforcer

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCreateAccountRefusesANameClaimingAnotherParent(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	for _, o := range []AccountOptions{{ID: "org"}, {ID: "team-a", Parent: "org", Limit: usdPtr("10")}} {
		if _, err := e.CreateAccount(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []AccountOptions{{ID: "team-a/free"}, {ID: "team-a/free", Parent: "org"}, {ID: "/x"}, {ID: "team-a/"}} {
		if _, err := e.CreateAccount(ctx, o); !errors.Is(err, ErrInvalidAccount) {
			t.Errorf("CreateAccount(%q under %q): %v; want ErrInvalidAccount", o.ID, o.Parent, err)
		}
	}
	if _, err := e.Ledger().Snapshot(ctx, "team-a/free"); !errors.Is(err, ErrAccountNotFound) {
		t.Errorf("a refused account exists: %v", err)
	}
	for _, o := range []AccountOptions{{ID: "team-a/x", Parent: "team-a"}, {ID: "team-a/y", Parent: "team-a/x"}} {
		if _, err := e.CreateAccount(ctx, o); err != nil {
			t.Errorf("CreateAccount(%q under %q): %v", o.ID, o.Parent, err)
		}
	}
}

func TestSessionAccountsCannotAliasAcrossParents(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{})
	for _, o := range []AccountOptions{{ID: "team", Limit: usdPtr("1")}, {ID: "team/alice", Parent: "team", Limit: usdPtr("0.10")}} {
		if _, err := e.CreateAccount(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if id, err := e.SessionAccount(ctx, "team", "alice/s1", nil); !errors.Is(err, ErrInvalidAccount) {
		t.Errorf("session %q with a '/': %q %v; want ErrInvalidAccount", "alice/s1", id, err)
	}
	if id, err := e.SessionAccount(ctx, "team/alice", "s1", nil); err != nil || id != "team/alice/s1" {
		t.Fatalf("alice's session: %q %v", id, err)
	}
	// "team/bob" exists under alice (her subtree, which the name rule allows);
	// it is not team's session "bob".
	if _, err := e.CreateAccount(ctx, AccountOptions{ID: "team/bob", Parent: "team/alice"}); err != nil {
		t.Fatal(err)
	}
	id, err := e.SessionAccount(ctx, "team", "bob", nil)
	if !errors.Is(err, ErrInvalidAccount) || !strings.Contains(err.Error(), `under "team/alice"`) {
		t.Errorf("SessionAccount(team, bob) returned %q, %v; want a refusal naming its real parent", id, err)
	}
}
