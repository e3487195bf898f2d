package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// TestUpgradeFromSchema1KeepsHoldsAnswerable: a file written before
// fingerprints existed opens (0002 adds the column), its holds read back
// with an empty fingerprint, a retry without one is still a retry and a
// retry with one is a conflict.
func TestUpgradeFromSchema1KeepsHoldsAnswerable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := fs.ReadFile(migrationFiles, "migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	clk := enforcer.SystemClock{}
	now := clk.Now().UnixNano()
	for _, q := range []string{string(v1),
		`CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`,
		`INSERT INTO schema_version (version) VALUES (1)`,
		`INSERT INTO accounts (id, limit_nanos, created_at, pending_nanos) VALUES ('a', 1000, 0, 5)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO reservations (id, account_id, tool, estimate_nanos, ttl_nanos, state, created_at, expires_at)
		VALUES ('r', 'a', 'Read', 5, ?1, 'pending', ?2, ?3)`, int64(time.Hour), now, now+int64(time.Hour)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	l, err := Open(ctx, path, enforcer.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	req := enforcer.ReserveRequest{ID: "r", Account: "a", Tool: "Read", Estimate: 5, TTL: time.Hour}
	if r, err := l.Reserve(ctx, req); err != nil || r.State != enforcer.StatePending || r.Fingerprint != "" {
		t.Errorf("retry of a schema-1 hold: %+v, %v", r, err)
	}
	req.Fingerprint = "fp"
	if _, err := l.Reserve(ctx, req); !errors.Is(err, enforcer.ErrReservationConflict) {
		t.Errorf("retry with a fingerprint: %v, want a conflict", err)
	}
}

// TestListingUsesTheAccountIndex: Reservations reads one account's rows in
// order from the reservations_account index (migration 0002), not by
// scanning and sorting every reservation.
func TestListingUsesTheAccountIndex(t *testing.T) {
	ctx := context.Background()
	l, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"), enforcer.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rows, err := l.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+selectAccountRes, "a", "", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	got := strings.Join(plan, "; ")
	if !strings.Contains(got, "reservations_account") || strings.Contains(got, "TEMP B-TREE") {
		t.Errorf("query plan %q: want the reservations_account index and no sort", got)
	}
}
