package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Load refusals added by issue 12 have their own metric kind, not "other".
func TestLoadLimitRefusalsHaveTheirOwnKind(t *testing.T) {
	for err, want := range map[error]string{
		fmt.Errorf("load: %w", ErrModuleLimit):       "module_limit",
		fmt.Errorf("reload: %w", ErrManifestChanged): "manifest_changed",
	} {
		if got := ErrorKind(err); got != want {
			t.Errorf("ErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}

// A reload whose only change is the isolation setting must be applied:
// the spec differs, so the plugin is loaded again with it.
func TestIsolationChangeIsASpecChange(t *testing.T) {
	if sameSpec(Spec{Isolation: IsolationTenant}, Spec{Isolation: IsolationShared}) {
		t.Fatal("specs differing only in isolation compare equal: a reload would keep the old setting")
	}
}

type failingTenants struct{ err error }

func (f failingTenants) RootAccount(context.Context, string) (string, error) { return "", f.err }

// A tenant lookup fails when the ledger is down; its error names the
// database, which must not reach callers (fallback errors, deny reasons).
func TestTenantLookupFailureDoesNotLeakTheLedgerError(t *testing.T) {
	secret := errors.New("dial tcp 10.1.2.3:5432: postgres://purser@db-prod")
	h, _ := newTestHost(t, Config{Tenants: failingTenants{secret}})
	p := load(t, h, "estimator", Spec{})
	_, _, err := p.Estimate(context.Background(), estReq("x"))
	if !errors.Is(err, ErrTenant) {
		t.Fatalf("err = %v, want ErrTenant", err)
	}
	if strings.Contains(err.Error(), "db-prod") || strings.Contains(err.Error(), "10.1.2.3") {
		t.Fatalf("caller-visible error leaks the ledger's: %v", err)
	}
}

// Review finding: LastError (shown to every agent by GET /v1/plugins)
// carried guest-chosen numbers (a bad result's pointer or length, an error
// code, an exit code): enough to pass a few bytes of one caller's request
// to other tenants. It keeps only the kind.
func TestLastErrorKeepsOnlyTheKind(t *testing.T) {
	h, _ := newTestHost(t, Config{noSmokeCalls: true})
	p := load(t, h, "garbage_range", Spec{})
	_, _, err := p.Estimate(context.Background(), estReq("x"))
	if !errors.Is(err, ErrBadOutput) || !strings.Contains(err.Error(), "4293918720") {
		t.Fatalf("err = %v, want bad output naming the guest's pointer (the caller may see it)", err)
	}
	if last := p.LastError(); last == "" || strings.Contains(last, "4293918720") {
		t.Fatalf("LastError = %q: want the kind only, no guest-chosen detail", last)
	}
}
