package host

import (
	"fmt"
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
