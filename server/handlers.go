package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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

func (s *Server) estimate(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req estimateRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validateID("tool", req.Tool, true); err != nil {
		return err
	}
	est, err := s.e.Estimate(r.Context(), enforcer.Call{Account: p.estimateAccount(), Tool: req.Tool, Params: req.Params})
	if errors.Is(err, enforcer.ErrStrictUnknownTool) {
		return errBadRequest("%v", err)
	}
	if err != nil {
		return err
	}
	s.cfg.Metrics.observeEstimate(est.Source)
	writeJSON(w, http.StatusOK, estimateResponse{EstimateUSD: est.Nanos.Decimal(), EstimateNanos: int64(est.Nanos),
		Source: est.Source, FallbackError: errString(est.FallbackErr), PluginError: s.estimatePluginError(est)})
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
		return s.admissionFailed(r, "check", call, "", err, err)
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
	opt.ApprovalID = s.visibleApproval(p, req.ApprovalID)
	d, res, err := s.e.Reserve(r.Context(), call, opt)
	if err != nil {
		return s.admissionFailed(r, "reserve", call, opt.ID, err, s.reserveError(r, p, call, req, opt.ID, err))
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
	if err := validateID("approval_id", req.ApprovalID, false); err != nil {
		return enforcer.ReserveOptions{}, err
	}
	// Range-check the integer before converting: the product overflows
	// past 2^63 ns and would wrap to a tiny or negative hold.
	maxMillis := s.cfg.ReservationTTLMax.Milliseconds()
	if req.TTLMillis < 0 || req.TTLMillis > maxMillis {
		return enforcer.ReserveOptions{}, errBadRequest("field \"ttl_ms\" must be from 0 (the server default) to %d (the maximum, reservations.ttl_max), got %d",
			maxMillis, req.TTLMillis)
	}
	id := req.ID
	if id == "" {
		id = s.e.NewReservationID()
	}
	return enforcer.ReserveOptions{ID: id, TTL: time.Duration(req.TTLMillis) * time.Millisecond, ApprovalID: req.ApprovalID,
		Extendable: req.Extendable}, nil
}

// foreignApproval replaces an approval id the caller may not see: it can
// never exist (ids with NUL are refused from clients), so the enforcer
// answers exactly as for an unknown id, after the same estimate and
// budget check, and nothing about the other tenant's request shows.
const foreignApproval = "\x00foreign"

func (s *Server) visibleApproval(p *principal, id string) string {
	if id == "" {
		return ""
	}
	if a, err := s.e.Approvals().Get(id); err == nil && !p.mayUse(a.Call.Account) {
		return foreignApproval
	}
	return id
}

// reserveError is what the client is told about a failed reserve. Nothing
// may show of another tenant's reservation or approval beyond what an
// unknown id shows.
func (s *Server) reserveError(r *http.Request, p *principal, call enforcer.Call, req reserveRequest, id string, err error) error {
	switch {
	case errors.Is(err, enforcer.ErrReservationConflict):
		// The caller's own reservation: say what differs. Anyone else's
		// (or one gone meanwhile): only that the id is taken, which a
		// global id space cannot hide (ARCHITECTURE.md, decisions).
		if res, lerr := s.e.Ledger().Reservation(r.Context(), id); lerr == nil && p.mayUse(res.Account) {
			return &apiError{http.StatusConflict, "conflict", err.Error() + "; reuse an id only to retry the same call"}
		}
		return &apiError{http.StatusConflict, "conflict", fmt.Sprintf("reservation id %q is already in use; "+
			"choose another id (a request without \"id\" gets a unique one)", id)}
	case errors.Is(err, enforcer.ErrApprovalNotFound):
		// Name the caller's id, also when visibleApproval replaced it.
		return fmt.Errorf("reserve %s on %q: approval %q: %w", call.Tool, call.Account, req.ApprovalID, enforcer.ErrApprovalNotFound)
	}
	return err
}

// admissionFailed records an admission the enforcer could not decide (a
// ledger outage, a conflict) in the decision log with outcome "error" and
// the full cause, and returns reply, the client's error, tagged with the
// decision id its message cites.
func (s *Server) admissionFailed(r *http.Request, kind string, call enforcer.Call, reservationID string, cause, reply error) error {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return reply // the client left: not an admission, nothing to record
	}
	id := newDecisionID()
	if s.cfg.DecisionLog != nil {
		_, code := statusOf(reply)
		ev := s.eventBase(kind, id, call)
		ev.Outcome, ev.ErrorCode, ev.Error, ev.ReservationID = decisionlog.OutcomeError, code, cause.Error(), reservationID
		s.cfg.DecisionLog.Log(ev)
	}
	return &referencedError{ref: id, err: reply}
}

// decided builds the response, logs the decision and counts it.
func (s *Server) decided(r *http.Request, kind string, call enforcer.Call, d enforcer.Decision, res *enforcer.Reservation) decisionResponse {
	out := decisionResponse{DecisionID: newDecisionID(), Decision: d.Verdict.String(), Reason: d.Reason, Layer: d.Layer,
		Policy: d.Policy, EstimateNanos: int64(d.Estimate.Nanos), EstimateUSD: d.Estimate.Nanos.Decimal(),
		Source: d.Estimate.Source, ApprovalID: d.ApprovalID, PluginError: s.decisionPluginError(d)}
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

// eventBase is what every decision-log event says about the call.
func (s *Server) eventBase(kind, decisionID string, call enforcer.Call) decisionlog.Event {
	canon, _ := json.Marshal(call.Params) // map keys sorted: canonical
	sum := sha256.Sum256(canon)
	ev := decisionlog.Event{DecisionID: decisionID, Time: s.cfg.Clock.Now().UTC(), Kind: kind, Account: call.Account,
		Tool: call.Tool, ParamsSHA256: hex.EncodeToString(sum[:])}
	if s.cfg.LogParams {
		ev.Params = call.Params
	}
	return ev
}

func (s *Server) decisionEvent(r *http.Request, kind string, out decisionResponse, call enforcer.Call, d enforcer.Decision) decisionlog.Event {
	ev := s.eventBase(kind, out.DecisionID, call)
	ev.EstimateNanos, ev.EstimateUSD, ev.Source = out.EstimateNanos, out.EstimateUSD, out.Source
	ev.FallbackError, ev.EstimateFuel = errString(d.Estimate.FallbackErr), d.Estimate.Fuel
	ev.Outcome, ev.Layer, ev.Reason, ev.ApprovalID = out.Decision, d.Layer, d.Reason, out.ApprovalID
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
	actual, err := parseAmount("actual", req.ActualUSD, req.ActualNanos)
	if err != nil {
		return err
	}
	if err := validateUsage(req.Usage); err != nil {
		return err
	}
	cur, err := s.reservationFor(r, p)
	if err != nil {
		return err
	}
	res, err := s.e.Commit(r.Context(), enforcer.CommitRequest{ID: cur.ID, Actual: actual, Source: enforcer.CostActual, Usage: toUsage(req.Usage)})
	if err != nil {
		return usageBadRequest(err)
	}
	if !res.Replayed { // a repeat was counted the first time
		s.cfg.Metrics.observeSettle(res)
	}
	s.logSettled(r, res)
	writeJSON(w, http.StatusOK, toReservation(res))
	return nil
}

// validateUsage refuses bad usage before the reservation is looked up, so
// the field is named whatever state the reservation is in; pricing (and
// its overflow check) is the enforcer's.
func validateUsage(u *usageBody) error {
	switch {
	case u == nil:
		return nil
	case u.Model == "":
		return errBadRequest("field \"usage.model\" is required to price token usage")
	case len(u.Model) > enforcer.MaxUsageModelLen:
		return errBadRequest("field \"usage.model\" is %d bytes; at most %d", len(u.Model), enforcer.MaxUsageModelLen)
	}
	return usageBadRequest(toUsage(u).Validate())
}

// usageBadRequest words an enforcer.UsageError like every other bad
// field; other errors pass through.
func usageBadRequest(err error) error {
	if ue := (*enforcer.UsageError)(nil); errors.As(err, &ue) {
		return errBadRequest("field %q: %s", ue.Field, ue.Reason)
	}
	return err
}

// parseAmount reads an optional amount given as <name>_usd or
// <name>_nanos (not both); nil when neither is given.
func parseAmount(name string, usd *string, nanos *int64) (*enforcer.Nanos, error) {
	switch {
	case usd != nil && nanos != nil:
		return nil, errBadRequest("give either \"%s_usd\" or \"%s_nanos\", not both", name, name)
	case usd != nil:
		n, err := enforcer.ParseUSD(*usd)
		if err != nil {
			return nil, errBadRequest("field \"%s_usd\": %v", name, err)
		}
		return &n, nil
	case nanos != nil:
		if *nanos < 0 {
			return nil, errBadRequest("field \"%s_nanos\" must be >= 0, got %d", name, *nanos)
		}
		n := enforcer.Nanos(*nanos)
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

// release is idempotent like commit: a retry after a lost reply finds the
// reservation released and gets it back unchanged (200), not a 409.
func (s *Server) release(w http.ResponseWriter, r *http.Request, p *principal) error {
	cur, err := s.reservationFor(r, p)
	if err != nil {
		return err
	}
	if cur.State == enforcer.StateReleased {
		writeJSON(w, http.StatusOK, toReservation(cur))
		return nil
	}
	res, err := s.e.Ledger().Release(r.Context(), cur.ID)
	if err != nil {
		return err
	}
	if !res.Replayed { // a repeat was counted the first time
		s.cfg.Metrics.observeSettle(res)
	}
	s.logSettled(r, res)
	writeJSON(w, http.StatusOK, toReservation(res))
	return nil
}

// listReservations serves GET /v1/reservations?account=&state=&limit=: a
// client that lost a reserve reply finds its pending holds here.
func (s *Server) listReservations(w http.ResponseWriter, r *http.Request, p *principal) error {
	f, err := reservationFilter(r)
	if err != nil {
		return err
	}
	if !p.mayUse(f.Account) {
		return errForbidden("token %q may not read account %q", p.name, f.Account)
	}
	list, err := s.e.Ledger().Reservations(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]*reservationResponse, 0, len(list))
	for _, res := range list {
		out = append(out, toReservation(res))
	}
	writeJSON(w, http.StatusOK, map[string]any{"reservations": out})
	return nil
}

// reservationsLimitDefault is the page size when limit is not given.
const reservationsLimitDefault = 100

func reservationFilter(r *http.Request) (enforcer.ReservationFilter, error) {
	q := r.URL.Query()
	for k, v := range q {
		switch {
		case k != "account" && k != "state" && k != "limit":
			return enforcer.ReservationFilter{}, errBadRequest("unknown query parameter %q; known: account, state, limit", k)
		case len(v) > 1:
			return enforcer.ReservationFilter{}, errBadRequest("query parameter %q is given %d times; give it once", k, len(v))
		}
	}
	f := enforcer.ReservationFilter{Account: q.Get("account"), State: enforcer.ReservationState(q.Get("state")), Limit: reservationsLimitDefault}
	if err := validateID("account", f.Account, true); err != nil {
		return f, err
	}
	switch f.State {
	case "", enforcer.StatePending, enforcer.StateCommitted, enforcer.StateReleased, enforcer.StateExpired:
	default:
		return f, errBadRequest("query parameter \"state\" must be pending, committed, released or expired, got %q", f.State)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > enforcer.MaxReservationsLimit {
			return f, errBadRequest("query parameter \"limit\" must be an integer from 1 to %d, got %q", enforcer.MaxReservationsLimit, v)
		}
		f.Limit = n
	}
	return f, nil
}
