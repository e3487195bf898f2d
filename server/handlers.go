package server

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/server/decisionlog"
)

const idBytesMax = 128

func validateID(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return errBadRequest("field %q is required", field)
	case len(v) > idBytesMax:
		return errBadRequest("field %q is %d bytes; at most %d", field, len(v), idBytesMax)
	case strings.ContainsAny(v, "?#\x00"):
		return errBadRequest("field %q contains a character not allowed in ids (?, #, NUL)", field)
	}
	return nil
}

func (s *Server) estimate(w http.ResponseWriter, r *http.Request, _ *principal) error {
	var req estimateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validateID("tool", req.Tool, true); err != nil {
		return err
	}
	est, err := s.e.Estimate(r.Context(), enforcer.Call{Tool: req.Tool, Params: req.Params})
	if errors.Is(err, enforcer.ErrStrictUnknownTool) {
		return errBadRequest("%v", err)
	}
	if err != nil {
		return err
	}
	s.cfg.Metrics.observeEstimate(est.Source)
	writeJSON(w, http.StatusOK, estimateResponse{EstimateUSD: est.Nanos.Decimal(), EstimateNanos: int64(est.Nanos),
		Source: est.Source, FallbackError: errString(est.FallbackErr)})
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *Server) callFrom(p *principal, account, tool string, params map[string]any) (enforcer.Call, error) {
	if err := validateID("account", account, true); err != nil {
		return enforcer.Call{}, err
	}
	if err := validateID("tool", tool, true); err != nil {
		return enforcer.Call{}, err
	}
	if !p.mayUse(account) {
		return enforcer.Call{}, errForbidden("token %q may not use account %q", p.name, account)
	}
	return enforcer.Call{Account: account, Tool: tool, Params: params}, nil
}

func (s *Server) check(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req checkRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	call, err := s.callFrom(p, req.Account, req.Tool, req.Params)
	if err != nil {
		return err
	}
	d, err := s.e.Check(r.Context(), call)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.decided(r, "check", call, d, nil))
	return nil
}

func (s *Server) reserve(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req reserveRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	call, err := s.callFrom(p, req.Account, req.Tool, req.Params)
	if err != nil {
		return err
	}
	opt, err := s.reserveOptions(req)
	if err != nil {
		return err
	}
	d, res, err := s.e.Reserve(r.Context(), call, opt)
	if errors.Is(err, enforcer.ErrReservationConflict) {
		return &apiError{http.StatusConflict, "conflict", fmt.Sprintf("reservation id %q is already used for another call; choose another id", opt.ID)}
	}
	if err != nil {
		return err
	}
	var rr *enforcer.Reservation
	if d.Allowed() {
		rr = &res
	}
	writeJSON(w, http.StatusOK, s.decided(r, "reserve", call, d, rr))
	return nil
}

func (s *Server) reserveOptions(req reserveRequest) (enforcer.ReserveOptions, error) {
	if err := validateID("id", req.ID, false); err != nil {
		return enforcer.ReserveOptions{}, err
	}
	if strings.Contains(req.ID, "/") {
		return enforcer.ReserveOptions{}, errBadRequest("field \"id\": reservation ids may not contain '/'")
	}
	ttl := time.Duration(req.TTLMillis) * time.Millisecond
	switch {
	case req.TTLMillis < 0:
		return enforcer.ReserveOptions{}, errBadRequest("field \"ttl_ms\" must be >= 0 (0 = server default), got %d", req.TTLMillis)
	case ttl > s.cfg.ReservationTTLMax:
		return enforcer.ReserveOptions{}, errBadRequest("field \"ttl_ms\" is %d; at most %d", req.TTLMillis, s.cfg.ReservationTTLMax.Milliseconds())
	}
	id := req.ID
	if id == "" {
		id = s.e.NewReservationID()
	}
	return enforcer.ReserveOptions{ID: id, TTL: ttl, ApprovalID: req.ApprovalID}, nil
}

// decided builds the response, logs the decision and counts it.
func (s *Server) decided(r *http.Request, kind string, call enforcer.Call, d enforcer.Decision, res *enforcer.Reservation) decisionResponse {
	out := decisionResponse{DecisionID: newDecisionID(), Decision: d.Verdict.String(), Reason: d.Reason, Layer: d.Layer,
		Policy: d.Policy, EstimateNanos: int64(d.Estimate.Nanos), EstimateUSD: d.Estimate.Nanos.Decimal(),
		Source: d.Estimate.Source, ApprovalID: d.ApprovalID}
	if d.BudgetAccount != "" && d.Remaining != enforcer.MaxNanos {
		rem := int64(d.Remaining)
		out.RemainingNanos = &rem
	}
	if res != nil {
		out.Reservation = toReservation(*res)
	}
	s.cfg.Metrics.observeDecision(d)
	if s.cfg.DecisionLog != nil {
		s.cfg.DecisionLog.Log(s.decisionEvent(r, kind, out, call, d))
	}
	return out
}

func newDecisionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "d-" + hex.EncodeToString(b[:])
}

func (s *Server) decisionEvent(r *http.Request, kind string, out decisionResponse, call enforcer.Call, d enforcer.Decision) decisionlog.Event {
	canon, _ := json.Marshal(call.Params) // map keys sorted: canonical
	sum := sha256.Sum256(canon)
	ev := decisionlog.Event{DecisionID: out.DecisionID, Time: s.cfg.Clock.Now().UTC(), Kind: kind, Account: call.Account,
		Tool: call.Tool, ParamsSHA256: hex.EncodeToString(sum[:]), EstimateNanos: out.EstimateNanos,
		EstimateUSD: out.EstimateUSD, Source: out.Source, FallbackError: errString(d.Estimate.FallbackErr),
		EstimateFuel: d.Estimate.Fuel, Outcome: out.Decision, Layer: d.Layer, Reason: d.Reason, ApprovalID: out.ApprovalID}
	if s.cfg.LogParams {
		ev.Params = call.Params
	}
	if out.Reservation != nil {
		ev.ReservationID = out.Reservation.ID
	}
	if strings.HasPrefix(d.Estimate.Source, "plugin:") {
		ev.PluginDigests = append(ev.PluginDigests, d.Estimate.Source)
	}
	for _, o := range d.Policies {
		ev.Policies = append(ev.Policies, decisionlog.Policy{Name: o.Policy, Verdict: o.Verdict.String(), Reason: o.Reason,
			Error: errString(o.Err), FailOpen: o.FailOpen, Fuel: o.Fuel})
		if strings.HasPrefix(o.Policy, "plugin:") {
			ev.PluginDigests = append(ev.PluginDigests, o.Policy)
		}
	}
	ev.Ledger = s.ledgerSnapshot(r, call.Account)
	return ev
}

func (s *Server) ledgerSnapshot(r *http.Request, account string) *decisionlog.Snapshot {
	snap, err := s.e.Ledger().Snapshot(r.Context(), account)
	if err != nil {
		return nil
	}
	a := toAccount(snap)
	return &decisionlog.Snapshot{Account: a.ID, LimitNanos: a.LimitNanos, CommittedNanos: a.CommittedNanos,
		PendingNanos: a.PendingNanos, RemainingNanos: a.RemainingNanos}
}

// reservationFor loads a reservation and checks the caller may touch it.
func (s *Server) reservationFor(r *http.Request, p *principal) (enforcer.Reservation, error) {
	id := r.PathValue("id")
	res, err := s.e.Ledger().Reservation(r.Context(), id)
	if err != nil {
		return res, err
	}
	if !p.mayUse(res.Account) {
		// Not found, not forbidden: ids must not reveal other tenants.
		return res, fmt.Errorf("reservation %q: %w", id, enforcer.ErrReservationNotFound)
	}
	return res, nil
}

func (s *Server) getReservation(w http.ResponseWriter, r *http.Request, p *principal) error {
	res, err := s.reservationFor(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toReservation(res))
	return nil
}

func (s *Server) commit(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req commitRequest
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	actual, err := req.amount()
	if err != nil {
		return err
	}
	if _, err := s.reservationFor(r, p); err != nil {
		return err
	}
	res, err := s.e.Ledger().Commit(r.Context(), r.PathValue("id"), actual, enforcer.CostActual)
	if err != nil {
		return err
	}
	s.cfg.Metrics.observeSettle(res)
	writeJSON(w, http.StatusOK, toReservation(res))
	return nil
}

func (c commitRequest) amount() (*enforcer.Nanos, error) {
	switch {
	case c.ActualUSD != nil && c.ActualNanos != nil:
		return nil, errBadRequest("give either \"actual_usd\" or \"actual_nanos\", not both")
	case c.ActualUSD != nil:
		n, err := enforcer.ParseUSD(*c.ActualUSD)
		if err != nil {
			return nil, errBadRequest("field \"actual_usd\": %v", err)
		}
		return &n, nil
	case c.ActualNanos != nil:
		if *c.ActualNanos < 0 {
			return nil, errBadRequest("field \"actual_nanos\" must be >= 0, got %d", *c.ActualNanos)
		}
		n := enforcer.Nanos(*c.ActualNanos)
		return &n, nil
	}
	return nil, nil
}

// decodeOptional accepts an empty body (also a chunked one) as {}.
func decodeOptional(r *http.Request, dst any) error {
	if r.ContentLength == 0 {
		return nil
	}
	br := bufio.NewReader(r.Body)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil
	}
	r.Body = io.NopCloser(br)
	return decode(r, dst)
}

func (s *Server) release(w http.ResponseWriter, r *http.Request, p *principal) error {
	if _, err := s.reservationFor(r, p); err != nil {
		return err
	}
	res, err := s.e.Ledger().Release(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.cfg.Metrics.observeSettle(res)
	writeJSON(w, http.StatusOK, toReservation(res))
	return nil
}
