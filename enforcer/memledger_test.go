package enforcer_test

import (
	"testing"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/enforcer/ledgertest"
)

func newMemoryLedger(_ *testing.T, opts enforcer.LedgerOptions) enforcer.Ledger {
	return enforcer.NewMemoryLedger(opts)
}

func TestMemoryLedgerConformance(t *testing.T) {
	ledgertest.Run(t, newMemoryLedger)
}
