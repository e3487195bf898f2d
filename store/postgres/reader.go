package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// reader pipelines reads (Check, Snapshot, Reservation). Each is one
// statement; under load most of its cost is the round trip itself (a
// network write and read on both sides, a protocol sync, a snapshot), so a
// few reader goroutines each take whatever reads have queued and send them
// together as one pgx.Batch: one write, one sync, the answers read back in
// order. Every read still runs as its own statement with its own snapshot
// (READ COMMITTED), taken after the caller asked, so it sees every write
// acknowledged before. A lone read is sent alone.
type reader struct {
	l   *Ledger
	cfg config

	mu     sync.RWMutex
	closed bool
	reqs   chan *readReq
	wg     sync.WaitGroup
}

// readReq is one statement; scan consumes its rows (in the reader's
// goroutine) and stores what the caller needs.
type readReq struct {
	ctx      context.Context
	deadline time.Time
	mu       sync.Mutex // held while scan runs, and by a caller giving up
	state    int32      // opQueued, opTaken or opAbandoned, as for writes; mu
	sql      string
	args     []any
	scan     func(rows pgx.Rows) error
	err      error
	done     chan struct{}
}

func newReader(l *Ledger, cfg config) *reader {
	r := &reader{l: l, cfg: cfg, reqs: make(chan *readReq, 4*cfg.maxBatch)}
	for range cfg.readers {
		r.wg.Add(1)
		go r.loop()
	}
	return r
}

// query runs sql and hands its rows to scan; it returns once scan did, or
// at the caller's own deadline (its context's, at most the operation
// timeout), whichever is first.
func (r *reader) query(ctx context.Context, sql string, args []any, scan func(pgx.Rows) error) error {
	req := &readReq{ctx: ctx, sql: sql, args: args, scan: scan, done: make(chan struct{}),
		deadline: time.Now().Add(r.cfg.opTimeout)}
	if d, ok := ctx.Deadline(); ok && d.Before(req.deadline) {
		req.deadline = d
	}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return ErrClosed
	}
	r.reqs <- req
	r.mu.RUnlock()
	timer := time.NewTimer(time.Until(req.deadline))
	defer timer.Stop()
	var why error
	select {
	case <-req.done:
		return req.err
	case <-ctx.Done():
		why = ctx.Err()
	case <-timer.C:
		why = context.DeadlineExceeded
	}
	req.mu.Lock() // waits for a scan in progress (local work), then none starts
	defer req.mu.Unlock()
	if req.state == opTaken {
		select {
		case <-req.done:
			return req.err
		default:
		}
	}
	req.state = opAbandoned
	return fmt.Errorf("read: no answer before the caller's deadline: %w", why)
}

// take marks q taken by a reader unless its caller gave up.
func (q *readReq) take() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state != opQueued {
		return false
	}
	q.state = opTaken
	return true
}

// scanRows runs q.scan unless q's caller gave up meanwhile (then the rows
// are dropped: nobody reads what scan would write).
func (q *readReq) scanRows(rows pgx.Rows) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state == opAbandoned {
		return context.DeadlineExceeded
	}
	return q.scan(rows)
}

func (r *reader) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.reqs)
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *reader) loop() {
	defer r.wg.Done()
	batch := make([]*readReq, 0, r.cfg.maxBatch)
	for first := range r.reqs {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < r.cfg.maxBatch {
			select {
			case q, ok := <-r.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, q)
			default:
				break fill
			}
		}
		r.run(batch)
		for i, q := range batch {
			close(q.done)
			batch[i] = nil
		}
	}
}

func (r *reader) run(batch []*readReq) {
	live := batch[:0:0]
	var deadline time.Time
	for _, q := range batch {
		if !q.take() {
			continue // its caller gave up
		}
		if q.err = q.ctx.Err(); q.err == nil {
			live = append(live, q)
			if q.deadline.After(deadline) {
				deadline = q.deadline
			}
		}
	}
	if len(live) == 0 {
		return
	}
	// The pipeline, and any statement run alone after it failed, share one
	// deadline: the latest of its readers'. No read is retried serially
	// with a fresh timeout while the others wait.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if len(live) == 1 {
		live[0].err = r.one(ctx, live[0])
		return
	}
	b := &pgx.Batch{}
	for _, q := range live {
		b.Queue(q.sql, q.args...)
	}
	br := r.l.pool.SendBatch(ctx, b)
	failed := false
	for _, q := range live {
		rows, err := br.Query()
		if err == nil {
			err = q.scanRows(rows)
		}
		if rows != nil {
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		q.err = err
		failed = failed || err != nil
	}
	if err := br.Close(); err != nil && !failed {
		for _, q := range live {
			q.err = err
		}
		failed = true
	}
	if !failed {
		return
	}
	// A pipeline runs as one implicit transaction: one failed statement
	// fails those after it. Run the failed ones alone, so each gets its
	// own answer (and an unreachable database fails them all anyway).
	var down error
	for _, q := range live {
		if q.err != nil && unavailable(q.err) && down == nil {
			down = q.err
		}
	}
	for _, q := range live {
		switch {
		case q.err == nil || errors.Is(q.err, context.Canceled):
		case down != nil:
			q.err = down // the database is not answering: no retries
		default:
			q.err = r.one(ctx, q)
		}
	}
}

func (r *reader) one(ctx context.Context, q *readReq) error {
	rows, err := r.l.pool.Query(ctx, q.sql, q.args...)
	var pgErr *pgconn.PgError
	if err != nil && ctx.Err() == nil && !errors.As(err, &pgErr) {
		// A read can be sent again: a pooled connection that died
		// (PostgreSQL restarted) gets one more try on a fresh one.
		r.l.pool.Reset()
		rows, err = r.l.pool.Query(ctx, q.sql, q.args...)
	}
	if err != nil {
		return err
	}
	err = q.scanRows(rows)
	rows.Close()
	if err != nil {
		return err
	}
	return rows.Err()
}
