package ledgertest

import (
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// model is the reference ledger: plain maps, no concurrency, totals kept
// per account including descendants.
type model struct {
	accts map[string]*mAcct
	ids   []string // creation order
	res   map[string]*mRes
	live  map[string]*mRes // pending holds
}

type mAcct struct {
	id, parent string
	limit      *enforcer.Nanos
	depth      int
	direct     enforcer.Nanos // committed on this account itself
	committed  enforcer.Nanos // including descendants
	pending    enforcer.Nanos // including descendants
	// excused is set while committed+pending > limit is explained: an
	// actual above its estimate, a late commit (its hold had expired) or a
	// limit lowered below the spend.
	excused bool
}

type mRes struct {
	req       enforcer.ReserveRequest
	exp       time.Time
	state     enforcer.ReservationState
	charged   enforcer.Nanos
	source    enforcer.CostSource
	late      bool
	terminals int // terminal transitions seen (a late commit adds one)
	extended  enforcer.Nanos
	exts      map[string]enforcer.Nanos // extension id -> amount
	usage     *enforcer.TokenUsage      // recorded by the commit
	priceSrc  string
}

// held is what r holds while pending.
func (r *mRes) held() enforcer.Nanos { return r.req.Estimate + r.extended }

func newModel() *model {
	return &model{accts: map[string]*mAcct{}, res: map[string]*mRes{}, live: map[string]*mRes{}}
}

func (m *model) create(id, parent string, limit *enforcer.Nanos) {
	a := &mAcct{id: id, parent: parent, limit: limit}
	if p := m.accts[parent]; p != nil {
		a.depth = p.depth + 1
	}
	m.accts[id] = a
	m.ids = append(m.ids, id)
}

// path returns the account and its ancestors, bottom up.
func (m *model) path(id string) []*mAcct {
	var out []*mAcct
	for a := m.accts[id]; a != nil; a = m.accts[a.parent] {
		out = append(out, a)
	}
	return out
}

// expire drops holds whose expiry is <= now.
func (m *model) expire(now time.Time) {
	for id, r := range m.live {
		if !r.exp.After(now) {
			r.state = enforcer.StateExpired
			r.terminals++
			m.addPending(r.req.Account, -r.held())
			delete(m.live, id)
		}
	}
}

func (m *model) addPending(acct string, d enforcer.Nanos) {
	for _, a := range m.path(acct) {
		a.pending += d
	}
}

// admits is the budget rule: no overdrawn account on the path and
// committed + pending + estimate <= limit everywhere. It returns the
// smallest remaining on the path (MaxNanos when unlimited).
func (m *model) admits(acct string, est enforcer.Nanos) (ok, overdrawn bool, rem enforcer.Nanos) {
	rem = enforcer.MaxNanos
	for _, a := range m.path(acct) {
		if a.limit == nil {
			continue
		}
		if a.committed > *a.limit {
			overdrawn = true
		}
		rem = min(rem, *a.limit-a.committed-a.pending)
	}
	return !overdrawn && est <= rem, overdrawn, rem
}

func (m *model) reserve(req enforcer.ReserveRequest, now time.Time) {
	r := &mRes{req: req, exp: now.Add(req.TTL), state: enforcer.StatePending}
	m.res[req.ID] = r
	m.live[req.ID] = r
	m.addPending(req.Account, req.Estimate)
}

func (m *model) commit(r *mRes, charge enforcer.Nanos, source enforcer.CostSource) {
	if r.state == enforcer.StatePending {
		m.addPending(r.req.Account, -r.held())
		delete(m.live, r.req.ID)
	} else {
		r.late = true
	}
	r.state, r.charged, r.source = enforcer.StateCommitted, charge, source
	r.terminals++
	m.accts[r.req.Account].direct += charge
	for _, a := range m.path(r.req.Account) {
		a.committed += charge
		if charge > r.held() || r.late { // a late charge has no hold behind it
			a.excused = true
		}
	}
}

// extend grows a pending hold; admits must have passed.
func (m *model) extend(r *mRes, ext string, add enforcer.Nanos) {
	if r.exts == nil {
		r.exts = map[string]enforcer.Nanos{}
	}
	r.exts[ext] = add
	r.extended += add
	m.addPending(r.req.Account, add)
}

func (m *model) release(r *mRes) {
	m.addPending(r.req.Account, -r.held())
	delete(m.live, r.req.ID)
	r.state = enforcer.StateReleased
	r.terminals++
}

func (m *model) setLimit(id string, limit *enforcer.Nanos) {
	a := m.accts[id]
	a.limit = limit
	if limit != nil && a.committed+a.pending > *limit {
		a.excused = true
	}
}
