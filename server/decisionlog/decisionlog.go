// Package decisionlog writes purser's decision log: one JSON object per
// line, a versioned event per admission decision, with size-based
// rotation. Logging never blocks a request: events go through a bounded
// queue to one writer goroutine, and when the disk is slower than the
// traffic the overflow is dropped and counted, so memory stays bounded.
package decisionlog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// EventVersion is the schema version of Event. Adding fields, or a new
// outcome value whose events are never admissions (OutcomeError), is a
// minor change and keeps the version; renaming or removing a field, or
// changing what an existing field or value means, bumps it.
//
// Version 2 adds settlement and extension events (Kind "commit",
// "release", "extend"): an "extend" event with outcome "allow" admitted
// more money for a call already admitted, not a new call, so a version 1
// reader counting allow events as calls would count wrong.
const EventVersion = 2

// Kinds of event.
const (
	KindCheck   = "check"
	KindReserve = "reserve"
	KindExtend  = "extend"  // a hold grown (Outcome allow, deny or error)
	KindCommit  = "commit"  // a reservation charged (OutcomeCommitted)
	KindRelease = "release" // a reservation released (OutcomeReleased)
)

// Outcomes. Only OutcomeAllow admitted the call; readers should treat an
// outcome they do not know as not admitted.
const (
	OutcomeAllow = "allow"
	OutcomeDeny  = "deny"
	OutcomeAsk   = "ask"
	// OutcomeError: the server could not decide (ledger unavailable, id
	// conflict...) and the client got an error, not an admission (after a
	// lost database reply a hold may exist; a retry with the same
	// reservation id settles that). ErrorCode is the API error code the
	// client got; the estimate fields are empty.
	OutcomeError = "error"
	// OutcomeCommitted and OutcomeReleased settle a reservation (Kind
	// "commit", "release"); they admit nothing.
	OutcomeCommitted = "committed"
	OutcomeReleased  = "released"
)

// Event is one admission decision.
type Event struct {
	Version       int       `json:"version"`
	DecisionID    string    `json:"decision_id"`
	Time          time.Time `json:"time"`
	Kind          string    `json:"kind"` // KindCheck, KindReserve, ...
	Account       string    `json:"account"`
	Tool          string    `json:"tool"`
	ParamsSHA256  string    `json:"params_sha256"`
	Params        any       `json:"params,omitempty"` // only when configured
	EstimateNanos int64     `json:"estimate_nanos"`
	EstimateUSD   string    `json:"estimate_usd"`
	Source        string    `json:"source"`
	FallbackError string    `json:"fallback_error,omitempty"`
	// EstimateFuel is the fuel an estimator plugin used (absent for
	// built-in sources): deterministic, so a change flags a new module or
	// a different input.
	EstimateFuel  int64    `json:"estimate_fuel,omitempty"`
	PluginDigests []string `json:"plugin_digests,omitempty"`
	Policies      []Policy `json:"policies,omitempty"`
	Outcome       string   `json:"outcome"` // allow, deny, ask, error, committed, released
	// ErrorCode and Error say why an OutcomeError event failed (the API's
	// error code, e.g. "ledger_unavailable", and the server-side detail).
	ErrorCode     string    `json:"error_code,omitempty"`
	Error         string    `json:"error,omitempty"`
	Layer         string    `json:"layer,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	ReservationID string    `json:"reservation_id,omitempty"`
	ApprovalID    string    `json:"approval_id,omitempty"`
	Ledger        *Snapshot `json:"ledger,omitempty"`
	// Extension events: the caller's extension id, the amount asked for,
	// and the hold after the event (estimate + extended).
	ExtensionID string `json:"extension_id,omitempty"`
	AddNanos    int64  `json:"add_nanos,omitempty"`
	HeldNanos   int64  `json:"held_nanos,omitempty"`
	// Settlement events: what was charged and what it was priced from.
	ChargedNanos  *int64 `json:"charged_nanos,omitempty"`
	CostSource    string `json:"cost_source,omitempty"`
	Late          bool   `json:"late,omitempty"`
	Usage         *Usage `json:"usage,omitempty"`
	PriceSource   string `json:"price_source,omitempty"`
	PriceFallback bool   `json:"price_fallback,omitempty"`
	// Replay marks a commit, release or extension event that repeats an
	// earlier one (a retry after a lost reply): nothing changed, so a
	// reader summing money skips it.
	Replay bool `json:"replay,omitempty"`
}

// Usage is the token usage a commit reported (the API's usage object).
type Usage struct {
	Model              string `json:"model"`
	InputTokens        int64  `json:"input_tokens"`
	OutputTokens       int64  `json:"output_tokens"`
	CacheReadTokens    int64  `json:"cache_read_tokens"`
	CacheWriteTokens   int64  `json:"cache_write_tokens"`
	CacheWrite1hTokens int64  `json:"cache_write_1h_tokens"`
}

// Policy is one policy's result inside an Event.
type Policy struct {
	Name     string `json:"name"`
	Verdict  string `json:"verdict"`
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
	FailOpen bool   `json:"fail_open,omitempty"`
	Fuel     int64  `json:"fuel,omitempty"` // plugin policies: fuel the call used
}

// Snapshot is the call's account right after the decision (an allowed
// reservation's hold included), so the log shows what the decision left.
type Snapshot struct {
	Account        string `json:"account"`
	LimitNanos     *int64 `json:"limit_nanos"`
	CommittedNanos int64  `json:"committed_nanos"`
	PendingNanos   int64  `json:"pending_nanos"`
	RemainingNanos *int64 `json:"remaining_nanos"`
}

// Options bound the log.
type Options struct {
	// FileBytesMax rotates the file once it grows past this size
	// (default 64 MiB).
	FileBytesMax int64
	// Backups is how many rotated files (path.1 ... path.N) are kept
	// (default 5).
	Backups int
	// QueueEventsMax is how many events may wait for the disk before new
	// ones are dropped (default 4096).
	QueueEventsMax int
}

func (o Options) withDefaults() Options {
	if o.FileBytesMax <= 0 {
		o.FileBytesMax = 64 << 20
	}
	if o.Backups <= 0 {
		o.Backups = 5
	}
	if o.QueueEventsMax <= 0 {
		o.QueueEventsMax = 4096
	}
	return o
}

// Writer appends events to a JSONL file.
type Writer struct {
	path string
	opts Options

	queue   chan Event
	done    chan struct{}
	closeMu sync.Mutex
	closed  bool

	dropped atomic.Uint64
	written atomic.Uint64
	errs    atomic.Uint64
	lastErr atomic.Pointer[error]

	file *os.File
	buf  *bufio.Writer
	size int64
}

// Open opens (appending) or creates the log at path and starts its writer.
func Open(path string, opts Options) (*Writer, error) {
	w := &Writer{path: path, opts: opts.withDefaults()}
	if err := w.openFile(); err != nil {
		return nil, err
	}
	w.queue = make(chan Event, w.opts.QueueEventsMax)
	w.done = make(chan struct{})
	go w.loop()
	return w, nil
}

func (w *Writer) openFile() error {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("decision log %s: %w", w.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("decision log %s: %w", w.path, err)
	}
	w.file, w.buf, w.size = f, bufio.NewWriterSize(f, 64<<10), st.Size()
	return nil
}

// Log queues ev; it never blocks. It reports false when the event was
// dropped (queue full or log closed).
func (w *Writer) Log(ev Event) bool {
	ev.Version = EventVersion
	w.closeMu.Lock()
	defer w.closeMu.Unlock()
	if w.closed {
		w.dropped.Add(1)
		return false
	}
	select {
	case w.queue <- ev:
		return true
	default:
		w.dropped.Add(1)
		return false
	}
}

func (w *Writer) loop() {
	defer close(w.done)
	for ev := range w.queue {
		w.write(ev)
		if len(w.queue) == 0 {
			w.flush()
		}
	}
	w.flush()
}

func (w *Writer) write(ev Event) {
	line, err := json.Marshal(ev)
	if err != nil {
		w.fail(fmt.Errorf("decision log: encode event %s: %w", ev.DecisionID, err))
		return
	}
	line = append(line, '\n')
	if w.size+int64(len(line)) > w.opts.FileBytesMax && w.size > 0 {
		if err := w.rotate(); err != nil {
			w.fail(err)
		}
	}
	n, err := w.buf.Write(line)
	w.size += int64(n)
	if err != nil {
		w.fail(fmt.Errorf("decision log %s: %w", w.path, err))
		return
	}
	w.written.Add(1)
}

func (w *Writer) flush() {
	if err := w.buf.Flush(); err != nil {
		w.fail(fmt.Errorf("decision log %s: flush: %w", w.path, err))
	}
}

func (w *Writer) fail(err error) {
	w.errs.Add(1)
	w.lastErr.Store(&err)
}

// rotate shifts path.N-1 -> path.N ... path -> path.1 and starts afresh.
// Whatever fails, the log ends up with an open file again, so one bad
// rotation does not silence it for good.
func (w *Writer) rotate() error {
	w.flush()
	if err := w.file.Close(); err != nil {
		return errors.Join(fmt.Errorf("decision log %s: close for rotation: %w", w.path, err), w.openFile())
	}
	if err := w.shift(); err != nil {
		return errors.Join(err, w.openFile())
	}
	return w.openFile()
}

func (w *Writer) shift() error {
	for i := w.opts.Backups - 1; i >= 1; i-- {
		from := fmt.Sprintf("%s.%d", w.path, i)
		if err := os.Rename(from, fmt.Sprintf("%s.%d", w.path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("decision log: rotate %s: %w", from, err)
		}
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return fmt.Errorf("decision log: rotate %s: %w", w.path, err)
	}
	return nil
}

// Stats reports what happened to events so far.
type Stats struct {
	Written, Dropped, Errors uint64
	LastError                error
}

// Stats returns counters for metrics and status.
func (w *Writer) Stats() Stats {
	s := Stats{Written: w.written.Load(), Dropped: w.dropped.Load(), Errors: w.errs.Load()}
	if p := w.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

// Close stops accepting events, writes what is queued and closes the file.
func (w *Writer) Close() error {
	w.closeMu.Lock()
	if w.closed {
		w.closeMu.Unlock()
		return nil
	}
	w.closed = true
	close(w.queue)
	w.closeMu.Unlock()
	<-w.done
	if err := w.file.Close(); err != nil {
		return fmt.Errorf("decision log %s: %w", w.path, err)
	}
	return nil
}
