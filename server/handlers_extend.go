package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/server/decisionlog"
)

// extend serves POST /v1/reservations/{id}/extend: grow a pending hold.
// A budget deny is a value (200, decision "deny", the hold unchanged), as
// for reserve, so a streaming caller reads what remains and stops there.
func (s *Server) extend(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req extendRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	add, err := req.validate()
	if err != nil {
		return err
	}
	cur, err := s.reservationFor(r, p)
	if err != nil {
		return err
	}
	res, err := s.e.Extend(r.Context(), enforcer.ExtendRequest{ID: cur.ID, ExtensionID: req.ExtensionID, Add: add})
	out := extendResponse{DecisionID: newDecisionID(), Decision: enforcer.Allow.String(), ExtensionID: req.ExtensionID,
		AddNanos: int64(add), AddUSD: add.Decimal()}
	var ibe *enforcer.InsufficientBudgetError
	var pde *enforcer.PolicyDeniedError
	switch {
	case errors.As(err, &ibe):
		rem := int64(ibe.Remaining)
		out.Decision, out.Layer, out.Reason, out.RemainingNanos = enforcer.Deny.String(), enforcer.LayerBudget, ibe.Error(), &rem
		res = s.reservationNow(r, cur)
	case errors.As(err, &pde):
		out.Decision, out.Layer, out.Reason = enforcer.Deny.String(), enforcer.LayerPolicy, pde.Decision.Reason
		res = s.reservationNow(r, cur)
	case err == nil && res.Replayed && res.State != enforcer.StatePending:
		// A retry answered after the hold settled: not an "allow", which
		// would tell a streaming client to keep going.
		reply := &apiError{http.StatusConflict, "already_settled", fmt.Sprintf(
			"extension %q was applied earlier and reservation %q is now %s: it holds nothing more", req.ExtensionID, cur.ID, res.State)}
		s.logExtension(r, out, res, reply)
		return &referencedError{ref: out.DecisionID, err: reply}
	case err != nil:
		reply := s.extendError(r, cur, err)
		s.logExtension(r, out, cur, reply)
		return &referencedError{ref: out.DecisionID, err: reply}
	}
	out.Reservation = toReservation(res)
	s.logExtension(r, out, res, nil)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (req extendRequest) validate() (enforcer.Nanos, error) {
	if err := validateID("extension_id", req.ExtensionID, true); err != nil {
		return 0, err
	}
	add, err := parseAmount("add", req.AddUSD, req.AddNanos)
	switch {
	case err != nil:
		return 0, err
	case add == nil:
		return 0, errBadRequest("field \"add_usd\" or \"add_nanos\" is required: the amount to add to the hold")
	case *add == 0:
		field := "add_usd"
		if req.AddNanos != nil {
			field = "add_nanos"
		}
		return 0, errBadRequest("field %q must be above 0: it is the amount to add to the hold", field)
	}
	return *add, nil
}

// reservationNow re-reads a reservation after a deny (another extension
// may have landed meanwhile); if that read fails, cur is what we know.
func (s *Server) reservationNow(r *http.Request, cur enforcer.Reservation) enforcer.Reservation {
	if res, err := s.e.Ledger().Reservation(r.Context(), cur.ID); err == nil {
		return res
	}
	return cur
}

// extendError words the ledger's refusal: a settled or expired hold says
// which state it is in, a reused extension id says how to use one.
func (s *Server) extendError(r *http.Request, cur enforcer.Reservation, err error) error {
	// The ledger's own text says the same; this wording is the same for
	// every store.
	switch {
	case errors.Is(err, enforcer.ErrLedgerUnavailable):
		return err
	case errors.Is(err, enforcer.ErrReservationSettled):
		state := s.reservationNow(r, cur).State
		if state == enforcer.StatePending { // pending in the record, but past its expiry
			state = enforcer.StateExpired
		}
		return &apiError{http.StatusConflict, "already_settled", fmt.Sprintf(
			"reservation %q is %s: only a pending hold can be extended; reserve again for more", cur.ID, state)}
	case errors.Is(err, enforcer.ErrReservationConflict):
		return &apiError{http.StatusConflict, "conflict", err.Error() +
			"; reuse an extension id only to retry the same extension, with the same amount"}
	}
	return err
}

// logExtension counts an extension by outcome (allow, deny, or the error
// code) and records it in the decision log.
func (s *Server) logExtension(r *http.Request, out extendResponse, res enforcer.Reservation, reply error) {
	outcome := out.Decision
	if reply != nil {
		_, outcome = statusOf(reply)
	}
	if !res.Replayed { // a repeat was counted the first time
		s.cfg.Metrics.observeExtension(outcome)
	}
	if s.cfg.DecisionLog == nil {
		return
	}
	ev := s.reservationEvent(r, decisionlog.KindExtend, out.DecisionID, res)
	ev.Outcome, ev.Layer, ev.Reason, ev.Replay = out.Decision, out.Layer, out.Reason, res.Replayed
	ev.ExtensionID, ev.AddNanos, ev.HeldNanos = out.ExtensionID, out.AddNanos, int64(res.Held())
	if reply != nil {
		ev.Outcome, ev.ErrorCode, ev.Error = decisionlog.OutcomeError, outcome, reply.Error()
	}
	s.cfg.DecisionLog.Log(ev)
}

// logSettled records a commit or release in the decision log, with the
// usage and price source a commit was priced from; a repeat says replay.
func (s *Server) logSettled(r *http.Request, res enforcer.Reservation) {
	if s.cfg.DecisionLog == nil {
		return
	}
	kind, outcome := decisionlog.KindCommit, decisionlog.OutcomeCommitted
	if res.State == enforcer.StateReleased {
		kind, outcome = decisionlog.KindRelease, decisionlog.OutcomeReleased
	}
	ev := s.reservationEvent(r, kind, newDecisionID(), res)
	charged := int64(res.Charged)
	ev.Outcome, ev.ChargedNanos, ev.CostSource, ev.Late = outcome, &charged, string(res.CostSource), res.Late
	ev.HeldNanos, ev.PriceSource = int64(res.Held()), res.PriceSource
	ev.PriceFallback = enforcer.IsFallbackPriceSource(res.PriceSource)
	ev.Usage, ev.Replay = fromUsage(res.Usage), res.Replayed
	s.cfg.DecisionLog.Log(ev)
}

// reservationEvent is what every event about an existing reservation
// says: no params (the reserve event has their hash), the reservation's
// estimate and the account right after.
func (s *Server) reservationEvent(r *http.Request, kind, decisionID string, res enforcer.Reservation) decisionlog.Event {
	return decisionlog.Event{DecisionID: decisionID, Time: s.cfg.Clock.Now().UTC(), Kind: kind, Account: res.Account,
		Tool: res.Tool, EstimateNanos: int64(res.Estimate), EstimateUSD: res.Estimate.Decimal(), ReservationID: res.ID,
		Ledger: s.ledgerSnapshot(r, res.Account)}
}
