package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/purser-dev/purser/enforcer"
)

// Ledger is an enforcer.Ledger stored in PostgreSQL, shared by every
// process that opens the same database (and schema). It is safe for
// concurrent use; Close it when done.
type Ledger struct {
	where      string         // host:port/database[/schema], for errors (never the password)
	clock      enforcer.Clock // nil: the database's clock
	notifier   enforcer.Notifier
	thresholds enforcer.Thresholds
	retain     time.Duration

	pool *pgxpool.Pool
	w    *batcher
	r    *reader

	stopSweep chan struct{}
	swept     sync.WaitGroup
}

var _ enforcer.Ledger = (*Ledger)(nil)

// Option tunes Open.
type Option func(*config)

type config struct {
	schema           string
	poolConnsMax     int
	statementTimeout time.Duration
	opTimeout        time.Duration
	writers          int
	readers          int
	maxBatch         int
	linger           time.Duration
	retries          int
	sweepEvery       time.Duration
}

// WithSchema keeps the ledger's tables in the named schema (created if
// missing; letters, digits and underscores) instead of the connection's
// default search_path. Several independent ledgers can share a database
// this way; the tests use a fresh schema each.
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithPoolConnsMax caps the connections this process opens (default 16).
func WithPoolConnsMax(n int) Option { return func(c *config) { c.poolConnsMax = n } }

// WithStatementTimeout sets PostgreSQL's statement_timeout on every
// connection (default 5s; 0 disables it): a statement stuck behind a lock
// or a slow server fails instead of hanging a request.
func WithStatementTimeout(d time.Duration) Option { return func(c *config) { c.statementTimeout = d } }

// WithOpTimeout bounds how long one operation may wait for the database,
// connecting included (default 10s). Past it the operation fails closed.
func WithOpTimeout(d time.Duration) Option { return func(c *config) { c.opTimeout = d } }

// WithWriters sets how many batches of reserve/commit/release this process
// runs at once (default 4, at most the pool size minus one for reads).
func WithWriters(n int) Option { return func(c *config) { c.writers = n } }

// WithReaders sets how many pipelines of reads (checks, snapshots,
// lookups) this process sends at once (default 4).
func WithReaders(n int) Option { return func(c *config) { c.readers = n } }

// WithMaxBatch caps how many operations share one transaction, and how
// many reads share one pipeline (default 128; 1 disables batching).
func WithMaxBatch(n int) Option { return func(c *config) { c.maxBatch = n } }

// WithLinger sets how long a writer waits for more operations before
// sending a batch, when its previous batch held more than one (default 0:
// never). Bigger batches mean fewer lock handoffs and WAL flushes when
// several hosts write one hot tree, at the price of that much latency; on
// the 2-core benchmark machine 200µs made no difference beyond the noise,
// so it is off unless measured to help. A lone caller never waits.
func WithLinger(d time.Duration) Option { return func(c *config) { c.linger = d } }

// WithRetries sets how many times a transaction that failed with a
// serialization failure or a deadlock is retried before the error reaches
// the caller (default 10). The schema's lock order makes both rare.
func WithRetries(n int) Option { return func(c *config) { c.retries = n } }

// WithSweepEvery runs Sweep in the background at this interval (default 0:
// never; the server sets one). Correctness does not depend on it: it only
// forgets reservations settled longer than RetainSettled ago, and expires
// holds of trees nobody writes to.
func WithSweepEvery(d time.Duration) Option { return func(c *config) { c.sweepEvery = d } }

var schemaRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func (c config) validate() error {
	switch {
	case c.schema != "" && !schemaRE.MatchString(c.schema):
		return fmt.Errorf("schema %q: want letters, digits and underscores, not starting with a digit, at most 63", c.schema)
	case c.poolConnsMax < 2:
		return fmt.Errorf("pool size %d: want at least 2 (one writer and one reader)", c.poolConnsMax)
	case c.statementTimeout < 0:
		return fmt.Errorf("statement timeout %s is negative", c.statementTimeout)
	case c.opTimeout <= 0:
		return fmt.Errorf("operation timeout %s: want a positive duration", c.opTimeout)
	case c.writers < 1:
		return fmt.Errorf("writers %d: want at least 1", c.writers)
	case c.readers < 1:
		return fmt.Errorf("readers %d: want at least 1", c.readers)
	case c.maxBatch < 1:
		return fmt.Errorf("max batch %d: want at least 1", c.maxBatch)
	case c.retries < 0:
		return fmt.Errorf("retries %d is negative", c.retries)
	case c.linger < 0:
		return fmt.Errorf("linger %s is negative", c.linger)
	case c.sweepEvery < 0:
		return fmt.Errorf("sweep interval %s is negative", c.sweepEvery)
	}
	return nil
}

// Open connects to the PostgreSQL database at dsn (a postgres:// URL or a
// key=value string, as libpq reads them), applies pending schema
// migrations under an advisory lock, and returns the ledger.
//
// Time: when opts.Clock is nil (the default, and what the server uses),
// every instant — reservation expiry, settling times, alert times — is
// read from the database's clock, so hosts whose clocks disagree still
// agree on when a hold expires. A non-nil opts.Clock is used instead (the
// conformance suite injects a fake clock); only do that with one host or
// well-synchronized clocks.
func Open(ctx context.Context, dsn string, opts enforcer.LedgerOptions, options ...Option) (*Ledger, error) {
	cfg := config{poolConnsMax: 16, statementTimeout: 5 * time.Second, opTimeout: 10 * time.Second,
		writers: 4, readers: 4, maxBatch: 128, retries: 10, linger: 0}
	for _, o := range options {
		o(&cfg)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres ledger: dsn: %w", err)
	}
	where := fmt.Sprintf("%s:%d/%s", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, pcfg.ConnConfig.Database)
	if cfg.schema != "" {
		where += "/" + cfg.schema
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("open postgres ledger %s: %w", where, err)
	}
	cfg.writers = min(cfg.writers, cfg.poolConnsMax-1)
	pcfg.MaxConns = int32(cfg.poolConnsMax)
	rp := pcfg.ConnConfig.RuntimeParams
	rp["statement_timeout"] = strconv.FormatInt(cfg.statementTimeout.Milliseconds(), 10)
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "purser"
	}
	if cfg.schema != "" {
		rp["search_path"] = cfg.schema
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = cfg.opTimeout
	}
	l := newLedger(where, opts)
	if l.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("open postgres ledger %s: %w", where, err)
	}
	if err := migrate(ctx, l.pool, cfg.schema); err != nil {
		l.pool.Close()
		return nil, fmt.Errorf("open postgres ledger %s: %w", where, err)
	}
	l.w = newBatcher(l, cfg)
	l.r = newReader(l, cfg)
	if cfg.sweepEvery > 0 {
		l.startSweeper(cfg.sweepEvery)
	}
	return l, nil
}

func newLedger(where string, opts enforcer.LedgerOptions) *Ledger {
	l := &Ledger{where: where, clock: opts.Clock, notifier: opts.Notifier, retain: opts.RetainSettled}
	if l.retain <= 0 {
		l.retain = enforcer.DefaultRetainSettled
	}
	l.thresholds = enforcer.NewThresholds(opts.ThresholdsPct)
	return l
}

// ErrClosed is returned by operations after Close; like any other
// unavailability it wraps enforcer.ErrLedgerUnavailable (a server shutting
// down answers 503, not 500).
var ErrClosed = fmt.Errorf("postgres ledger closed (%w)", enforcer.ErrLedgerUnavailable)

// Close stops the background sweeper, waits for queued operations and
// closes the connections.
func (l *Ledger) Close() error {
	if l.stopSweep != nil {
		close(l.stopSweep)
		l.swept.Wait()
		l.stopSweep = nil
	}
	if l.w != nil {
		l.w.close()
	}
	if l.r != nil {
		l.r.close()
	}
	l.pool.Close()
	return nil
}

// Where names the database (host:port/database[/schema]) without secrets.
func (l *Ledger) Where() string { return l.where }

// Ping checks the database answers (readiness).
func (l *Ledger) Ping(ctx context.Context) error {
	if err := l.pool.Ping(ctx); err != nil {
		return l.dbErr("ping", err)
	}
	return nil
}

func (l *Ledger) startSweeper(every time.Duration) {
	l.stopSweep = make(chan struct{})
	l.swept.Add(1)
	go func() {
		defer l.swept.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-l.stopSweep:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), every)
				_, _ = l.Sweep(ctx) // an unreachable database is retried next tick
				cancel()
			}
		}
	}()
}

// nowArg is the "now" passed to the database: nil for its own clock.
func (l *Ledger) nowArg() *int64 {
	if l.clock == nil {
		return nil
	}
	n := l.clock.Now().UnixNano()
	return &n
}

// fromNanos is the one conversion from stored instants back to time.Time,
// so the same reservation read twice compares equal with ==.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// ErrUnavailable wraps every failure to reach PostgreSQL (connection
// refused or lost, timeouts, a server shutting down or recovering). The
// ledger fails closed on it. It wraps enforcer.ErrLedgerUnavailable, so a
// server answers 503 without knowing the store.
var ErrUnavailable error = unavailableError{}

type unavailableError struct{}

func (unavailableError) Error() string { return "unavailable" }
func (unavailableError) Unwrap() error { return enforcer.ErrLedgerUnavailable }

// dbErr wraps a database failure with the database it happened in, and
// marks it ErrUnavailable when the database could not be reached.
func (l *Ledger) dbErr(op string, err error) error {
	if unknown := (*OutcomeUnknownError)(nil); errors.As(err, &unknown) && unavailable(err) {
		return &OutcomeUnknownError{Err: fmt.Errorf("postgres ledger %s is %w: %s: the request was sent but its answer was lost, "+
			"so it may have been applied; look the reservation up or retry with the same id: %w", l.where, ErrUnavailable, op, unknown.Err)}
	}
	if unavailable(err) {
		l.dropConns(err)
		return fmt.Errorf("postgres ledger %s is %w (failing closed): %s: %w", l.where, ErrUnavailable, op, err)
	}
	return fmt.Errorf("postgres ledger %s: %s: %w", l.where, op, err)
}

// dropConns closes the pool's connections after a connection-level
// failure: when PostgreSQL restarts, every pooled connection is dead, and
// each would otherwise fail one more request before being replaced.
func (l *Ledger) dropConns(err error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || errors.Is(err, context.DeadlineExceeded) {
		return // the server answered, or the caller's time ran out
	}
	l.pool.Reset()
}

// unavailable: the error says the database could not be reached or did not
// answer in time, not that it refused the statement.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return true // network, TLS, pool or deadline errors
	}
	switch {
	case strings.HasPrefix(pgErr.Code, "08"), // connection exception
		pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutting down, crashed, starting
		pgErr.Code == "57014", // statement timeout
		pgErr.Code == "53300", // too many connections
		pgErr.Code == "25006": // read-only transaction: a standby after a failover
		return true
	}
	return false
}

// sqlErr wraps a database error with what was being done; domain errors
// (which wrap an enforcer sentinel or are typed) pass as they are.
func (l *Ledger) sqlErr(err error, format string, args ...any) error {
	if err == nil || isDomain(err) {
		return err
	}
	return l.dbErr(fmt.Sprintf(format, args...), err)
}

func isDomain(err error) bool {
	for _, s := range []error{enforcer.ErrAccountNotFound, enforcer.ErrAccountExists, enforcer.ErrReservationNotFound,
		enforcer.ErrReservationConflict, enforcer.ErrReservationSettled, enforcer.ErrInsufficientBudget,
		enforcer.ErrInvalidAccount, enforcer.ErrSupervisorBudget, enforcer.ErrInvalidReservation, enforcer.ErrInvalidAmount,
		ErrClosed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
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
