// Package ledgertest is the conformance suite every enforcer.Ledger
// implementation must pass: behaviour cases, concurrent hammers, property
// tests (pgregory.net/rapid) and a seeded simulation against a reference
// model. A store runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		ledgertest.Run(t, func(t *testing.T, opts enforcer.LedgerOptions) enforcer.Ledger {
//			return newStore(t, opts) // fresh and empty; register cleanup on t
//		}, ledgertest.RunOptions{SimSteps: 5_000}) // scale down a slow store
//	}
//
// Ledgers get a *FakeClock in opts.Clock and must read time only from it.
// A failing simulation prints its seed; replay it with -ledger.seed=N or
// PURSER_LEDGER_SEED=N. Run the suite under -race.
package ledgertest

import (
	"sync"
	"time"
)

// FakeClock is a manual enforcer.Clock, safe for concurrent use.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a clock stopped at start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *FakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Epoch is where suite clocks start; a fixed instant keeps failures
// reproducible.
func Epoch() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
