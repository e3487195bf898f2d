package enforcer

import "context"

// Bounds on calibration state kept by a CalibrationStore.
const (
	MaxCalibrationKeys       = 10_000
	MaxCalibrationValueBytes = 4096
)

// CalibrationStore keeps what calibration learned across restarts and,
// for a shared store, across hosts. Values are opaque to the store: the
// enforcer encodes them and supplies the merge.
type CalibrationStore interface {
	// MergeCalibration folds each delta into its key's stored value with
	// merge (old is nil for a new key), atomically per key so concurrent
	// hosts never lose each other's deltas, and returns every stored key's
	// value after the merge. Keys past MaxCalibrationKeys are not stored
	// (the delta is dropped, the others still merge); a value merge makes
	// longer than MaxCalibrationValueBytes is an error. A nil or empty
	// deltas only reads. Store failures wrap ErrLedgerUnavailable.
	MergeCalibration(ctx context.Context, deltas map[string][]byte, merge func(old, delta []byte) ([]byte, error)) (map[string][]byte, error)
}
