package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
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
