package postgres

import (
	"context"
	"fmt"

	"github.com/purser-dev/purser/enforcer"
)

// Extend grows a hold. A hold this host admitted during an outage (it
// lives in memory) grows within the same fail-open limits that admitted
// it: the whole hold stays within CallMax and the unwritten spend within
// TotalMax, so an outage still risks at most TotalMax per host. A hold in
// the shared ledger grows there; while the ledger is unreachable that is
// refused as unavailable (fail closed): its budget can only be read
// there, and a hold that grew offline would be bounded by nothing.
func (f *FailOpen) Extend(ctx context.Context, req enforcer.ExtendRequest) (enforcer.Reservation, error) {
	if err := req.Validate(); err != nil {
		return enforcer.Reservation{}, err
	}
	f.mu.Lock()
	if o, ok := f.res[req.ID]; ok {
		defer f.mu.Unlock()
		f.expireLocked(f.clock.Now())
		return f.extendOutageLocked(o, req)
	}
	f.mu.Unlock()
	err := fmt.Errorf("postgres ledger %s is %w", f.where, ErrUnavailable)
	if !f.isDown() {
		var r enforcer.Reservation
		if r, err = f.Ledger.Extend(ctx, req); !outage(ctx, err) {
			return r, err
		}
		f.setDown(true)
	}
	return enforcer.Reservation{}, fmt.Errorf("extend %q: %w; fail-open does not extend a hold held in the shared ledger: "+
		"its budget is read there, and a hold grown offline would be bounded by nothing", req.ID, err)
}

// ExtensionAdded answers an outage hold's extensions from memory, others
// from the shared ledger.
func (f *FailOpen) ExtensionAdded(ctx context.Context, id, extensionID string) (enforcer.Nanos, bool, error) {
	f.mu.Lock()
	if o, ok := f.res[id]; ok {
		add, known := o.ext[extensionID]
		f.mu.Unlock()
		return add, known, nil
	}
	f.mu.Unlock()
	return f.Ledger.ExtensionAdded(ctx, id, extensionID)
}

// extendOutageLocked grows an outage hold within the fail-open limits;
// f.mu is held and expired holds are marked.
func (f *FailOpen) extendOutageLocked(o *outageRes, req enforcer.ExtendRequest) (enforcer.Reservation, error) {
	if prev, ok := o.ext[req.ExtensionID]; ok {
		return sameExtension(req, o.r, prev)
	}
	if err := enforcer.ExtendAllowed(o.r, len(o.ext), req.Add); err != nil {
		return enforcer.Reservation{}, fmt.Errorf("%w (held by this host during an outage)", err)
	}
	// The grown hold must be one the fail-open allowance could have
	// admitted whole: at most CallMax, and within TotalMax in all.
	room := min(f.callMax-o.r.Held(), f.totalMax-f.exposed-f.writtenBack)
	if req.Add > room {
		return enforcer.Reservation{}, fmt.Errorf("extend %q: postgres ledger %s is %w; fail-open holds at most %s per call "+
			"and %s unwritten in all (%s now): this hold of %s cannot grow by %s", req.ID, f.where, ErrUnavailable,
			f.callMax, f.totalMax, f.exposed, o.r.Held(), req.Add)
	}
	if o.ext == nil {
		o.ext = map[string]enforcer.Nanos{}
	}
	o.ext[req.ExtensionID] = req.Add
	o.r.Extended += req.Add
	f.exposed += req.Add
	f.onEvent("fail-open: outage hold extended while the ledger is unreachable", "reservation", req.ID,
		"add", req.Add.String(), "held", o.r.Held().String(), "unwritten", f.exposed.String())
	return o.r, nil
}

// MergeCalibration merges in the shared ledger. During an outage it fails
// (wrapping ErrUnavailable) without trying, and the caller keeps its
// deltas for the next merge: calibration is never written anywhere else.
func (f *FailOpen) MergeCalibration(ctx context.Context, deltas map[string][]byte,
	merge func(old, delta []byte) ([]byte, error)) (map[string][]byte, error) {
	if f.isDown() {
		return nil, fmt.Errorf("merge calibration: postgres ledger %s is %w (fail-open admits calls, not calibration): "+
			"keep the deltas and merge them once it answers", f.where, ErrUnavailable)
	}
	out, err := f.Ledger.MergeCalibration(ctx, deltas, merge)
	if outage(ctx, err) {
		f.setDown(true)
	}
	return out, err
}
