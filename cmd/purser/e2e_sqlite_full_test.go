package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSQLiteDiskFullServesUnavailableAndRecovers runs the real server with
// its SQLite ledger on a tiny tmpfs (issue 11, item 15): when the disk
// fills, writes answer 503 and /readyz is 503; when the operator frees
// space, /readyz and writes recover without a restart; a restart on the
// same disk works; no acknowledged commit is lost.
func TestSQLiteDiskFullServesUnavailableAndRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server on a tmpfs")
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk")
	if err := os.Mkdir(disk, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("needs a 4 MiB tmpfs to fill (mount as root); mounting is not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() { // registered first, so it runs after the servers are killed
		if err := syscall.Unmount(disk, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", disk, err)
		}
	})
	logs := filepath.Join(disk, "logs") // what the operator deletes
	if err := os.WriteFile(logs, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("store: {kind: sqlite, path: %s}\nplugins: {entries: [], watch: false}\naccounts: [{id: team, limit_usd: \"1000\"}]\n",
		filepath.Join(disk, "ledger.db"))
	p := startServer(t, dir, cfg)

	var acked []string
	call := func(p *serverProc, id string) (int, map[string]any) {
		st, out := p.do("POST", "/v1/reservations", map[string]any{"id": id, "account": "team", "tool": "Bash", "ttl_ms": 600_000})
		if st != http.StatusOK {
			return st, out
		}
		st, out = p.do("POST", "/v1/reservations/"+id+"/commit", map[string]any{"actual_nanos": 1000})
		if st == http.StatusOK {
			acked = append(acked, id)
		}
		return st, out
	}
	st, out := 0, map[string]any(nil)
	for i := 0; ; i++ {
		if i == 20_000 {
			t.Fatal("the disk never filled")
		}
		if st, out = call(p, fmt.Sprint("full-", i)); st != http.StatusOK {
			break
		}
	}
	if e, _ := out["error"].(map[string]any); st != http.StatusServiceUnavailable || e["code"] != "ledger_unavailable" {
		t.Errorf("a write on a full disk: %d %v; want 503 ledger_unavailable", st, out)
	}
	fillDisk(t, filepath.Join(disk, "more-logs"))
	if st, body := p.do("GET", "/readyz", nil); st != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a full disk: %d %v; want 503", st, body)
	}

	if err := os.Remove(logs); err != nil { // the operator frees space
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, body := p.do("GET", "/readyz", nil)
		if st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stayed %d %v after space was freed\n%s", st, body, p.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 40 {
		if st, out := call(p, fmt.Sprint("freed-", i)); st != http.StatusOK {
			t.Fatalf("write %d after space was freed: %d %v", i, st, out)
		}
	}

	p.kill()
	p2 := startServer(t, dir, cfg)
	if st, out := call(p2, "restarted"); st != http.StatusOK {
		t.Errorf("write after a restart: %d %v", st, out)
	}
	for _, id := range acked {
		if st, r := p2.do("GET", "/v1/reservations/"+id, nil); st != http.StatusOK || r["state"] != "committed" {
			t.Errorf("acknowledged commit %s: %d %v", id, st, r)
		}
	}
	team := p2.must("GET", "/v1/accounts/team", nil, http.StatusOK)
	if team["committed_nanos"] != float64(1000*len(acked)) {
		t.Errorf("team committed %v, want %d acknowledged commits of 1000", team["committed_nanos"], len(acked))
	}
}

// fillDisk writes a file until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return
		}
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 16<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) && !strings.Contains(err.Error(), "no space") {
				t.Fatal(err)
			}
			return
		}
	}
}
