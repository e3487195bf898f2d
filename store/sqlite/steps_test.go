package sqlite_test

import "testing"

// simSteps scales the conformance simulation to a durable store: every
// write is an fsynced transaction, so 100,000 steps would take minutes.
func simSteps() int {
	if testing.Short() {
		return 2_000
	}
	return 10_000
}
