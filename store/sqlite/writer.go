package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
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

// do runs fn in the next batch and waits until that batch has committed
// (or failed). A request whose ctx is done before its turn is skipped.
func (w *writer) do(ctx context.Context, fn func(tx *wtx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return fmt.Errorf("sqlite ledger %s: %w", w.path, ErrClosed)
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
		w.run(batch)
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
		if err := w.exec(ctx, "ROLLBACK"); err != nil {
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
	if rbErr := w.exec(ctx, "ROLLBACK"); rbErr != nil {
		err = errors.Join(err, rbErr)
	}
	w.failAll(batch, op, err)
}

func (w *writer) failAll(batch []*writeReq, op string, err error) {
	for _, r := range batch {
		if r.err == nil {
			r.err = w.wrap(op, err)
		}
	}
}

func (w *writer) wrap(op string, err error) error {
	return fmt.Errorf("sqlite ledger %s: %s: %w", w.path, op, err)
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
	errs = append(errs, w.conn.Close(), w.db.Close())
	return errors.Join(errs...)
}
