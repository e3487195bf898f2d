package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/purser-dev/purser/enforcer"
)

// batcher runs reserve, commit and release operations. Each of a few
// writer goroutines has its own queue; it takes whatever has queued (up to
// maxBatch) and runs it as one call of purser_apply: one round trip and one
// transaction (one WAL flush) for the whole batch. Under load a hot tree's
// root row is then locked once per batch instead of once per operation,
// which is what lets one hot account take thousands of holds a second.
//
// Operations are routed to writers by their tree's root (when this process
// has seen it), so one tree's operations from this process share batches
// instead of queueing on its root lock in several transactions, while
// independent trees proceed in parallel.
type batcher struct {
	l   *Ledger
	cfg config

	mu     sync.RWMutex // guards closed and sending on the queues against close
	closed bool
	queues []chan *op
	wg     sync.WaitGroup

	routes routes
}

// routes remembers which tree accounts and live reservations belong to
// (immutable facts), bounded so a long-running process cannot grow them
// without end: past maxRoutes entries a map starts over.
type routes struct {
	mu   sync.Mutex
	acct map[string]string // account -> root
	res  map[string]string // reservation id -> root
}

const maxRoutes = 1 << 20

func (r *routes) root(o *op) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o.kind == "reserve" || o.kind == "charge" {
		return r.acct[o.account]
	}
	return r.res[o.id]
}

func (r *routes) learnAccount(account, root string) {
	r.mu.Lock()
	if r.acct == nil || len(r.acct) >= maxRoutes {
		r.acct = make(map[string]string)
	}
	r.acct[account] = root
	r.mu.Unlock()
}

// learnTree records the tree of an account and of its live reservation
// id, as a write's answer told it: the tree's later operations from this
// process (an Extend, the commit) then share its writer and its batches.
func (r *routes) learnTree(id, account, root string) {
	if root == "" {
		return
	}
	r.learnAccount(account, root)
	r.learnRes(id, account)
}

// learnRes records a live reservation's tree (root "" forgets it).
func (r *routes) learnRes(id, account string) {
	r.mu.Lock()
	root, ok := r.acct[account]
	switch {
	case account == "" || !ok:
		delete(r.res, id)
	default:
		if r.res == nil || len(r.res) >= maxRoutes {
			r.res = make(map[string]string)
		}
		r.res[id] = root
	}
	r.mu.Unlock()
}

// op is one operation; the caller reads res only after done is closed and
// err is nil. The caller waits at most until deadline; if it gives up
// before a writer took the op (state), the op is never sent.
type op struct {
	ctx      context.Context
	deadline time.Time
	state    atomic.Int32 // opQueued, opTaken (by a writer) or opAbandoned (by its caller)
	kind     string       // reserve, extend, commit, release, charge
	id       string
	account  string // reserve
	tool     string // reserve
	amount   *int64 // reserve: estimate; extend: the amount added; commit: actual (nil: the hold)
	ttl      int64  // reserve, nanoseconds
	source   string // commit
	fp       string // reserve, charge: the request's fingerprint
	estimate *int64 // charge: the original hold's estimate (nil: the charge)
	extended int64  // charge: what the original hold had grown by
	base     int64  // reserve, charge: the base estimate
	calKey   string // reserve, charge: the calibration key
	extID    string // extend: the extension id
	price    string // commit, charge: the price source
	usage    *enforcer.TokenUsage
	res      opResult
	err      error
	done     chan struct{}
}

// opResult is purser_apply's row for one operation.
type opResult struct {
	status     string
	now        int64
	r          resRow
	hasRes     bool
	dAccount   string
	dRemaining int64
	dOverdrawn bool
	eAmount    int64  // ext_exists: the stored extension's amount
	root       string // the reservation's tree, when there is a reservation
	aIDs       []string
	aCommitted []int64
	aLimits    []pgtype.Int8
}

func newBatcher(l *Ledger, cfg config) *batcher {
	b := &batcher{l: l, cfg: cfg}
	for range cfg.writers {
		q := make(chan *op, 4*cfg.maxBatch)
		b.queues = append(b.queues, q)
		b.wg.Add(1)
		go b.loop(q)
	}
	return b
}

const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// do queues o on its tree's writer and waits for its batch to finish, or
// until its own deadline (its context's, at most the operation timeout):
// a caller never waits for other callers' operations to be retried. An op
// given up before a writer took it is never sent (nothing changed); one
// given up in flight has an unknown outcome (*OutcomeUnknownError).
func (b *batcher) do(o *op) error {
	o.done = make(chan struct{})
	o.deadline = time.Now().Add(b.cfg.opTimeout)
	if d, ok := o.ctx.Deadline(); ok && d.Before(o.deadline) {
		o.deadline = d
	}
	key := b.routes.root(o)
	if key == "" && o.account != "" {
		key = o.account // tree unknown yet: at least one account's operations share a writer
	} else if key == "" {
		key = o.id
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	q := b.queues[h.Sum32()%uint32(len(b.queues))]
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	q <- o // writers drain until close, so this cannot block forever
	b.mu.RUnlock()
	timer := time.NewTimer(time.Until(o.deadline))
	defer timer.Stop()
	var why error
	select {
	case <-o.done:
		return o.err
	case <-o.ctx.Done():
		why = o.ctx.Err()
	case <-timer.C:
		why = context.DeadlineExceeded
	}
	if o.state.CompareAndSwap(opQueued, opAbandoned) {
		return fmt.Errorf("not sent before the caller's deadline (nothing changed): %w", why)
	}
	select {
	case <-o.done: // finished meanwhile
		return o.err
	default:
		return &OutcomeUnknownError{Err: fmt.Errorf("sent, no answer before the caller's deadline: %w", why)}
	}
}

// OutcomeUnknownError: the operation reached PostgreSQL but its answer
// did not come back (connection lost, or the caller's deadline passed), so
// the transaction may or may not have committed. It is resolved by looking
// the reservation up; until then the caller must not assume either way.
type OutcomeUnknownError struct{ Err error }

func (e *OutcomeUnknownError) Error() string { return "outcome unknown: " + e.Err.Error() }
func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// OutcomeUnknown lets callers that do not import this package (the
// server) tell "may have been applied" from "nothing changed".
func (e *OutcomeUnknownError) OutcomeUnknown() bool { return true }

func (b *batcher) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	for _, q := range b.queues {
		close(q)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *batcher) loop(reqs chan *op) {
	defer b.wg.Done()
	batch := make([]*op, 0, b.cfg.maxBatch)
	prev := 0
	for first := range reqs {
		batch = append(batch[:0], first)
		if prev > 1 && b.cfg.linger > 0 {
			// Concurrent load: let a few more operations arrive, so the
			// tree's lock is taken (and the WAL flushed) once for them all.
			time.Sleep(b.cfg.linger)
		}
	fill:
		for len(batch) < b.cfg.maxBatch {
			select {
			case o, ok := <-reqs:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		prev = len(batch)
		b.run(batch)
		for i, o := range batch {
			close(o.done)
			batch[i] = nil
		}
	}
}

// run executes one batch. An operation whose caller gave up before its
// turn is skipped. The batch runs until the last of its callers' deadlines
// (so a caller who leaves early does not cut the others short). If it
// fails with an error the server raised about one operation (a
// constraint, say), each operation is run alone, within the same deadline,
// so only the guilty one fails; a connection failure or a timeout fails
// them all at once (fail closed) with an outcome that is unknown when the
// batch had been sent.
func (b *batcher) run(batch []*op) {
	live := batch[:0:0]
	var deadline time.Time
	for _, o := range batch {
		if !o.state.CompareAndSwap(opQueued, opTaken) {
			continue // its caller gave up; it gets no answer
		}
		if o.err = o.ctx.Err(); o.err == nil {
			live = append(live, o)
			if o.deadline.After(deadline) {
				deadline = o.deadline
			}
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := b.apply(ctx, live)
	if err == nil {
		return
	}
	var pgErr *pgconn.PgError
	if len(live) > 1 && errors.As(err, &pgErr) && !unavailable(err) {
		for _, o := range live {
			o.err = b.apply(ctx, []*op{o})
		}
		return
	}
	for _, o := range live {
		o.err = err
	}
}

// apply runs ops in one transaction within ctx, retrying serialization
// failures and deadlocks (and a connection that died before the statement
// was sent) with jittered exponential backoff, so none reaches a client
// unless it persists past cfg.retries. A failure after the statement was
// sent that may have committed is an *OutcomeUnknownError.
func (b *batcher) apply(ctx context.Context, ops []*op) error {
	for attempt := 0; ; attempt++ {
		err := b.exec(ctx, ops)
		if err == nil {
			return nil
		}
		if !b.retryable(err, attempt) || ctx.Err() != nil {
			// An answer from the server (a PgError) means the statement,
			// and so its transaction, failed; without one it may have
			// committed unless it was never sent.
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) && !notSent(err) {
				return &OutcomeUnknownError{Err: err}
			}
			return err
		}
		backoff(attempt)
	}
}

// retryable: a transaction PostgreSQL rolled back for a conflict is safe
// to run again; so is one that never reached the server (once: a pooled
// connection the server closed, e.g. after a failover).
func (b *batcher) retryable(err error, attempt int) bool {
	if attempt >= b.cfg.retries {
		return false
	}
	if isConflict(err) {
		return true
	}
	return attempt == 0 && pgconn.SafeToRetry(err)
}

// notSent: the error says the statement never reached the server.
func notSent(err error) bool {
	var connectErr *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || errors.As(err, &connectErr)
}

// isConflict: serialization_failure or deadlock_detected.
func isConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

func backoff(attempt int) {
	d := time.Millisecond << min(attempt, 7) // 1ms .. 128ms
	time.Sleep(d/2 + rand.N(d))
}

const applySQL = `SELECT op, status, now_ns, r_id, r_account, r_tool, r_estimate, r_ttl, r_state, r_created, r_expires,
	r_settled, r_charged, r_source, r_late, r_fp, r_extended, r_base, r_calkey, r_price, r_umodel, r_usage, r_root, e_amount,
	d_account, d_remaining, d_overdrawn, a_ids, a_committed, a_limits
	FROM purser_apply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`

// applyArgs are purser_apply's parameters for a batch, one array element
// per operation (p_usage: five per operation).
type applyArgs struct {
	kinds, ids, accts, tools, sources, fps, calKeys, extIDs, prices []string
	umodels                                                         []pgtype.Text
	amounts, estimates                                              []pgtype.Int8
	ttls, extended, bases, usage                                    []int64
}

func newApplyArgs(ops []*op) applyArgs {
	n := len(ops)
	a := applyArgs{kinds: make([]string, n), ids: make([]string, n), accts: make([]string, n), tools: make([]string, n),
		sources: make([]string, n), fps: make([]string, n), calKeys: make([]string, n), extIDs: make([]string, n),
		prices: make([]string, n), umodels: make([]pgtype.Text, n), amounts: make([]pgtype.Int8, n),
		estimates: make([]pgtype.Int8, n), ttls: make([]int64, n), extended: make([]int64, n), bases: make([]int64, n),
		usage: make([]int64, 5*n)}
	for i, o := range ops {
		a.kinds[i], a.ids[i], a.accts[i], a.tools[i], a.sources[i], a.ttls[i], a.fps[i] = o.kind, o.id, o.account, o.tool, o.source, o.ttl, o.fp
		a.calKeys[i], a.extIDs[i], a.prices[i], a.extended[i], a.bases[i] = o.calKey, o.extID, o.price, o.extended, o.base
		if o.amount != nil {
			a.amounts[i] = pgtype.Int8{Int64: *o.amount, Valid: true}
		}
		if o.estimate != nil {
			a.estimates[i] = pgtype.Int8{Int64: *o.estimate, Valid: true}
		}
		if u := o.usage; u != nil {
			a.umodels[i] = pgtype.Text{String: u.Model, Valid: true}
			copy(a.usage[5*i:], []int64{u.InputTokens, u.OutputTokens, u.CacheReadTokens, u.CacheWriteTokens, u.CacheWrite1hTokens})
		}
	}
	return a
}

func (b *batcher) exec(ctx context.Context, ops []*op) error {
	n := len(ops)
	a := newApplyArgs(ops)
	rows, err := b.l.pool.Query(ctx, applySQL, b.l.nowArg(), a.kinds, a.ids, a.accts, a.tools, a.amounts, a.ttls, a.sources, a.fps,
		a.estimates, a.extended, a.bases, a.calKeys, a.extIDs, a.prices, a.umodels, a.usage, enforcer.MaxExtensions)
	if err != nil {
		return err
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var (
			idx                                               int32
			res                                               opResult
			rid, racct, rtool, rstate, rsrc, rfp, dacct       *string
			rcalkey, rprice, rroot                            *string
			rest, rttl, rcreated, rexp, rcharged, rext, rbase *int64
			rsettled                                          pgtype.Int8
			rumodel                                           pgtype.Text
			rusage                                            []int64
			rlate, dover                                      *bool
			drem, eamount                                     *int64
		)
		if err := rows.Scan(&idx, &res.status, &res.now, &rid, &racct, &rtool, &rest, &rttl, &rstate, &rcreated, &rexp,
			&rsettled, &rcharged, &rsrc, &rlate, &rfp, &rext, &rbase, &rcalkey, &rprice, &rumodel, &rusage, &rroot, &eamount,
			&dacct, &drem, &dover, &res.aIDs, &res.aCommitted, &res.aLimits); err != nil {
			return err
		}
		if int(idx) < 0 || int(idx) >= n {
			return errors.New("purser_apply returned an operation index out of range")
		}
		if rid != nil {
			res.hasRes = true
			res.r = resRow{id: *rid, account: deref(racct), tool: deref(rtool), estimate: deref(rest), ttl: deref(rttl),
				state: deref(rstate), created: deref(rcreated), expires: deref(rexp), settled: rsettled,
				charged: deref(rcharged), source: deref(rsrc), late: deref(rlate), fp: deref(rfp),
				extended: deref(rext), base: deref(rbase), calKey: deref(rcalkey), price: deref(rprice), umodel: rumodel, usage: rusage}
		}
		res.dAccount, res.dRemaining, res.dOverdrawn, res.eAmount = deref(dacct), deref(drem), deref(dover), deref(eamount)
		res.root = deref(rroot)
		ops[idx].res = res
		seen++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if seen != n {
		return errors.New("purser_apply returned fewer rows than operations")
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
