package postgres

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// ErrJournalFull: the fail-open journal holds as many unwritten charges
// (and live outage holds that may become charges) as it is allowed; no
// more calls are admitted while the database is unreachable.
var ErrJournalFull = errors.New("fail-open journal full")

// journalRecord is one line of the journal: a charge acknowledged during
// an outage, or (Written set) the note that the charge with that id is now
// in the shared ledger.
type journalRecord struct {
	Written string `json:"written,omitempty"`

	ID          string              `json:"id,omitempty"`
	Account     string              `json:"account,omitempty"`
	Tool        string              `json:"tool,omitempty"`
	Estimate    enforcer.Nanos      `json:"estimate_nanos,omitempty"`
	TTL         time.Duration       `json:"ttl_nanos,omitempty"`
	Fingerprint string              `json:"fingerprint,omitempty"`
	Charged     enforcer.Nanos      `json:"charged_nanos,omitempty"`
	Source      enforcer.CostSource `json:"cost_source,omitempty"`
	Late        bool                `json:"late,omitempty"`
	CreatedAt   int64               `json:"created_unix_nanos,omitempty"`
	SettledAt   int64               `json:"settled_unix_nanos,omitempty"`
	Remote      bool                `json:"remote,omitempty"` // the hold may exist in the shared ledger
	// Recorded on the reservation when written back (absent in journals
	// written before issue 13: zero values).
	Extended       enforcer.Nanos `json:"extended_nanos,omitempty"`
	BaseEstimate   enforcer.Nanos `json:"base_estimate_nanos,omitempty"`
	CalibrationKey string         `json:"calibration_key,omitempty"`
	Usage          *journalUsage  `json:"usage,omitempty"`
	PriceSource    string         `json:"price_source,omitempty"`
}

// journalUsage is a TokenUsage as the journal spells it, fixed here so
// that a journal outlives changes to the enforcer type's encoding.
type journalUsage struct {
	Model              string `json:"model"`
	InputTokens        int64  `json:"input_tokens"`
	OutputTokens       int64  `json:"output_tokens"`
	CacheReadTokens    int64  `json:"cache_read_tokens"`
	CacheWriteTokens   int64  `json:"cache_write_tokens"`
	CacheWrite1hTokens int64  `json:"cache_write_1h_tokens"`
}

func journalUsageOf(u *enforcer.TokenUsage) *journalUsage {
	if u == nil {
		return nil
	}
	j := journalUsage(*u)
	return &j
}

func (j *journalUsage) usage() *enforcer.TokenUsage {
	if j == nil {
		return nil
	}
	u := enforcer.TokenUsage(*j)
	return &u
}

// recordOf is the journal record of a committed outage reservation.
func recordOf(r enforcer.Reservation, ttl time.Duration, remote bool) journalRecord {
	return journalRecord{ID: r.ID, Account: r.Account, Tool: r.Tool, Estimate: r.Estimate, TTL: ttl,
		Fingerprint: r.Fingerprint, Charged: r.Charged, Source: r.CostSource, Late: r.Late, CreatedAt: r.CreatedAt.UnixNano(),
		SettledAt: r.SettledAt.UnixNano(), Remote: remote, Extended: r.Extended, BaseEstimate: r.BaseEstimate,
		CalibrationKey: r.CalibrationKey, Usage: journalUsageOf(r.Usage), PriceSource: r.PriceSource}
}

// reservation is the committed reservation rec records.
func (rec journalRecord) reservation() enforcer.Reservation {
	created := time.Unix(0, rec.CreatedAt).UTC()
	return enforcer.Reservation{ID: rec.ID, Account: rec.Account, Tool: rec.Tool, Estimate: rec.Estimate,
		State: enforcer.StateCommitted, CreatedAt: created, ExpiresAt: created.Add(rec.TTL),
		SettledAt: time.Unix(0, rec.SettledAt).UTC(), Charged: rec.Charged, CostSource: rec.Source, Late: rec.Late,
		Fingerprint: rec.Fingerprint, Extended: rec.Extended, BaseEstimate: rec.BaseEstimate, CalibrationKey: rec.CalibrationKey,
		Usage: rec.Usage.usage(), PriceSource: rec.PriceSource}
}

// journal is the durable record of fail-open charges not yet written to
// the shared ledger: an append-only file of JSON lines, each fsynced before
// the commit it records is acknowledged, so a charge survives the process.
// It is replayed at start and emptied once every charge is written.
// Not safe for concurrent use: FailOpen calls it under its lock.
type journal struct {
	path       string
	entriesMax int
	f          *os.File
	unwritten  int
}

// openJournal opens (creating) the journal at path and returns the charges
// it holds that were never marked written, in order. A last line cut short
// by a crash is dropped (its commit was never acknowledged: the fsync did
// not return); any other unreadable line is an error, so an operator looks
// before charges are lost.
func openJournal(path string, entriesMax int) (*journal, []journalRecord, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, nil, fmt.Errorf("fail-open journal %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("fail-open journal %s: %w", path, err)
	}
	recs, good, err := readJournal(f)
	if err == nil {
		err = f.Truncate(good) // drop a torn tail
	}
	if err == nil {
		_, err = f.Seek(good, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("fail-open journal %s: %w", path, err)
	}
	return &journal{path: path, entriesMax: entriesMax, f: f, unwritten: len(recs)}, recs, nil
}

// readJournal returns the unwritten charges and the length of the valid
// prefix of the file.
func readJournal(f *os.File) ([]journalRecord, int64, error) {
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, err
	}
	var order []string
	charges := map[string]journalRecord{}
	var good int64
	for line := 1; len(data) > 0; line++ {
		end := bytes.IndexByte(data, '\n')
		var rec journalRecord
		if end < 0 {
			break // torn tail
		}
		if err := json.Unmarshal(data[:end], &rec); err != nil || (rec.Written == "" && rec.ID == "") {
			if len(bytes.TrimSpace(data[end+1:])) == 0 {
				break // a torn last line
			}
			return nil, 0, fmt.Errorf("line %d is not a journal record (%v); fix or move the file aside after checking its charges", line, err)
		}
		good += int64(end + 1)
		data = data[end+1:]
		if rec.Written != "" {
			delete(charges, rec.Written)
			continue
		}
		if _, dup := charges[rec.ID]; !dup {
			order = append(order, rec.ID)
		}
		charges[rec.ID] = rec
	}
	var out []journalRecord
	for _, id := range order {
		if rec, ok := charges[id]; ok {
			out = append(out, rec)
			delete(charges, id)
		}
	}
	return out, good, nil
}

// append writes rec and fsyncs; only then may its commit be acknowledged.
func (j *journal) append(rec journalRecord) error {
	if rec.Written == "" && j.unwritten >= j.entriesMax {
		return fmt.Errorf("%w: %s holds %d charges not yet written to the shared ledger (journal_entries_max)", ErrJournalFull, j.path, j.unwritten)
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("fail-open journal %s: %w", j.path, err)
	}
	// A failed write or fsync is not acknowledged, so its bytes must not
	// stay: a partial line would swallow the next acknowledged one at
	// replay, and a whole unsynced one would replay a charge the caller
	// was told failed. Cut the file back to where this record began.
	start, err := j.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("fail-open journal %s: %w", j.path, err)
	}
	w := bufio.NewWriter(j.f)
	_, _ = w.Write(line)
	_ = w.WriteByte('\n')
	if err := w.Flush(); err != nil {
		return j.undo(start, fmt.Errorf("fail-open journal %s: write: %w", j.path, err))
	}
	if err := j.f.Sync(); err != nil {
		return j.undo(start, fmt.Errorf("fail-open journal %s: fsync: %w", j.path, err))
	}
	if rec.Written == "" {
		j.unwritten++
	} else {
		j.unwritten--
	}
	return nil
}

// rejectedPath is the file of charges the shared ledger refused for good.
func (j *journal) rejectedPath() string { return j.path + ".rejected" }

// reject appends r, with why, to the rejected file (fsynced) so that a
// charge the shared ledger will never take is kept for an operator.
func (j *journal) reject(r enforcer.Reservation, why error) error {
	line, err := json.Marshal(struct {
		Reservation enforcer.Reservation `json:"reservation"`
		Error       string               `json:"error"`
	}{r, why.Error()})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(j.rejectedPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("fail-open rejected file: %w", err)
	}
	_, werr := f.Write(append(line, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("fail-open rejected file %s: %w", j.rejectedPath(), err)
	}
	return nil
}

// undo cuts the file back to start after a failed append and returns
// cause (joined with any error of the cut itself).
func (j *journal) undo(start int64, cause error) error {
	if err := j.f.Truncate(start); err != nil {
		return errors.Join(cause, fmt.Errorf("cut back to %d bytes: %w", start, err))
	}
	if _, err := j.f.Seek(start, io.SeekStart); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// reset empties the journal once nothing in it is unwritten.
func (j *journal) reset() error {
	if j.unwritten != 0 {
		return nil
	}
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("fail-open journal %s: truncate: %w", j.path, err)
	}
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("fail-open journal %s: %w", j.path, err)
	}
	return j.f.Sync()
}

func (j *journal) close() error { return j.f.Close() }
