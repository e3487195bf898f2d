package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/sqlite"
)

const (
	crashChildEnv = "PURSER_SQLITE_CRASH_CHILD" // the database path, in the child
	crashWorkers  = 8
	// crashAfter is how many acknowledged operations the parent waits for
	// before it kills the child mid-load.
	crashAfter = 400
)

// TestHelperProcess is the child of TestKillDuringLoad: it opens the
// database and, from several goroutines, reserves and commits forever,
// printing a line for each operation only after the ledger acknowledged it.
// It never returns on its own; the parent kills it.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper for TestKillDuringLoad")
	}
	ctx := context.Background()
	l, err := sqlite.Open(ctx, path, enforcer.LedgerOptions{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var mu sync.Mutex // one line per write, whole
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Printf(format+"\n", args...)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Go(func() { crashWorker(ctx, l, w, say) })
	}
	wg.Wait()
}

// crashWorker runs one worker's loop: most calls are reserved and
// committed; every fifth hold is left pending for an hour, every seventh
// for a millisecond (so it has expired by the restart).
func crashWorker(ctx context.Context, l *sqlite.Ledger, w int, say func(string, ...any)) {
	for i := 0; ; i++ {
		id := fmt.Sprintf("w%d-%d", w, i)
		acct := []string{"team", "team/a", "team/b"}[i%3]
		est := enforcer.Nanos(1000 + i%17)
		ttl := time.Hour
		if i%7 == 6 {
			ttl = time.Millisecond
		}
		if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: acct, Tool: "Bash", Estimate: est, TTL: ttl}); err != nil {
			say("error reserve %s: %v", id, err)
			os.Exit(2)
		}
		if i%5 == 4 || i%7 == 6 {
			say("pending %s %d %d .", id, est, ttl)
			continue
		}
		actual := est + enforcer.Nanos(i%3) - 1
		if _, err := l.Commit(ctx, id, &actual, ""); err != nil {
			say("error commit %s: %v", id, err)
			os.Exit(2)
		}
		say("committed %s %d .", id, actual)
	}
}

type acked struct {
	committed map[string]enforcer.Nanos // id -> charged
	pending   map[string]time.Duration  // id -> ttl
	estimates map[string]enforcer.Nanos // pending id -> estimate
	errors    []string
}

// TestKillDuringLoad kills a process with SIGKILL while it is committing,
// reopens the file and checks that every acknowledged commit and hold is
// there and that the denormalised totals equal the sums over reservations.
func TestKillDuringLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	setupCrashDB(t, path)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := readAcks(t, cmd, out)
	_ = cmd.Wait() // killed: the error is expected
	if len(got.errors) > 0 {
		t.Fatalf("child failed: %v", got.errors)
	}
	if len(got.committed) == 0 || len(got.pending) == 0 {
		t.Fatalf("child acknowledged %d commits and %d holds before the kill", len(got.committed), len(got.pending))
	}
	t.Logf("killed after %d acknowledged commits and %d holds", len(got.committed), len(got.pending))
	checkAfterCrash(t, path, got)
}

func setupCrashDB(t *testing.T, path string) {
	t.Helper()
	l, err := sqlite.Open(context.Background(), path, enforcer.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	limit := enforcer.USD(1000, 0)
	for _, spec := range []enforcer.AccountSpec{
		{ID: "team", Limit: &limit}, {ID: "team/a", Parent: "team"}, {ID: "team/b", Parent: "team", Limit: &limit},
	} {
		if _, err := l.CreateAccount(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// readAcks collects the child's acknowledgements until crashAfter of them
// arrived, then kills it with SIGKILL and drains what it had written. Only
// whole lines (newline and the closing " ." present) count.
func readAcks(t *testing.T, cmd *exec.Cmd, out io.Reader) acked {
	t.Helper()
	got := acked{committed: map[string]enforcer.Nanos{}, pending: map[string]time.Duration{}, estimates: map[string]enforcer.Nanos{}}
	killed := false
	timeout := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() }) // a generous bound, not an assertion
	defer timeout.Stop()
	r := bufio.NewReader(out)
	for n := 0; ; n++ {
		line, err := r.ReadString('\n')
		if err != nil {
			break // EOF after the kill; a partial last line is dropped
		}
		parseAck(t, strings.TrimSuffix(line, "\n"), &got)
		if !killed && n+1 >= crashAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if !killed {
		t.Fatalf("child stopped after %d acknowledgements (errors: %v)", len(got.committed)+len(got.pending), got.errors)
	}
	return got
}

func parseAck(t *testing.T, line string, got *acked) {
	f := strings.Fields(line)
	if len(f) == 0 || (f[0] != "committed" && f[0] != "pending") {
		if len(f) > 0 && f[0] == "error" {
			got.errors = append(got.errors, line)
		}
		return // the test framework's own output
	}
	if len(f) < 3 || f[len(f)-1] != "." {
		t.Fatalf("child wrote %q", line)
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		t.Fatalf("child wrote %q: %v", line, err)
	}
	switch {
	case f[0] == "committed" && len(f) == 4:
		got.committed[f[1]] = enforcer.Nanos(n)
	case f[0] == "pending" && len(f) == 5:
		ttl, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			t.Fatalf("child wrote %q: %v", line, err)
		}
		got.pending[f[1]], got.estimates[f[1]] = time.Duration(ttl), enforcer.Nanos(n)
	default:
		t.Fatalf("child wrote %q", line)
	}
}

// checkAfterCrash reopens the file (which sweeps expired holds) and checks
// every acknowledged operation, then the books.
func checkAfterCrash(t *testing.T, path string, got acked) {
	ctx := context.Background()
	l, err := sqlite.Open(ctx, path, enforcer.LedgerOptions{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer l.Close()
	for id, charged := range got.committed {
		r, err := l.Reservation(ctx, id)
		if err != nil || r.State != enforcer.StateCommitted || r.Charged != charged {
			t.Errorf("acknowledged commit %s (charged %s) reads %+v, %v", id, charged, r, err)
		}
	}
	for id, ttl := range got.pending {
		r, err := l.Reservation(ctx, id)
		want := enforcer.StatePending
		if ttl < time.Minute {
			want = enforcer.StateExpired
		}
		if err != nil || r.State != want || r.Estimate != got.estimates[id] {
			t.Errorf("acknowledged hold %s (ttl %s) reads %+v, %v; want %s", id, ttl, r, err, want)
		}
	}
	checkBooks(t, l, path)
}

// checkBooks recomputes every account's totals and tool stats from the
// reservation rows and compares them with the stored totals and with
// Snapshot; it also checks the startup sweep left nothing overdue.
func checkBooks(t *testing.T, l *sqlite.Ledger, path string) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var overdue int
	if err := db.QueryRow(`SELECT COUNT(*) FROM reservations WHERE state = 'pending' AND expires_at <= ?`,
		time.Now().UnixNano()).Scan(&overdue); err != nil || overdue != 0 {
		t.Errorf("%d overdue holds left after the startup sweep (%v)", overdue, err)
	}
	subtree := map[string]string{"team": "%", "team/a": "team/a", "team/b": "team/b"}
	for acct, like := range subtree {
		var committed, pending, calls int64
		err := db.QueryRow(`SELECT
				COALESCE(SUM(CASE WHEN state = 'committed' THEN charged_nanos END), 0),
				COALESCE(SUM(CASE WHEN state = 'pending' THEN estimate_nanos END), 0),
				COUNT(CASE WHEN state = 'committed' THEN 1 END)
			FROM reservations WHERE account_id LIKE ?`, like).Scan(&committed, &pending, &calls)
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Snapshot(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		if int64(s.Committed) != committed || int64(s.Pending) != pending {
			t.Errorf("%s: totals committed %s pending %s, reservations sum to %s and %s",
				acct, s.Committed, s.Pending, enforcer.Nanos(committed), enforcer.Nanos(pending))
		}
		if st := s.Tools["Bash"]; st.Calls != calls || int64(st.Spent) != committed {
			t.Errorf("%s: Bash stats %+v, reservations say %d calls, %s", acct, st, calls, enforcer.Nanos(committed))
		}
	}
}
