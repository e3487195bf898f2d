package enforcer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// ApprovalState is where an approval request is.
type ApprovalState string

// Approval states.
const (
	ApprovalPending  ApprovalState = "pending"
	ApprovalApproved ApprovalState = "approved"
	ApprovalDenied   ApprovalState = "denied"
	ApprovalExpired  ApprovalState = "expired"
)

// Approval errors callers branch on.
var (
	ErrApprovalNotFound  = errors.New("approval not found")
	ErrApprovalDecided   = errors.New("approval already decided")
	ErrApprovalQueueFull = errors.New("approval queue full")
	ErrApprovalMismatch  = errors.New("approval was granted for a different call")
	ErrApprovalPending   = errors.New("approval is still pending")
	ErrApprovalRefused   = errors.New("approval was denied or expired")
	ErrApprovalUsed      = errors.New("approval was already used")
)

// ApprovalRequest is a call waiting for a human (or an Approver).
type ApprovalRequest struct {
	ID        string
	Call      Call
	Estimate  Estimate
	Reason    string // why a policy asked
	Policy    string
	State     ApprovalState
	Note      string // the decider's note
	CreatedAt time.Time
	ExpiresAt time.Time
	DecidedAt time.Time
	Used      bool // an approved request lets one call through, once
}

// Approver decides approval requests in-process (a callback). Returning an
// error denies (fail-closed).
type Approver interface {
	Approve(ctx context.Context, req ApprovalRequest) (approved bool, note string, err error)
}

// ApproverFunc adapts a function to Approver.
type ApproverFunc func(ctx context.Context, req ApprovalRequest) (bool, string, error)

// Approve calls f.
func (f ApproverFunc) Approve(ctx context.Context, req ApprovalRequest) (bool, string, error) {
	return f(ctx, req)
}

// ApprovalQueue holds approval requests for something else (a server, a
// UI) to list and decide. It is safe for concurrent use.
type ApprovalQueue struct {
	clock      Clock
	ttl        time.Duration
	pendingMax int

	mu      sync.Mutex
	reqs    map[string]*approvalEntry
	pending int
}

type approvalEntry struct {
	req       ApprovalRequest
	paramsKey string        // the approved call's canonical params; "" if it has none
	decided   chan struct{} // closed when the request leaves pending
}

// NewApprovalQueue makes a queue whose requests expire after ttl and which
// refuses new requests past pendingMax pending ones.
func NewApprovalQueue(clock Clock, ttl time.Duration, pendingMax int) *ApprovalQueue {
	if clock == nil || ttl <= 0 || pendingMax <= 0 {
		panic("enforcer: NewApprovalQueue needs a clock, ttl > 0 and pendingMax > 0")
	}
	return &ApprovalQueue{clock: clock, ttl: ttl, pendingMax: pendingMax, reqs: map[string]*approvalEntry{}}
}

// Create adds a pending request.
func (q *ApprovalQueue) Create(id string, call Call, est Estimate, policy, reason string) (ApprovalRequest, error) {
	now := q.clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.expireLocked(now)
	if q.pending >= q.pendingMax {
		return ApprovalRequest{}, fmt.Errorf("approval for %s on %q: %w (%d pending)", call.Tool, call.Account, ErrApprovalQueueFull, q.pending)
	}
	if _, dup := q.reqs[id]; dup {
		return ApprovalRequest{}, fmt.Errorf("approval id %q already used", id)
	}
	r := ApprovalRequest{ID: id, Call: call, Estimate: est, Policy: policy, Reason: reason,
		State: ApprovalPending, CreatedAt: now, ExpiresAt: now.Add(q.ttl)}
	q.reqs[id] = &approvalEntry{req: r, paramsKey: paramsKey(call), decided: make(chan struct{})}
	q.pending++
	return r, nil
}

// expireLocked moves overdue pending requests to expired; decided requests
// older than one TTL past their decision are forgotten so memory stays bounded.
func (q *ApprovalQueue) expireLocked(now time.Time) {
	for id, e := range q.reqs {
		switch {
		case e.req.State == ApprovalPending && !now.Before(e.req.ExpiresAt):
			q.decideLocked(e, ApprovalExpired, "expired", now)
		case e.req.State != ApprovalPending && now.Sub(e.req.DecidedAt) > q.ttl:
			delete(q.reqs, id)
		}
	}
}

func (q *ApprovalQueue) decideLocked(e *approvalEntry, s ApprovalState, note string, now time.Time) {
	e.req.State, e.req.Note, e.req.DecidedAt = s, note, now
	q.pending--
	close(e.decided)
}

// Get returns a request by id.
func (q *ApprovalQueue) Get(id string) (ApprovalRequest, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.expireLocked(q.clock.Now())
	e, ok := q.reqs[id]
	if !ok {
		return ApprovalRequest{}, fmt.Errorf("approval %q: %w", id, ErrApprovalNotFound)
	}
	return e.req, nil
}

// List returns the requests in state (all when state is ""), oldest first.
func (q *ApprovalQueue) List(state ApprovalState) []ApprovalRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.expireLocked(q.clock.Now())
	out := make([]ApprovalRequest, 0, len(q.reqs))
	for _, e := range q.reqs {
		if state == "" || e.req.State == state {
			out = append(out, e.req)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Approve approves a pending request.
func (q *ApprovalQueue) Approve(id, note string) (ApprovalRequest, error) {
	return q.decide(id, ApprovalApproved, note)
}

// Deny denies a pending request.
func (q *ApprovalQueue) Deny(id, note string) (ApprovalRequest, error) {
	return q.decide(id, ApprovalDenied, note)
}

func (q *ApprovalQueue) decide(id string, s ApprovalState, note string) (ApprovalRequest, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	q.expireLocked(now)
	e, ok := q.reqs[id]
	if !ok {
		return ApprovalRequest{}, fmt.Errorf("approval %q: %w", id, ErrApprovalNotFound)
	}
	if e.req.State != ApprovalPending {
		return e.req, fmt.Errorf("approval %q is %s: %w", id, e.req.State, ErrApprovalDecided)
	}
	q.decideLocked(e, s, note, now)
	return e.req, nil
}

// Wait blocks until the request is decided, expires (checked every
// pollEvery against the queue's clock) or ctx ends.
func (q *ApprovalQueue) Wait(ctx context.Context, id string, pollEvery time.Duration) (ApprovalRequest, error) {
	q.mu.Lock()
	e, ok := q.reqs[id]
	q.mu.Unlock()
	if !ok {
		return ApprovalRequest{}, fmt.Errorf("approval %q: %w", id, ErrApprovalNotFound)
	}
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-e.decided:
			return q.Get(id)
		case <-ctx.Done():
			return ApprovalRequest{}, fmt.Errorf("waiting for approval %q: %w", id, ctx.Err())
		case <-t.C:
			if r, err := q.Get(id); err != nil || r.State != ApprovalPending {
				return r, err
			}
		}
	}
}

// paramsKey binds an approval to the exact call: same tool, same params
// (CacheKey is injective). Params without a canonical form give "", which
// matches nothing: two such calls must not pass for one another.
func paramsKey(call Call) string {
	k, err := CacheKey(call.Tool, call.Params)
	if err != nil {
		return ""
	}
	return k
}

// usable reports whether approval id may let call through (without using it).
func (q *ApprovalQueue) usable(id string, call Call) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, err := q.usableLocked(id, call)
	return err
}

func (q *ApprovalQueue) usableLocked(id string, call Call) (*approvalEntry, error) {
	q.expireLocked(q.clock.Now())
	e, ok := q.reqs[id]
	switch {
	case !ok:
		return nil, fmt.Errorf("approval %q: %w", id, ErrApprovalNotFound)
	case e.req.State == ApprovalPending:
		return nil, fmt.Errorf("approval %q: %w", id, ErrApprovalPending)
	case e.req.State != ApprovalApproved:
		return nil, fmt.Errorf("approval %q is %s: %w", id, e.req.State, ErrApprovalRefused)
	case e.req.Used:
		return nil, fmt.Errorf("approval %q: %w", id, ErrApprovalUsed)
	case e.req.Call.Account != call.Account || e.paramsKey == "" || e.paramsKey != paramsKey(call):
		return nil, fmt.Errorf("approval %q (%s on %q): %w", id, e.req.Call.Tool, e.req.Call.Account, ErrApprovalMismatch)
	}
	return e, nil
}

// consume marks an approved request as used for call; it may be used once.
func (q *ApprovalQueue) consume(id string, call Call) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.usableLocked(id, call)
	if err != nil {
		return err
	}
	e.req.Used = true
	return nil
}
