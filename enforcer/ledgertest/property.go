package ledgertest

import (
	"testing"

	"pgregory.net/rapid"
)

// rapidSource lets rapid pick every choice, so a failure shrinks to a
// short operation sequence.
type rapidSource struct{ t *rapid.T }

func (s rapidSource) Intn(n int) int { return rapid.IntRange(0, n-1).Draw(s.t, "choice") }

// runProperty drives short random sequences through the same checks as
// the simulation; rapid shrinks any failure. The number of sequences is
// rapid's -rapid.checks flag (default 100).
func runProperty(t *testing.T, newLedger NewLedger, o RunOptions) {
	rapid.Check(t, func(rt *rapid.T) {
		clk := NewFakeClock(Epoch())
		s := newSim(newLedger(t, simOptions(clk)), clk, rapidSource{rt}, rt.Fatalf)
		steps := rapid.IntRange(1, o.PropertySteps).Draw(rt, "steps")
		for range steps {
			s.step()
		}
		s.checkAllReservations()
	})
}
