package decisionlog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readEvents(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: line %d is not JSON: %v", path, len(out)+1, err)
		}
		out = append(out, ev)
	}
	return out
}

func TestWritesVersionedEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	limit := int64(50_000_000)
	for i := range 10 {
		w.Log(Event{DecisionID: fmt.Sprintf("d%d", i), Account: "a", Tool: "Bash", Outcome: "allow",
			Ledger: &Snapshot{Account: "a", LimitNanos: &limit}})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, path)
	if len(evs) != 10 || evs[9].DecisionID != "d9" || evs[0].Version != EventVersion || *evs[3].Ledger.LimitNanos != limit {
		t.Fatalf("read back %d events: %+v", len(evs), evs)
	}
	if s := w.Stats(); s.Written != 10 || s.Dropped != 0 || s.Errors != 0 {
		t.Errorf("stats %+v", s)
	}
	if w.Log(Event{DecisionID: "late"}) {
		t.Error("Log after Close accepted an event")
	}
}

func TestRotatesBySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	w, err := Open(path, Options{FileBytesMax: 1000, Backups: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		w.Log(Event{DecisionID: fmt.Sprintf("d%03d", i), Reason: "some reason text to fill the line"})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("expected %s: %v", p, err)
		}
		if st.Size() > 1000 {
			t.Errorf("%s is %d bytes; limit 1000", p, st.Size())
		}
		total += len(readEvents(t, p))
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("more backups than configured: %v", err)
	}
	if last := readEvents(t, path); last[len(last)-1].DecisionID != "d059" || total >= 60 {
		t.Errorf("newest file should end with d059 and old files be discarded; total kept %d", total)
	}
}

func TestFullQueueDropsInsteadOfBlocking(t *testing.T) {
	// A writer whose disk loop has not started: the queue fills and Log
	// must return at once, counting the drop.
	w := &Writer{queue: make(chan Event, 2)}
	got := []bool{w.Log(Event{}), w.Log(Event{}), w.Log(Event{}), w.Log(Event{})}
	if !got[0] || !got[1] || got[2] || got[3] || w.Stats().Dropped != 2 {
		t.Errorf("Log results %v, dropped %d; want true,true,false,false and 2", got, w.Stats().Dropped)
	}
}

func TestOpenReportsPath(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing-dir", "d.jsonl"), Options{})
	if err == nil || !contains(err.Error(), "missing-dir") {
		t.Errorf("err = %v; want the path in the message", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestSettlementAndExtensionFieldNames pins the JSON names of the version
// 2 fields (readers match on them) and that absent ones stay out.
func TestSettlementAndExtensionFieldNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	charged := int64(11_475_000)
	w.Log(Event{DecisionID: "d1", Kind: KindExtend, Outcome: OutcomeDeny, ExtensionID: "e2", AddNanos: 50_000_000, HeldNanos: 51_000_000})
	w.Log(Event{DecisionID: "d2", Kind: KindCommit, Outcome: OutcomeCommitted, ChargedNanos: &charged, CostSource: "actual",
		Usage:       &Usage{Model: "m", InputTokens: 1, OutputTokens: 2, CacheReadTokens: 3, CacheWriteTokens: 4, CacheWrite1hTokens: 5},
		PriceSource: "fallback:x", PriceFallback: true})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, want := range []string{`"version":2`, `"kind":"extend"`, `"outcome":"deny"`, `"extension_id":"e2"`, `"add_nanos":50000000`, `"held_nanos":51000000`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("extend event lacks %s: %s", want, lines[0])
		}
	}
	if strings.Contains(lines[0], "usage") || strings.Contains(lines[0], "charged_nanos") || strings.Contains(lines[0], "price_") {
		t.Errorf("extend event carries settlement fields: %s", lines[0])
	}
	for _, want := range []string{`"kind":"commit"`, `"outcome":"committed"`, `"charged_nanos":11475000`, `"cost_source":"actual"`,
		`"usage":{"model":"m","input_tokens":1,"output_tokens":2,"cache_read_tokens":3,"cache_write_tokens":4,"cache_write_1h_tokens":5}`,
		`"price_source":"fallback:x"`, `"price_fallback":true`} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("commit event lacks %s: %s", want, lines[1])
		}
	}
}
