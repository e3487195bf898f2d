package server

import (
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/server/decisionlog"
)

// Request and response bodies. Field names are the HTTP contract
// (documented in openapi.json, which a test checks against the routes).

type estimateRequest struct {
	Tool   string         `json:"tool"`
	Params map[string]any `json:"params"`
}

type estimateResponse struct {
	EstimateUSD   string       `json:"estimate_usd"`
	EstimateNanos int64        `json:"estimate_nanos"`
	Source        string       `json:"source"`
	FallbackError string       `json:"fallback_error,omitempty"`
	PluginError   *pluginError `json:"plugin_error,omitempty"`
}

type checkRequest struct {
	Account string         `json:"account"`
	Tool    string         `json:"tool"`
	Params  map[string]any `json:"params"`
}

type decisionResponse struct {
	DecisionID     string               `json:"decision_id"`
	Decision       string               `json:"decision"`
	Reason         string               `json:"reason,omitempty"`
	Layer          string               `json:"layer,omitempty"`
	Policy         string               `json:"policy,omitempty"`
	EstimateNanos  int64                `json:"estimate_nanos"`
	EstimateUSD    string               `json:"estimate_usd"`
	Source         string               `json:"source"`
	RemainingNanos *int64               `json:"remaining_nanos"`
	ApprovalID     string               `json:"approval_id,omitempty"`
	Reservation    *reservationResponse `json:"reservation,omitempty"`
	PluginError    *pluginError         `json:"plugin_error,omitempty"`
}

type reserveRequest struct {
	ID         string         `json:"id"`
	Account    string         `json:"account"`
	Tool       string         `json:"tool"`
	Params     map[string]any `json:"params"`
	TTLMillis  int64          `json:"ttl_ms"`
	ApprovalID string         `json:"approval_id"`
	// Extendable: the caller extends the hold while the call runs and
	// stops it when an extension is denied (a streaming runtime); see
	// enforcer.ReserveOptions.Extendable.
	Extendable bool `json:"extendable"`
}

type commitRequest struct {
	ActualUSD   *string `json:"actual_usd"`
	ActualNanos *int64  `json:"actual_nanos"`
	// Usage is priced with the estimates' price table; beside an actual
	// amount it is only recorded.
	Usage *usageBody `json:"usage"`
}

// usageBody is token usage as a provider reports it (see
// enforcer.TokenUsage; input_tokens excludes the cache classes). The
// decision log records the same object.
type usageBody = decisionlog.Usage

func toUsage(u *usageBody) *enforcer.TokenUsage {
	if u == nil {
		return nil
	}
	return &enforcer.TokenUsage{Model: u.Model, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		CacheReadTokens: u.CacheReadTokens, CacheWriteTokens: u.CacheWriteTokens, CacheWrite1hTokens: u.CacheWrite1hTokens}
}

func fromUsage(u *enforcer.TokenUsage) *usageBody {
	if u == nil {
		return nil
	}
	return &usageBody{Model: u.Model, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		CacheReadTokens: u.CacheReadTokens, CacheWriteTokens: u.CacheWriteTokens, CacheWrite1hTokens: u.CacheWrite1hTokens}
}

type extendRequest struct {
	ExtensionID string  `json:"extension_id"`
	AddUSD      *string `json:"add_usd"`
	AddNanos    *int64  `json:"add_nanos"`
}

// extendResponse answers an extension like a reserve: a budget deny is a
// 200 with decision "deny", the seed's sentence and what remains, and the
// reservation as it is (unchanged by the deny).
type extendResponse struct {
	DecisionID  string `json:"decision_id"`
	Decision    string `json:"decision"` // allow or deny
	Reason      string `json:"reason,omitempty"`
	Layer       string `json:"layer,omitempty"`
	ExtensionID string `json:"extension_id"`
	AddNanos    int64  `json:"add_nanos"`
	AddUSD      string `json:"add_usd"`
	// RemainingNanos is set on a budget deny: what the tightest account on the
	// path had left (below 0 when overdrawn).
	RemainingNanos *int64               `json:"remaining_nanos"`
	Reservation    *reservationResponse `json:"reservation"`
}

type reservationResponse struct {
	ID            string    `json:"id"`
	Account       string    `json:"account"`
	Tool          string    `json:"tool"`
	State         string    `json:"state"`
	EstimateNanos int64     `json:"estimate_nanos"`
	ChargedNanos  int64     `json:"charged_nanos"`
	ChargedUSD    string    `json:"charged_usd"`
	CostSource    string    `json:"cost_source,omitempty"`
	Late          bool      `json:"late"`
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	// ExtendedNanos is what extensions added; HeldNanos is what the
	// reservation holds now: estimate + extended while pending, 0 once
	// settled or expired (estimate_nanos + extended_nanos is what it held).
	ExtendedNanos int64      `json:"extended_nanos"`
	HeldNanos     int64      `json:"held_nanos"`
	HeldUSD       string     `json:"held_usd"`
	Usage         *usageBody `json:"usage,omitempty"`
	PriceSource   string     `json:"price_source,omitempty"`
	// PriceFallback is set with PriceSource: true when the model was not
	// in the price table and a fallback rule priced it.
	PriceFallback *bool `json:"price_fallback,omitempty"`
}

// heldNow is what r holds now: nothing once it is not pending.
func heldNow(r enforcer.Reservation) enforcer.Nanos {
	if r.State != enforcer.StatePending {
		return 0
	}
	return r.Held()
}

func toReservation(r enforcer.Reservation) *reservationResponse {
	out := &reservationResponse{ID: r.ID, Account: r.Account, Tool: r.Tool, State: string(r.State),
		EstimateNanos: int64(r.Estimate), ChargedNanos: int64(r.Charged), ChargedUSD: r.Charged.Decimal(),
		CostSource: string(r.CostSource), Late: r.Late, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
		ExtendedNanos: int64(r.Extended), HeldNanos: int64(heldNow(r)), HeldUSD: heldNow(r).Decimal(),
		Usage: fromUsage(r.Usage), PriceSource: r.PriceSource}
	if r.PriceSource != "" {
		fb := enforcer.IsFallbackPriceSource(r.PriceSource)
		out.PriceFallback = &fb
	}
	return out
}

type accountRequest struct {
	LimitUSD        *string           `json:"limit_usd"`
	Unlimited       bool              `json:"unlimited"`
	Parent          string            `json:"parent"`
	Labels          map[string]string `json:"labels"`
	PercentOfParent int               `json:"percent_of_parent"`
	Tier            string            `json:"tier"`
	Supervisor      bool              `json:"supervisor"`
}

type accountResponse struct {
	ID             string                  `json:"id"`
	Parent         string                  `json:"parent,omitempty"`
	LimitNanos     *int64                  `json:"limit_nanos"`
	LimitUSD       *string                 `json:"limit_usd"`
	CommittedNanos int64                   `json:"committed_nanos"`
	PendingNanos   int64                   `json:"pending_nanos"`
	RemainingNanos *int64                  `json:"remaining_nanos"`
	Utilization    float64                 `json:"utilization"` // display only: (committed+pending)/limit
	Overdrawn      bool                    `json:"overdrawn"`
	Supervisor     bool                    `json:"supervisor,omitempty"`
	Labels         map[string]string       `json:"labels"`
	Tools          map[string]toolResponse `json:"tools,omitempty"`
}

type toolResponse struct {
	Calls      int64 `json:"calls"`
	SpentNanos int64 `json:"spent_nanos"`
}

func toAccount(s enforcer.Snapshot) accountResponse {
	out := accountResponse{ID: s.ID, Parent: s.Parent, CommittedNanos: int64(s.Committed), PendingNanos: int64(s.Pending),
		Overdrawn: s.Overdrawn, Supervisor: s.AllocateChildren, Labels: s.Labels}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if s.Limit != nil {
		l, r, u := int64(*s.Limit), int64(s.Remaining()), s.Limit.Decimal()
		out.LimitNanos, out.RemainingNanos, out.LimitUSD = &l, &r, &u
		out.Utilization = float64(s.UtilizationBP()) / 10000 // display only, never summed
	}
	if len(s.Tools) > 0 {
		out.Tools = make(map[string]toolResponse, len(s.Tools))
		for k, v := range s.Tools {
			out.Tools[k] = toolResponse{Calls: v.Calls, SpentNanos: int64(v.Spent)}
		}
	}
	return out
}

type approvalResponse struct {
	ID            string         `json:"id"`
	State         string         `json:"state"`
	Account       string         `json:"account"`
	Tool          string         `json:"tool"`
	Params        map[string]any `json:"params,omitempty"`
	EstimateNanos int64          `json:"estimate_nanos"`
	Policy        string         `json:"policy,omitempty"`
	Reason        string         `json:"reason"`
	Note          string         `json:"note,omitempty"`
	Used          bool           `json:"used"`
	CreatedAt     time.Time      `json:"created_at"`
	ExpiresAt     time.Time      `json:"expires_at"`
}

func toApproval(a enforcer.ApprovalRequest) approvalResponse {
	return approvalResponse{ID: a.ID, State: string(a.State), Account: a.Call.Account, Tool: a.Call.Tool,
		Params: a.Call.Params, EstimateNanos: int64(a.Estimate.Nanos), Policy: a.Policy, Reason: a.Reason,
		Note: a.Note, Used: a.Used, CreatedAt: a.CreatedAt, ExpiresAt: a.ExpiresAt}
}

type decideRequest struct {
	Note string `json:"note"`
}

// PluginInfo is what GET /v1/plugins (and GET /readyz?verbose) lists;
// cmd/ fills it from the host.
type PluginInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
	SHA256  string `json:"sha256"`
	Health  string `json:"health"` // PluginHealthy, PluginUnhealthy or PluginNotLoaded
	// Quarantined: failures made the plugin unhealthy; its calls fall back
	// until a trial call, due at NextTrialAt, succeeds.
	Quarantined bool       `json:"quarantined"`
	NextTrialAt *time.Time `json:"next_trial_at,omitempty"`
	Calls       uint64     `json:"calls"`
	Errors      uint64     `json:"errors"`
	LastError   string     `json:"last_error,omitempty"`
	Path        string     `json:"path,omitempty"`
}

// PluginInfo.Health values.
const (
	PluginHealthy   = "healthy"
	PluginUnhealthy = "unhealthy"
	PluginNotLoaded = "not loaded"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
