package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/enforcer/ledgertest"
	"github.com/purser-dev/purser/store/sqlite"
)

// openTemp opens a ledger in a fresh file under t.TempDir and closes it
// when the test ends.
func openTemp(t testing.TB, opts enforcer.LedgerOptions, options ...sqlite.Option) *sqlite.Ledger {
	t.Helper()
	l, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ledger.db"), opts, options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return l
}

func TestSQLiteLedgerConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, opts enforcer.LedgerOptions) enforcer.Ledger {
		return openTemp(t, opts)
	}, suiteOptions())
}
