package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/purser-dev/purser/enforcer"
)

// writer owns the only write connection. Requests queue on reqs; the loop
// runs whatever has queued as one transaction (group commit) and answers
// each request after COMMIT returned.
type writer struct {
	path     string
	db       *sql.DB
	conn     *sql.Conn
	st       *stmts
	maxBatch int

	mu     sync.RWMutex // guards closed and sending on reqs against close
	closed bool
	reqs   chan *writeReq
	done   chan struct{} // closed when the loop has exited

	// failure is the last failure of the database itself to write (disk
	// full, I/O error), nil again once a batch commits a change. While it
	// is set, every batch first runs recover.
	failure atomic.Pointer[error]
	probing atomic.Bool // one Ready probe at a time
}

// writeReq is one operation: fn runs inside the batch transaction and
// records its results in variables it captured; err is set before done is
// closed, and only then may the caller read those variables.
type writeReq struct {
	ctx  context.Context
	fn   func(tx *wtx) error
	err  error
	done chan struct{}
}

// wtx is what an operation sees of the batch transaction.
type wtx struct {
	ctx  context.Context
	st   *stmts
	conn *sql.Conn // for statements too rare to prepare
}

func startWriter(ctx context.Context, path string, db *sql.DB, maxBatch int) (*writer, error) {
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	w := &writer{path: path, db: db, conn: conn, maxBatch: maxBatch,
		reqs: make(chan *writeReq, 4*maxBatch), done: make(chan struct{})}
	// A WAL left large by a disk that filled up is folded into the
	// database and truncated first, so a restart gets its space back.
	w.checkpoint(ctx)
	if err := migrate(ctx, conn); err != nil {
		w.closeConns()
		return nil, err
	}
	if w.st, err = prepare(ctx, conn); err != nil {
		w.closeConns()
		return nil, err
	}
	go w.loop()
	return w, nil
}

// checkpoint copies the WAL into the database and truncates it to zero
// bytes. It fails (and changes nothing that matters) when the database
// file cannot grow; it is retried at the next recovery.
func (w *writer) checkpoint(ctx context.Context) {
	var busy, frames, done int
	_ = w.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done)
}

// recover gets writing going again after the database failed to write.
// SQLite may have rolled the failed transaction back itself, or not: a
// transaction still open is rolled back, and a connection that cannot
// even do that is replaced. Then the WAL is checkpointed and truncated:
// on a disk that filled up, the WAL holds frames that could not be
// checkpointed (the database file could not grow), and if it is not
// truncated it regrows into any space that is freed, so writes never
// resume (issue 11, item 15).
func (w *writer) recover() {
	ctx := context.Background()
	if w.conn != nil {
		err := w.exec(ctx, "ROLLBACK")
		if err == nil || isNoTransaction(err) {
			w.checkpoint(ctx)
			return
		}
		w.st.close()
		w.conn.Close()
		w.conn, w.st = nil, nil
	}
	conn, err := w.db.Conn(ctx)
	if err != nil {
		w.fail(w.wrap("reopen the write connection", err))
		return
	}
	st, err := prepare(ctx, conn)
	if err != nil {
		conn.Close()
		w.fail(w.wrap("reopen the write connection", err))
		return
	}
	w.conn, w.st = conn, st
	w.checkpoint(ctx)
}

// isNoTransaction: a ROLLBACK found nothing to roll back (SQLite had
// already rolled the transaction back).
func isNoTransaction(err error) bool {
	return strings.Contains(err.Error(), "no transaction is active")
}

func (w *writer) fail(err error) { w.failure.Store(&err) }

// health is the last write failure, nil when writes work.
func (w *writer) health() error {
	if p := w.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// ready reports whether the database takes writes. While writes are
// failing it runs probe as a write (one caller at a time; the others get
// the last failure), so readiness recovers as soon as space returns, even
// with no traffic.
func (w *writer) ready(ctx context.Context, probe func(tx *wtx) error) error {
	if w.health() == nil {
		return nil
	}
	if !w.probing.CompareAndSwap(false, true) {
		return w.health()
	}
	defer w.probing.Store(false)
	return w.do(ctx, probe)
}

// do runs fn in the next batch and waits until that batch has committed
// (or failed). A request whose ctx is done before its turn is skipped.
func (w *writer) do(ctx context.Context, fn func(tx *wtx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return fmt.Errorf("sqlite ledger %s: %w: %w", w.path, enforcer.ErrLedgerUnavailable, ErrClosed)
	}
	select {
	case w.reqs <- req: // the loop drains until close, so this cannot block forever
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err() // not queued: nothing happened
	}
	w.mu.RUnlock()
	<-req.done // once queued, wait: the request may already be in a committing batch
	return req.err
}

func (w *writer) loop() {
	defer close(w.done)
	batch := make([]*writeReq, 0, w.maxBatch)
	for req := range w.reqs {
		batch = append(batch[:0], req)
	fill:
		for len(batch) < w.maxBatch {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if w.health() != nil {
			w.recover()
		}
		w.run(batch)
		w.note(batch)
		for i, r := range batch {
			close(r.done)
			batch[i] = nil
		}
	}
}

// run executes one batch. Each request gets a SAVEPOINT when it shares the
// transaction, so a refusal rolls back only its own changes; if COMMIT
// fails, every request that had succeeded fails with it.
func (w *writer) run(batch []*writeReq) {
	ctx := context.Background() // one caller giving up must not abort the others
	if w.conn == nil {          // recover could not reopen it
		w.failAll(batch, "write", w.health())
		return
	}
	if err := w.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		w.failAll(batch, "begin", err)
		return
	}
	shared := len(batch) > 1
	for _, r := range batch {
		if r.err = r.ctx.Err(); r.err != nil {
			continue
		}
		if shared {
			if err := w.exec(ctx, "SAVEPOINT op"); err != nil {
				w.abort(ctx, batch, "savepoint", err)
				return
			}
		}
		r.err = r.fn(&wtx{ctx: ctx, st: w.st, conn: w.conn})
		if !shared {
			break
		}
		if r.err != nil {
			if err := w.exec(ctx, "ROLLBACK TO op"); err != nil {
				w.abort(ctx, batch, "rollback to savepoint", err)
				return
			}
		}
		if err := w.exec(ctx, "RELEASE op"); err != nil {
			w.abort(ctx, batch, "release savepoint", err)
			return
		}
	}
	if !shared && batch[0].err != nil {
		if err := w.exec(ctx, "ROLLBACK"); err != nil && !isNoTransaction(err) {
			batch[0].err = errors.Join(batch[0].err, w.wrap("rollback", err))
		}
		return
	}
	if err := w.exec(ctx, "COMMIT"); err != nil {
		w.abort(ctx, batch, "commit", err)
	}
}

// abort rolls the batch back and fails every request that had succeeded.
func (w *writer) abort(ctx context.Context, batch []*writeReq, op string, err error) {
	if rbErr := w.exec(ctx, "ROLLBACK"); rbErr != nil && !isNoTransaction(rbErr) {
		err = errors.Join(err, rbErr)
	}
	w.failAll(batch, op, err)
}

// note records whether the database wrote: a batch in which any request
// failed for the database's own reasons sets the failure; one that
// committed a request's changes clears it. Refusals (denied, conflict,
// cancelled) say nothing either way.
func (w *writer) note(batch []*writeReq) {
	wrote := false
	for _, r := range batch {
		switch {
		case r.err == nil:
			wrote = true
		case errors.Is(r.err, enforcer.ErrLedgerUnavailable):
			w.fail(r.err)
			return
		}
	}
	if wrote {
		w.failure.Store(nil)
	}
}

func (w *writer) failAll(batch []*writeReq, op string, err error) {
	for _, r := range batch {
		if r.err == nil {
			r.err = w.wrap(op, err)
		}
	}
}

// wrap marks a failure of the database itself: ErrLedgerUnavailable.
func (w *writer) wrap(op string, err error) error {
	if errors.Is(err, enforcer.ErrLedgerUnavailable) {
		return err
	}
	return fmt.Errorf("sqlite ledger %s: %s: %w: %w", w.path, op, enforcer.ErrLedgerUnavailable, err)
}

func (w *writer) exec(ctx context.Context, q string) error {
	_, err := w.conn.ExecContext(ctx, q)
	return err
}

// close stops accepting requests, lets the loop finish what is queued and
// closes the connection.
func (w *writer) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.reqs)
	w.mu.Unlock()
	<-w.done
	return w.closeConns()
}

func (w *writer) closeConns() error {
	var errs []error
	if w.st != nil {
		errs = append(errs, w.st.close())
	}
	if w.conn != nil {
		errs = append(errs, w.conn.Close())
	}
	errs = append(errs, w.db.Close())
	return errors.Join(errs...)
}
