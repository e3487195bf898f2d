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
// call streams. When a step is denied it asks for what the refusing
// account has left (another account may then refuse with less), so the
// call streams up to the limit; when nothing is left the call is cut
// there: it streamed what it held, which is returned with cutBy the
// account that refused (its own account when a policy refused). Extension ids are "stream-1", "stream-2", ...
// (unique per reservation, deterministic).
func (r *Runner) stream(ctx context.Context, res enforcer.Reservation, actual enforcer.Nanos) (held enforcer.Nanos, cutBy string, err error) {
	held = res.Held()
	for k := 1; held < actual; k++ {
		add := streamStep(held)
		x, err := r.extend(ctx, res.ID, k, add)
		var ibe *enforcer.InsufficientBudgetError
		// Each retry asks for strictly less, so this ends.
		for errors.As(err, &ibe) && ibe.Remaining > 0 && ibe.Remaining < add {
			k, add = k+1, ibe.Remaining
			x, err = r.extend(ctx, res.ID, k, add)
		}
		if errors.As(err, &ibe) {
			return held, ibe.Account, nil
		}
		if errors.Is(err, enforcer.ErrPolicyDenied) {
			return held, res.Account, nil // a policy refused the grown call: cut there too
		}
		if err != nil {
			return held, "", err
		}
		held = x.Held()
	}
	return held, "", nil
}

// extend adds add to hold id as its k-th stream extension.
func (r *Runner) extend(ctx context.Context, id string, k int, add enforcer.Nanos) (enforcer.Reservation, error) {
	x, err := r.Enforcer.Extend(ctx, enforcer.ExtendRequest{ID: id, ExtensionID: "stream-" + strconv.Itoa(k), Add: add})
	var ibe *enforcer.InsufficientBudgetError
	if err != nil && !errors.As(err, &ibe) {
		return x, fmt.Errorf("extend hold %s (extension %d): %w", id, k, err)
	}
	return x, err
}
