package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/sqlite"
)

func schemaVersions(t *testing.T, path string) []int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT version FROM schema_version ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestReopenKeepsDataAndSchema: opening an existing file applies nothing
// twice and keeps every account and reservation.
func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	limit := enforcer.USD(1, 0)
	for round := range 3 {
		l, err := sqlite.Open(ctx, path, enforcer.LedgerOptions{})
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		if round == 0 {
			if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "a", Limit: &limit, Labels: map[string]string{"tier": "gold"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: "r", Account: "a", Tool: "Read", Estimate: 5, TTL: time.Hour}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Commit(ctx, "r", nil, ""); err != nil {
				t.Fatal(err)
			}
		}
		s, err := l.Snapshot(ctx, "a")
		if err != nil || s.Committed != 5 || *s.Limit != limit || s.Labels["tier"] != "gold" || s.Tools["Read"].Calls != 1 {
			t.Errorf("round %d: %+v, %v", round, s, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]int, sqlite.LatestSchemaVersion())
	for i := range want {
		want[i] = i + 1
	}
	if got := schemaVersions(t, path); len(got) != len(want) || (len(got) > 0 && got[len(got)-1] != want[len(want)-1]) {
		t.Errorf("schema_version rows %v, want %v", got, want)
	}
}

// TestRefuseNewerSchema: a file written by a newer purser is refused with
// an error naming the file and both versions, and is left untouched.
func TestRefuseNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := sqlite.Open(ctx, path, enforcer.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	newer := sqlite.LatestSchemaVersion() + 1
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_version (version) VALUES (?)`, newer); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = sqlite.Open(ctx, path, enforcer.LedgerOptions{})
	if !errors.Is(err, sqlite.ErrSchemaTooNew) {
		t.Fatalf("open newer schema: %v, want ErrSchemaTooNew", err)
	}
	msg := err.Error()
	for _, want := range []string{path, strconv.Itoa(newer), strconv.Itoa(sqlite.LatestSchemaVersion())} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if got := schemaVersions(t, path); got[len(got)-1] != newer {
		t.Errorf("refused open changed schema_version: %v", got)
	}
}

// TestOpenErrorsNameTheFile: a path that cannot be a database fails at
// Open with the path in the message.
func TestOpenErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{notDB, filepath.Join(dir, "missing", "dir", "ledger.db")} {
		_, err := sqlite.Open(context.Background(), path, enforcer.LedgerOptions{})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("open %s: %v, want an error naming the file", path, err)
		}
	}
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if _, err := sqlite.Open(context.Background(), path, enforcer.LedgerOptions{}); err == nil {
			t.Errorf("open %q: accepted, want refused", path)
		}
	}
	_, err := sqlite.Open(context.Background(), filepath.Join(dir, "x.db"), enforcer.LedgerOptions{}, sqlite.WithSynchronous("OFF"))
	if err == nil || !strings.Contains(err.Error(), "OFF") {
		t.Errorf("synchronous OFF: %v, want refused", err)
	}
}

// TestErrorsWrapSentinels: errors name the account or reservation and wrap
// the enforcer sentinels, and the ledger refuses writes after Close.
func TestErrorsWrapSentinels(t *testing.T) {
	ctx := context.Background()
	l := openTemp(t, enforcer.LedgerOptions{})
	cases := []struct {
		err  error
		want error
		name string
	}{}
	add := func(err, want error, name string) {
		cases = append(cases, struct {
			err  error
			want error
			name string
		}{err, want, name})
	}
	_, err := l.Snapshot(ctx, "ghost")
	add(err, enforcer.ErrAccountNotFound, "ghost")
	_, err = l.Reserve(ctx, enforcer.ReserveRequest{ID: "r-ghost", Account: "ghost", Estimate: 1, TTL: time.Minute})
	add(err, enforcer.ErrAccountNotFound, "ghost")
	_, err = l.Commit(ctx, "r-none", nil, "")
	add(err, enforcer.ErrReservationNotFound, "r-none")
	_, err = l.Release(ctx, "r-none")
	add(err, enforcer.ErrReservationNotFound, "r-none")
	_, err = l.CreateAccount(ctx, enforcer.AccountSpec{ID: "kid", Parent: "ghost"})
	add(err, enforcer.ErrAccountNotFound, "ghost")
	for _, c := range cases {
		if !errors.Is(c.err, c.want) || !strings.Contains(c.err.Error(), c.name) {
			t.Errorf("error %v: want one wrapping %q and naming %q", c.err, c.want, c.name)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = l.Reserve(ctx, enforcer.ReserveRequest{ID: "late", Account: "a", Estimate: 1, TTL: time.Minute})
	if !errors.Is(err, sqlite.ErrClosed) || !errors.Is(err, enforcer.ErrLedgerUnavailable) || !strings.Contains(err.Error(), l.Path()) {
		t.Errorf("reserve after close: %v", err)
	}
}
