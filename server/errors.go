package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// apiError is an error with an HTTP status and a stable code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errBadRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...)}
}

func errForbidden(format string, args ...any) error {
	return &apiError{http.StatusForbidden, "forbidden", fmt.Sprintf(format, args...)}
}

// statusClientClosed is the status counted (never seen by the client) for
// a request whose client went away first: nginx's 499, not a server error.
const statusClientClosed = 499

// referencedError carries the reference (a decision id) under which the
// server recorded a failure, so the client's message and the decision log
// name the same one.
type referencedError struct {
	ref string
	err error
}

func (e *referencedError) Error() string { return e.err.Error() }
func (e *referencedError) Unwrap() error { return e.err }

// statusOf maps domain errors to HTTP statuses and codes.
func statusOf(err error) (int, string) {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.code
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "body_too_large"
	case errors.Is(err, enforcer.ErrLedgerUnavailable):
		// First: a store failure is the operative fact, whatever else it wraps.
		return http.StatusServiceUnavailable, "ledger_unavailable"
	case errors.Is(err, enforcer.ErrInvalidParams):
		return http.StatusBadRequest, "invalid_params"
	case errors.Is(err, enforcer.ErrReservationInProgress):
		return http.StatusConflict, "in_progress"
	case errors.Is(err, errors.ErrUnsupported):
		return http.StatusNotImplemented, "unsupported"
	case errors.Is(err, enforcer.ErrAccountNotFound):
		return http.StatusNotFound, "account_not_found"
	case errors.Is(err, enforcer.ErrReservationNotFound):
		return http.StatusNotFound, "reservation_not_found"
	case errors.Is(err, enforcer.ErrApprovalNotFound):
		return http.StatusNotFound, "approval_not_found"
	case errors.Is(err, enforcer.ErrReservationConflict), errors.Is(err, enforcer.ErrAccountExists):
		return http.StatusConflict, "conflict"
	case errors.Is(err, enforcer.ErrReservationSettled), errors.Is(err, enforcer.ErrApprovalDecided):
		return http.StatusConflict, "already_settled"
	case errors.Is(err, enforcer.ErrApprovalMismatch):
		return http.StatusForbidden, "approval_mismatch"
	case errors.Is(err, enforcer.ErrApprovalPending):
		return http.StatusConflict, "approval_pending"
	case errors.Is(err, enforcer.ErrApprovalRefused), errors.Is(err, enforcer.ErrApprovalUsed):
		return http.StatusConflict, "approval_unusable"
	case errors.Is(err, enforcer.ErrInvalidAmount), errors.Is(err, enforcer.ErrInvalidAccount),
		errors.Is(err, enforcer.ErrSupervisorBudget), errors.Is(err, enforcer.ErrUnknownTier),
		errors.Is(err, enforcer.ErrInvalidReservation):
		return http.StatusBadRequest, "invalid"
	case errors.Is(err, enforcer.ErrApprovalQueueFull):
		return http.StatusServiceUnavailable, "approval_queue_full"
	}
	return http.StatusInternalServerError, "internal"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		// The client hung up: whatever failed after that is not a server
		// error. Nobody reads the answer; the status is for the metrics.
		s.logger.Debug("request cancelled by the client", "method", r.Method, "path", r.URL.Path, "error", err)
		w.WriteHeader(statusClientClosed)
		return
	}
	status, code := statusOf(err)
	msg := err.Error()
	switch {
	case code == "ledger_unavailable":
		// Store errors name hosts and files: they stay in the log.
		ref := referenceOf(err)
		s.logger.Warn("ledger unavailable", "method", r.Method, "path", r.URL.Path, "ref", ref, "error", err)
		secs := int(s.cfg.LedgerRetryAfter / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		next := fmt.Sprintf("so the request was not completed; retry after %d s (a retry with the same reservation id is safe)", secs)
		if outcomeUnknown(err) {
			next = fmt.Sprintf("and its answer was lost, so the request may have been applied; "+
				"retry after %d s with the same reservation id to learn the outcome", secs)
		}
		msg = fmt.Sprintf("%s is unavailable, %s (reference %s in the server log)", s.ledgerName(), next, ref)
	case status >= 500 && code == "internal":
		// Internal detail stays in the log; the client gets a reference.
		ref := referenceOf(err)
		s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "ref", ref, "error", err)
		msg = "internal error (reference " + ref + " in the server log)"
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// outcomeUnknown reports whether the store sent the request but lost the
// answer (store/postgres.OutcomeUnknownError, matched by its method so the
// server imports no store).
func outcomeUnknown(err error) bool {
	var u interface{ OutcomeUnknown() bool }
	return errors.As(err, &u) && u.OutcomeUnknown()
}

// referenceOf is the decision id an error was logged under, else a new one.
func referenceOf(err error) string {
	if re := (*referencedError)(nil); errors.As(err, &re) {
		return re.ref
	}
	return newDecisionID()
}

func (s *Server) ledgerName() string {
	if s.cfg.LedgerName == "" {
		return "the ledger"
	}
	return "the " + s.cfg.LedgerName + " ledger"
}

// decode reads a JSON body strictly: size-capped, unknown fields refused,
// exactly one value. Messages say what and where.
func decode(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return describeDecodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest("request body: unexpected data after the JSON object")
	}
	return nil
}

func describeDecodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body exceeds %d bytes", mbe.Limit)}
	case errors.As(err, &se):
		return errBadRequest("request body: malformed JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &te):
		return errBadRequest("request body: field %q must be %s, got %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errBadRequest("request body: malformed JSON: truncated before the object ended")
	case errors.Is(err, io.EOF):
		return errBadRequest("request body: empty; a JSON object is required")
	}
	return errBadRequest("request body: %v", err)
}
