package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/purser-dev/purser/enforcer"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Ledger is an enforcer.Ledger stored in one SQLite file. It is safe for
// concurrent use; Close it when done.
type Ledger struct {
	path       string
	clock      enforcer.Clock
	notifier   enforcer.Notifier
	thresholds enforcer.Thresholds
	retain     time.Duration

	read      *sql.DB // read-only pool
	readStmts map[string]*sql.Stmt
	w         *writer
}

var _ enforcer.Ledger = (*Ledger)(nil)

// Synchronous is SQLite's synchronous setting for the write connection.
type Synchronous string

// Durability levels; see the package documentation.
const (
	// SyncFull fsyncs every commit: committed data survives power loss.
	SyncFull Synchronous = "FULL"
	// SyncNormal does not fsync commits in WAL mode: committed data
	// survives the process dying, not the machine.
	SyncNormal Synchronous = "NORMAL"
)

// Option tunes Open.
type Option func(*config)

type config struct {
	sync        Synchronous
	maxBatch    int
	readConns   int
	busyTimeout time.Duration
}

// WithSynchronous picks the durability level (default SyncFull).
func WithSynchronous(s Synchronous) Option { return func(c *config) { c.sync = s } }

// WithMaxBatch caps how many write requests share one transaction (default
// 256; 1 disables group commit).
func WithMaxBatch(n int) Option { return func(c *config) { c.maxBatch = n } }

// WithReadConns sets the size of the read pool (default 4).
func WithReadConns(n int) Option { return func(c *config) { c.readConns = n } }

// WithBusyTimeout sets how long a connection waits for a lock held by
// another process sharing the file (default 10s). Within one process the
// single writer means no waiting.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("sqlite ledger closed")

// Open opens (creating if needed) the ledger in the file at path, applies
// pending schema migrations and sweeps holds that expired while it was
// closed.
func Open(ctx context.Context, path string, opts enforcer.LedgerOptions, options ...Option) (*Ledger, error) {
	cfg := config{sync: SyncFull, maxBatch: 256, readConns: 4, busyTimeout: 10 * time.Second}
	for _, o := range options {
		o(&cfg)
	}
	if err := cfg.validate(path); err != nil {
		return nil, fmt.Errorf("open sqlite ledger %s: %w", path, err)
	}
	l := newLedger(path, opts)
	if err := l.open(ctx, cfg); err != nil {
		l.Close()
		return nil, fmt.Errorf("open sqlite ledger %s: %w", path, err)
	}
	return l, nil
}

func (c config) validate(path string) error {
	switch {
	case path == "" || path == ":memory:" || strings.HasPrefix(path, "file:"):
		// The writer and the read pool are separate connections, which
		// would each get their own private in-memory database.
		return fmt.Errorf("path %q: want a file path (for an in-memory ledger use enforcer.NewMemoryLedger)", path)
	case c.sync != SyncFull && c.sync != SyncNormal:
		return fmt.Errorf("synchronous %q: want FULL or NORMAL", c.sync)
	case c.maxBatch < 1:
		return fmt.Errorf("max batch %d: want at least 1", c.maxBatch)
	case c.readConns < 1:
		return fmt.Errorf("read connections %d: want at least 1", c.readConns)
	case c.busyTimeout < 0:
		return fmt.Errorf("busy timeout %s is negative", c.busyTimeout)
	}
	return nil
}

func newLedger(path string, opts enforcer.LedgerOptions) *Ledger {
	l := &Ledger{path: path, clock: opts.Clock, notifier: opts.Notifier, retain: opts.RetainSettled}
	if l.clock == nil {
		l.clock = enforcer.SystemClock{}
	}
	if l.retain <= 0 {
		l.retain = enforcer.DefaultRetainSettled
	}
	l.thresholds = enforcer.NewThresholds(opts.ThresholdsPct)
	return l
}

// open starts the writer (which migrates the schema), the read pool, and
// sweeps what expired while the file was closed.
func (l *Ledger) open(ctx context.Context, cfg config) error {
	busy := strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10)
	wdb, err := sql.Open("sqlite", dsn(l.path, url.Values{
		"_busy_timeout": {busy}, "_fk": {"1"}, "_journal_mode": {"WAL"}, "_synchronous": {string(cfg.sync)},
	}))
	if err != nil {
		return err
	}
	w, err := startWriter(ctx, l.path, wdb, cfg.maxBatch)
	if err != nil {
		return err
	}
	l.w = w
	l.read, err = sql.Open("sqlite", dsn(l.path, url.Values{"_busy_timeout": {busy}, "_query_only": {"1"}}))
	if err != nil {
		return err
	}
	l.read.SetMaxOpenConns(cfg.readConns)
	l.read.SetMaxIdleConns(cfg.readConns)
	l.read.SetConnMaxIdleTime(0)
	if l.readStmts, err = prepareReads(ctx, l.read); err != nil {
		return err
	}
	// A database that cannot write now (disk full) still opens: it
	// answers reads, refuses writes with ErrLedgerUnavailable, reports
	// itself not Ready, and writes resume when space returns.
	if _, err := l.Sweep(ctx); err != nil && !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		return err
	}
	return nil
}

// dsn builds a modernc.org/sqlite URI for path with the driver's own
// parameters; the path is escaped so '?' or '#' in it stay part of it.
func dsn(path string, params url.Values) string {
	u := url.URL{Path: path}
	return "file:" + u.EscapedPath() + "?" + params.Encode()
}

// Path returns the database file's path.
func (l *Ledger) Path() string { return l.path }

// Close waits for queued writes to finish and closes the database. Writes
// after Close return ErrClosed.
func (l *Ledger) Close() error {
	var errs []error
	if l.w != nil {
		errs = append(errs, l.w.close())
	}
	for _, st := range l.readStmts {
		errs = append(errs, st.Close())
	}
	if l.read != nil {
		errs = append(errs, l.read.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite ledger %s: %w", l.path, err)
	}
	return nil
}

// now is the ledger clock in Unix nanoseconds, the unit of every stored
// instant.
func (l *Ledger) now() int64 { return l.clock.Now().UnixNano() }

// fromNanos is the one conversion from stored instants back to time.Time,
// so the same reservation read twice compares equal with ==.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// dbErr wraps a database failure with the file it happened in. It is
// ErrLedgerUnavailable unless the caller's own context ended.
func (l *Ledger) dbErr(op string, err error) error {
	switch {
	case errors.Is(err, enforcer.ErrLedgerUnavailable):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("sqlite ledger %s: %s: %w", l.path, op, err)
	}
	return fmt.Errorf("sqlite ledger %s: %s: %w: %w", l.path, op, enforcer.ErrLedgerUnavailable, err)
}

// Ready reports whether the ledger can read and write now; the error wraps
// enforcer.ErrLedgerUnavailable. After a write failed for the database's
// own reasons (disk full, I/O error) it probes with a small write, so it
// turns ready again as soon as writes work, with or without traffic.
func (l *Ledger) Ready(ctx context.Context) error {
	err := l.w.ready(ctx, func(tx *wtx) error {
		_, err := tx.conn.ExecContext(tx.ctx, `INSERT INTO write_probe (id, at, pad) VALUES (1, ?1, zeroblob(65536))
			ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad`, l.now())
		return l.sqlErr(err, "probe a write")
	})
	if err != nil {
		return fmt.Errorf("sqlite ledger %s cannot write: %w", l.path, err)
	}
	if err := l.readStmts[probeOverdue].QueryRowContext(ctx, l.now()).Scan(new(int)); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return l.dbErr("read", err)
	}
	return nil
}

// notify delivers alerts; it is only called with no transaction open.
func (l *Ledger) notify(alerts []enforcer.Alert) {
	if l.notifier == nil {
		return
	}
	for _, a := range alerts {
		l.notifier.Notify(a)
	}
}
