package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// setMaxPages caps (or uncaps) the database file's size in pages on the
// write connection, which makes SQLite answer SQLITE_FULL as a full disk
// would.
func setMaxPages(t *testing.T, l *Ledger, pages int) {
	t.Helper()
	err := l.w.do(context.Background(), func(tx *wtx) error {
		_, err := tx.conn.ExecContext(tx.ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDatabaseFullIsUnavailableAndRecovers: when the database cannot grow
// (SQLITE_FULL), writes fail with ErrLedgerUnavailable, reads go on,
// Ready says the ledger cannot write, and once there is room again
// writes resume and Ready recovers without a restart, with every
// acknowledged hold kept.
func TestDatabaseFullIsUnavailableAndRecovers(t *testing.T) {
	ctx := context.Background()
	l, err := Open(ctx, filepath.Join(t.TempDir(), "full.db"), enforcer.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := l.read.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	setMaxPages(t, l, pages+2)
	reserve := func(i int) error {
		_, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: fmt.Sprint("r", i), Account: "a", Tool: "Bash",
			Estimate: 1, TTL: time.Hour, Fingerprint: fmt.Sprintf("%0100d", i)})
		return err
	}
	acked, i := 0, 0
	for ; i < 100_000; i++ {
		err = reserve(i)
		if err != nil {
			break
		}
		acked++
	}
	if !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		t.Fatalf("reserve on a full database: %v, want ErrLedgerUnavailable", err)
	}
	if err := l.Ready(ctx); !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		t.Errorf("Ready on a full database: %v, want ErrLedgerUnavailable", err)
	}
	if s, err := l.Snapshot(ctx, "a"); err != nil || s.Pending != enforcer.Nanos(acked) {
		t.Errorf("reads while full: %+v, %v; want pending %d", s, err, acked)
	}
	setMaxPages(t, l, 1<<30)
	if err := l.Ready(ctx); err != nil {
		t.Errorf("Ready once there is room: %v", err)
	}
	for j := range 50 {
		if err := reserve(i + j); err != nil {
			t.Fatalf("reserve %d once there is room: %v", j, err)
		}
	}
	if s, err := l.Snapshot(ctx, "a"); err != nil || s.Pending != enforcer.Nanos(acked+50) {
		t.Errorf("after recovery: %+v, %v; want pending %d", s, err, acked+50)
	}
}

// mountTiny mounts a tmpfs of size bytes on a fresh directory, or skips
// the test when this process may not mount (not root, no CAP_SYS_ADMIN).
func mountTiny(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("a real full disk needs a tmpfs mount, which is not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 16<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestDiskFullWALGivesSpaceBack: on a real full disk, the WAL (which
// could not be checkpointed: the database file could not grow) is folded
// into the database and truncated when writes fail, so space the operator
// frees goes to new writes instead of the WAL swallowing it; writes
// resume at once, Ready follows, and a restart on the same disk works.
func TestDiskFullWALGivesSpaceBack(t *testing.T) {
	dir := mountTiny(t, 4<<20)
	ctx := context.Background()
	path := filepath.Join(dir, "ledger.db")
	logs := filepath.Join(dir, "logs") // what the operator deletes later
	if err := os.WriteFile(logs, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(ctx, path, enforcer.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	op := func(id string) error {
		if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "a", Tool: "Bash", Estimate: 1, TTL: time.Hour}); err != nil {
			return err
		}
		_, err := l.Commit(ctx, id, nil, "")
		return err
	}
	acked := 0
	for i := 0; ; i++ {
		if i == 100_000 {
			t.Fatal("the disk never filled")
		}
		if err = op(fmt.Sprint("r", i)); err != nil {
			break
		}
		acked++
	}
	if !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		t.Fatalf("write on a full disk: %v, want ErrLedgerUnavailable", err)
	}
	fill(t, filepath.Join(dir, "more-logs")) // the disk stays full
	if err := l.Ready(ctx); !errors.Is(err, enforcer.ErrLedgerUnavailable) {
		t.Errorf("Ready on a full disk: %v, want ErrLedgerUnavailable", err)
	}
	if err := os.Remove(logs); err != nil { // the operator frees space
		t.Fatal(err)
	}
	freed := freeBytes(t, dir)
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("Ready once space returned: %v", err)
	}
	const after = 40
	for i := range after {
		if err := op(fmt.Sprint("after", i)); err != nil {
			t.Fatalf("write %d once space returned: %v", i, err)
		}
	}
	if left := freeBytes(t, dir); left < freed/2 {
		t.Errorf("%d writes after %d bytes were freed left %d free: the WAL kept the space", after, freed, left)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(ctx, path, enforcer.LedgerOptions{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	if err := op("reopened"); err != nil {
		t.Errorf("write after reopening: %v", err)
	}
	if s, err := l.Snapshot(ctx, "a"); err != nil || s.Committed != enforcer.Nanos(acked+after+1) {
		t.Errorf("after reopening: %+v, %v; want %d acknowledged commits", s, err, acked+after+1)
	}
}
