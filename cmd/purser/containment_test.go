package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/host"
)

// The tenant of a plugin call is the account's root in the ledger, also
// for a child whose name has no '/'; an unknown account is its own.
func TestLedgerTenantsResolveRootsFromTheLedger(t *testing.T) {
	ctx := context.Background()
	var l enforcer.Ledger = enforcer.NewMemoryLedger(enforcer.LedgerOptions{})
	for _, a := range []enforcer.AccountSpec{{ID: "acme"}, {ID: "acme/bot", Parent: "acme"}, {ID: "worker7", Parent: "acme/bot"}, {ID: "other"}} {
		if _, err := l.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	var ts ledgerTenants
	ts.ledger.Store(&l)
	for account, want := range map[string]string{"acme": "acme", "acme/bot": "acme", "worker7": "acme", "other": "other", "ghost": "ghost"} {
		if got, err := ts.RootAccount(ctx, account); err != nil || got != want {
			t.Errorf("RootAccount(%q) = %q, %v; want %q", account, got, err, want)
		}
	}
}

func TestContainmentAndIsolationConfigKeys(t *testing.T) {
	file := writeFile(t, "purser.yaml", `
plugins:
  limits:
    pool_wait_max: 25ms
    quarantine_max: 1m
    log_lines_per_second: 7
    reason_bytes_max: 200
  entries:
    - path: x.wasm
      isolation: shared
      limits:
        log_line_bytes_max: 300
    - path: y.wasm
      isolation: nobody
`)
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.build()
	if err == nil || !strings.Contains(err.Error(), "plugins.entries[1].isolation") {
		t.Fatalf("a bad isolation was not refused with its path: %v", err)
	}
	cfg.Plugins.Entries = cfg.Plugins.Entries[:1]
	b, err := cfg.build()
	if err != nil {
		t.Fatal(err)
	}
	c := b.limits.Containment
	if c.PoolWaitMax != 25*time.Millisecond || c.QuarantineMax != time.Minute || c.LogLinesPerSecond != 7 || c.ReasonBytesMax != 200 {
		t.Fatalf("plugins.limits containment = %+v", c)
	}
	if s := b.plugins[0]; s.Isolation != host.IsolationShared || s.Limits.LogLineBytesMax != 300 {
		t.Fatalf("entry = %+v", s)
	}
}
