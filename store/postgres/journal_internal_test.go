package postgres

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A line cut short by a crash (its fsync never returned, so its commit was
// never acknowledged) is dropped; written charges are not replayed.
func TestJournalReplaysUnwrittenAndDropsATornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	body := `{"id":"a","account":"x","charged_nanos":5}
{"id":"b","account":"x","charged_nanos":7}
{"written":"a"}
{"id":"c","acc`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	j, recs, err := openJournal(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].ID != "b" || recs[0].Charged != 7 || j.unwritten != 1 {
		t.Fatalf("replayed %+v (unwritten %d); want only b", recs, j.unwritten)
	}
	if err := j.append(journalRecord{ID: "d", Account: "x", Charged: 1}); err != nil {
		t.Fatal(err)
	}
	j.close()
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), `"acc`+"\n") || !strings.HasSuffix(string(raw), `"charged_nanos":1}`+"\n") {
		t.Errorf("journal after a torn tail and an append:\n%s", raw)
	}
}

// Any other unreadable line stops the start, naming it: charges are never
// skipped silently.
func TestJournalRefusesACorruptLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	if err := os.WriteFile(path, []byte("{\"id\":\"a\"}\nnot json\n{\"id\":\"b\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openJournal(path, 10); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("open with a corrupt second line: %v; want an error naming line 2", err)
	}
}

// Full means full: an append past the bound is refused with ErrJournalFull.
func TestJournalBound(t *testing.T) {
	j, _, err := openJournal(filepath.Join(t.TempDir(), "j"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if err := j.append(journalRecord{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := j.append(journalRecord{ID: "b"}); !errors.Is(err, ErrJournalFull) {
		t.Fatalf("second charge in a journal of one: %v; want ErrJournalFull", err)
	}
	if err := j.append(journalRecord{Written: "a"}); err != nil || j.unwritten != 0 {
		t.Fatalf("marking written: %v, %d unwritten", err, j.unwritten)
	}
	if err := j.reset(); err != nil {
		t.Fatal(err)
	}
}
