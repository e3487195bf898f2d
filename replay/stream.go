package replay

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/purser-dev/purser/enforcer"
)

// StreamMinStep is the smallest extension --stream asks for: the seed
// rule's minimum estimate, so that a zero or tiny hold still grows in a
// bounded number of steps.
const StreamMinStep enforcer.Nanos = 100_000 // $0.0001

// streamStep is the next extension of a hold: a quarter of the hold as it
// stands (at least StreamMinStep). A streaming runtime asks for it when
// what it has streamed reaches the hold, without knowing how long the
// call will run; growing by a share of the hold (rather than a fixed
// amount) bounds the extensions of any call to a few dozen, far below
// enforcer.MaxExtensions, however far the estimate was off.
func streamStep(held enforcer.Nanos) enforcer.Nanos {
	return max(held/4, StreamMinStep)
}

// stream grows res's hold step by step until it covers actual, as the
// call streams. When an extension is denied the call is cut there: it
// streamed what it held, which is returned with cut true. Extension ids
// are "stream-1", "stream-2", ... (unique per reservation, deterministic).
func (r *Runner) stream(ctx context.Context, res enforcer.Reservation, actual enforcer.Nanos) (held enforcer.Nanos, cut bool, err error) {
	held = res.Held()
	for k := 1; held < actual; k++ {
		x, err := r.Enforcer.Extend(ctx, enforcer.ExtendRequest{ID: res.ID, ExtensionID: "stream-" + strconv.Itoa(k), Add: streamStep(held)})
		var ibe *enforcer.InsufficientBudgetError
		if errors.As(err, &ibe) {
			return held, true, nil
		}
		if err != nil {
			return held, false, fmt.Errorf("extend hold %s (extension %d): %w", res.ID, k, err)
		}
		held = x.Held()
	}
	return held, false, nil
}
