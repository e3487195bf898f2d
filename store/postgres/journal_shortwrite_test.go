package postgres

import (
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
)

// A short write (disk full / EFBIG) must not leave a partial line: the next
// acknowledged append would be glued to it and lost at replay (or block
// the restart). The file size limit (RLIMIT_FSIZE) provokes EFBIG.
func TestJournalShortWriteDoesNotSwallowTheNextAcknowledgedCharge(t *testing.T) {
	signal.Ignore(syscall.SIGXFSZ)
	path := filepath.Join(t.TempDir(), "j")
	j, _, err := openJournal(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := syscall.Rlimit{Cur: 20, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	err1 := j.append(journalRecord{ID: "a", Account: "x", Charged: 5})
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err1 == nil {
		t.Fatal("the first append passed the 20-byte file size limit")
	}
	if err := j.append(journalRecord{ID: "b", Account: "x", Charged: 7}); err != nil {
		t.Fatal(err)
	}
	t.Logf("second append acknowledged")
	j.close()
	raw, _ := os.ReadFile(path)
	t.Logf("file: %q", raw)
	_, recs, err := openJournal(path, 10)
	if err != nil {
		t.Fatalf("restart refused: %v", err)
	}
	if len(recs) != 1 || recs[0].ID != "b" {
		t.Fatalf("acknowledged charge b lost at replay: %+v", recs)
	}
}
