package enforcer

import (
	"fmt"
	"slices"
)

// Rules for Extend, CommitWith and calibration state that every Ledger
// and CalibrationStore applies the same way (see ledgerrules.go).

// MaxUsageModelLen bounds TokenUsage.Model as a ledger records it.
const MaxUsageModelLen = 256

// Validate checks an extension request's own fields; the error wraps
// ErrInvalidReservation and names the reservation and the problem.
func (r ExtendRequest) Validate() error {
	var why string
	switch {
	case r.ID == "":
		why = "empty reservation id"
	case r.ExtensionID == "":
		why = "empty extension id"
	case len(r.ExtensionID) > MaxExtensionIDLen:
		why = fmt.Sprintf("extension id of %d bytes is above the maximum %d", len(r.ExtensionID), MaxExtensionIDLen)
	case r.Add <= 0:
		why = fmt.Sprintf("add %s is not positive", r.Add)
	default:
		return nil
	}
	return fmt.Errorf("extend %q: %w: %s", r.ID, ErrInvalidReservation, why)
}

// ExtendAllowed says whether a reservation may grow by add now: pending,
// below MaxExtensions extensions (count is how many it has had), and with
// a hold that stays representable. A settled or expired reservation wraps
// ErrReservationSettled and says which state it is in.
func ExtendAllowed(r Reservation, count int, add Nanos) error {
	switch {
	case r.State != StatePending:
		return fmt.Errorf("extend %q: %w: it is %s", r.ID, ErrReservationSettled, r.State)
	case count >= MaxExtensions:
		return fmt.Errorf("extend %q: %w: it has had the maximum %d extensions", r.ID, ErrInvalidReservation, MaxExtensions)
	}
	if _, err := r.Held().Add(add); err != nil {
		return fmt.Errorf("extend %q: hold %s: %w", r.ID, r.Held(), err)
	}
	return nil
}

// SameExtension accepts a repeat of an extension that added was (the
// same id and amount) and otherwise wraps ErrReservationConflict.
func SameExtension(req ExtendRequest, was Nanos) error {
	if was == req.Add {
		return nil
	}
	return fmt.Errorf("extend %q: %w: extension %q added %s, now %s",
		req.ID, ErrReservationConflict, req.ExtensionID, was, req.Add)
}

// Validate checks what a commit records beside the charge (the charge
// itself is CommitSource's); the error wraps ErrInvalidReservation, or is
// the *UsageError naming a token count.
func (r CommitRequest) Validate() error {
	var why string
	switch {
	case len(r.PriceSource) > MaxPriceSourceLen:
		why = fmt.Sprintf("price source of %d bytes is above the maximum %d", len(r.PriceSource), MaxPriceSourceLen)
	case r.Usage != nil && len(r.Usage.Model) > MaxUsageModelLen:
		why = fmt.Sprintf("usage model of %d bytes is above the maximum %d", len(r.Usage.Model), MaxUsageModelLen)
	case r.Usage != nil:
		if err := r.Usage.Validate(); err != nil {
			return fmt.Errorf("commit %q: %w", r.ID, err)
		}
		return nil
	default:
		return nil
	}
	return fmt.Errorf("commit %q: %w: %s", r.ID, ErrInvalidReservation, why)
}

// CalibrationKeys checks a MergeCalibration batch and returns its keys
// sorted, so every store merges (and drops past MaxCalibrationKeys) in
// one deterministic order. Keys are 1..MaxCalibrationKeyLen bytes and
// deltas at most MaxCalibrationValueBytes; the error wraps ErrInvalidParams.
func CalibrationKeys(deltas map[string][]byte) ([]string, error) {
	keys := make([]string, 0, len(deltas))
	for k, v := range deltas {
		switch {
		case k == "" || len(k) > MaxCalibrationKeyLen:
			return nil, fmt.Errorf("merge calibration: %w: key of %d bytes is outside 1..%d", ErrInvalidParams, len(k), MaxCalibrationKeyLen)
		case len(v) > MaxCalibrationValueBytes:
			return nil, fmt.Errorf("merge calibration: %w: delta of key %q is %d bytes, above the maximum %d", ErrInvalidParams, k, len(v), MaxCalibrationValueBytes)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// CalibrationBatch is CalibrationKeys for a MergeCalibration call: a
// batch with keys needs a merge func (nil wraps ErrInvalidParams); an
// empty batch only reads, so it may pass nil.
func CalibrationBatch(deltas map[string][]byte, merge func(old, delta []byte) ([]byte, error)) ([]string, error) {
	keys, err := CalibrationKeys(deltas)
	if err == nil && len(keys) > 0 && merge == nil {
		err = fmt.Errorf("merge calibration: %w: no merge function for %d keys", ErrInvalidParams, len(keys))
	}
	return keys, err
}

// MergedCalibrationValue checks what merge made of key's value.
func MergedCalibrationValue(key string, v []byte, err error) ([]byte, error) {
	switch {
	case err != nil:
		return nil, fmt.Errorf("merge calibration of key %q: %w", key, err)
	case len(v) > MaxCalibrationValueBytes:
		return nil, fmt.Errorf("merge calibration of key %q: %w: merged value is %d bytes, above the maximum %d", key, ErrInvalidParams, len(v), MaxCalibrationValueBytes)
	}
	return v, nil
}
