package sqlite_test

import (
	"testing"

	"github.com/purser-dev/purser/enforcer/ledgertest"
)

// suiteOptions scales the conformance suite to a durable store. Every
// write is an fsynced transaction (about 1 ms here), so the default
// 100,000 simulation steps would take minutes: 10,000 steps still reach
// every account shape (12 accounts, three levels), ~1,000 reservations and
// all terminal states including late commits. Under the race detector,
// SQLite itself (translated C) runs several times slower, so the
// simulation, property sequences and hammers shrink again (400
// goroutines still make every hammer's exact checks apply).
func suiteOptions() ledgertest.RunOptions {
	o := ledgertest.RunOptions{SimSteps: 10_000}
	if raceEnabled {
		o.SimSteps, o.PropertySteps, o.Goroutines = 3_000, 50, 400
	}
	if testing.Short() {
		o.SimSteps = 2_000
	}
	return o
}
