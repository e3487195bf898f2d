package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/purser-dev/purser/enforcer"
)

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request, p *principal) error {
	all, err := s.e.Ledger().Accounts(r.Context())
	if err != nil {
		return err
	}
	out := make([]accountResponse, 0, len(all))
	for _, a := range all {
		if p.mayUse(a.ID) {
			out = append(out, toAccount(a))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": out})
	return nil
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if !p.mayUse(id) {
		return errForbidden("token %q may not read account %q", p.name, id)
	}
	snap, err := s.e.Ledger().Snapshot(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAccount(snap))
	return nil
}

// putAccount creates the account, or updates its limit and labels.
func (s *Server) putAccount(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := validateID("id", id, true); err != nil {
		return err
	}
	if !p.mayUse(id) {
		return errForbidden("token %q may not change account %q", p.name, id)
	}
	var req accountRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Parent != "" && !p.mayUse(req.Parent) {
		return errForbidden("token %q may not attach accounts to %q", p.name, req.Parent)
	}
	limit, err := req.limit()
	if err != nil {
		return err
	}
	existing, err := s.e.Ledger().Snapshot(r.Context(), id)
	switch {
	case errors.Is(err, enforcer.ErrAccountNotFound):
		if err := mayCreate(p, id, req.Parent); err != nil {
			return err
		}
		return s.createAccount(w, r, id, req, limit)
	case err != nil:
		return err
	}
	return s.updateAccount(w, r, existing, req, limit)
}

// mayCreate keeps a scoped token's accounts inside its subtree: scopes
// match names but budgets follow parents, so a parentless (unlimited)
// account, even one named inside the scope, would spend outside every
// budget the token is under. The name rule comes first: it is the
// client's mistake whoever asks.
func mayCreate(p *principal, id, parent string) error {
	if err := enforcer.CheckAccountName(id, parent); err != nil {
		return err
	}
	if parent == "" && !p.all {
		return errForbidden("token %q is scoped to %s, so it may only create accounts under a parent within its scopes; "+
			"give \"parent\" (only an unscoped admin token creates top-level accounts)", p.name, strings.Join(p.accounts, ", "))
	}
	return nil
}

func (req accountRequest) limit() (*enforcer.Nanos, error) {
	if req.LimitUSD == nil {
		return nil, nil
	}
	if req.Unlimited {
		return nil, errBadRequest("give either \"limit_usd\" or \"unlimited\": true, not both")
	}
	n, err := enforcer.ParseUSD(*req.LimitUSD)
	if err != nil {
		return nil, errBadRequest("field \"limit_usd\": %v", err)
	}
	return &n, nil
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, id string, req accountRequest, limit *enforcer.Nanos) error {
	snap, err := s.e.CreateAccount(r.Context(), enforcer.AccountOptions{ID: id, Parent: req.Parent, Limit: limit,
		Tier: req.Tier, PercentOfParent: req.PercentOfParent, Supervisor: req.Supervisor, Labels: req.Labels})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toAccount(snap))
	return nil
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request, cur enforcer.Snapshot, req accountRequest, limit *enforcer.Nanos) error {
	switch {
	case req.Parent != "" && req.Parent != cur.Parent:
		return errBadRequest("account %q: parent cannot change (is %q, asked %q)", cur.ID, cur.Parent, req.Parent)
	case req.PercentOfParent != 0 || req.Tier != "" || (req.Supervisor && !cur.AllocateChildren):
		return errBadRequest("account %q exists: percent_of_parent, tier and supervisor apply only at creation; set limit_usd instead", cur.ID)
	}
	snap := cur
	var err error
	if limit != nil || req.Unlimited {
		if snap, err = s.e.Ledger().SetLimit(r.Context(), cur.ID, limit); err != nil {
			return err
		}
	}
	if req.Labels != nil {
		if snap, err = s.e.Ledger().SetLabels(r.Context(), cur.ID, req.Labels); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, toAccount(snap))
	return nil
}

func (s *Server) listApprovals(w http.ResponseWriter, r *http.Request, p *principal) error {
	state := enforcer.ApprovalState(r.URL.Query().Get("state"))
	switch state {
	case "", enforcer.ApprovalPending, enforcer.ApprovalApproved, enforcer.ApprovalDenied, enforcer.ApprovalExpired:
	default:
		return errBadRequest("query parameter \"state\" must be pending, approved, denied or expired, got %q", state)
	}
	list := s.e.Approvals().List(state)
	out := make([]approvalResponse, 0, len(list))
	for _, a := range list {
		if p.mayUse(a.Call.Account) {
			out = append(out, toApproval(a))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": out})
	return nil
}

func (s *Server) decideApproval(approve bool) endpoint {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		var req decideRequest
		if err := decodeOptional(r, &req); err != nil {
			return err
		}
		note := req.Note
		if note == "" {
			note = "by " + p.name
		}
		id := r.PathValue("id")
		if a, err := s.e.Approvals().Get(id); err != nil {
			return err
		} else if !p.mayUse(a.Call.Account) {
			return fmt.Errorf("approval %q: %w", id, enforcer.ErrApprovalNotFound)
		}
		decide := s.e.Approvals().Deny
		if approve {
			decide = s.e.Approvals().Approve
		}
		a, err := decide(id, note)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, toApproval(a))
		return nil
	}
}

// getApproval lets an agent poll the approval its reservation asked for.
func (s *Server) getApproval(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	a, err := s.e.Approvals().Get(id)
	if err != nil {
		return err
	}
	if !p.mayUse(a.Call.Account) {
		return fmt.Errorf("approval %q: %w", id, enforcer.ErrApprovalNotFound)
	}
	writeJSON(w, http.StatusOK, toApproval(a))
	return nil
}

func (s *Server) listPlugins(w http.ResponseWriter, _ *http.Request, _ *principal) error {
	out := []PluginInfo{}
	if s.cfg.Plugins != nil {
		out = append(out, s.cfg.Plugins.Plugins()...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"plugins": out})
	return nil
}

func (s *Server) reloadPlugins(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.cfg.Plugins == nil {
		return &apiError{http.StatusNotFound, "no_plugin_host", "this server runs without a plugin host"}
	}
	if err := s.cfg.Plugins.Reload(r.Context()); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"error":   errorDetail{Code: "reload_failed", Message: err.Error()},
			"plugins": s.cfg.Plugins.Plugins(),
		})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"plugins": s.cfg.Plugins.Plugins()})
	return nil
}
