package sqlite

import (
	"context"
	"database/sql"
	"errors"
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
	l := openAtSchema(t, 1, func(exec func(q string, args ...any)) {
		now := enforcer.SystemClock{}.Now().UnixNano()
		exec(`INSERT INTO accounts (id, limit_nanos, created_at, pending_nanos) VALUES ('a', 1000, 0, 5)`)
		exec(`INSERT INTO reservations (id, account_id, tool, estimate_nanos, ttl_nanos, state, created_at, expires_at)
			VALUES ('r', 'a', 'Read', 5, ?1, 'pending', ?2, ?3)`, int64(time.Hour), now, now+int64(time.Hour))
	})
	req := enforcer.ReserveRequest{ID: "r", Account: "a", Tool: "Read", Estimate: 5, TTL: time.Hour}
	if r, err := l.Reserve(ctx, req); err != nil || r.State != enforcer.StatePending || r.Fingerprint != "" {
		t.Errorf("retry of a schema-1 hold: %+v, %v", r, err)
	}
	req.Fingerprint = "fp"
	if _, err := l.Reserve(ctx, req); !errors.Is(err, enforcer.ErrReservationConflict) {
		t.Errorf("retry with a fingerprint: %v, want a conflict", err)
	}
}

// openAtSchema writes a file as a purser at schema version did (its
// migrations, then setup's rows) and opens it with this code, which
// upgrades it; the ledger is closed when the test ends.
func openAtSchema(t *testing.T, version int, setup func(exec func(q string, args ...any))) *Ledger {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	exec(`CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`)
	for _, m := range ms[:version] {
		exec(m.sql)
		exec(`INSERT INTO schema_version (version) VALUES (?1)`, m.version)
	}
	setup(exec)
	db.Close()
	l, err := Open(context.Background(), path, enforcer.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
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

// TestUpgradeFromSchema2HoldsGrow: a file written at schema 2 opens (0003
// adds the columns and tables), its pending hold reads back unextended and
// uncalibrated, grows with Extend and commits at estimate+extended, its
// settled reservation reads with no usage, and calibration is stored.
func TestUpgradeFromSchema2HoldsGrow(t *testing.T) {
	ctx := context.Background()
	l := openAtSchema(t, 2, func(exec func(q string, args ...any)) {
		now := enforcer.SystemClock{}.Now().UnixNano()
		exec(`INSERT INTO accounts (id, limit_nanos, created_at, pending_nanos, committed_nanos) VALUES ('a', 1000, 0, 5, 7)`)
		exec(`INSERT INTO reservations (id, account_id, tool, estimate_nanos, ttl_nanos, state, created_at, expires_at,
			settled_at, charged_nanos, cost_source, fingerprint)
			VALUES ('r', 'a', 'llm', 5, ?1, 'pending', ?2, ?3, NULL, 0, '', 'fp'),
			       ('c', 'a', 'llm', 9, ?1, 'committed', ?2, ?3, ?2, 7, 'actual', '')`,
			int64(time.Hour), now, now+int64(time.Hour))
	})
	if c, err := l.Reservation(ctx, "c"); err != nil || c.Charged != 7 || c.Extended != 0 || c.Usage != nil || c.PriceSource != "" ||
		c.BaseEstimate != 0 || c.CalibrationKey != "" {
		t.Errorf("schema-2 committed reservation: %+v, %v", c, err)
	}
	r, err := l.Extend(ctx, enforcer.ExtendRequest{ID: "r", ExtensionID: "x", Add: 3})
	if err != nil || r.Extended != 3 || r.Estimate != 5 || r.Fingerprint != "fp" {
		t.Fatalf("extend a schema-2 hold: %+v, %v", r, err)
	}
	if s, err := l.Snapshot(ctx, "a"); err != nil || s.Pending != 8 {
		t.Errorf("pending %s, %v; want 8", s.Pending, err)
	}
	if r, err := l.Commit(ctx, "r", nil, ""); err != nil || r.Charged != 8 {
		t.Errorf("commit a schema-2 hold: %+v, %v; want 8 charged", r, err)
	}
	if s, err := l.Snapshot(ctx, "a"); err != nil || s.Pending != 0 || s.Committed != 15 {
		t.Errorf("after commit: %+v, %v", s, err)
	}
	if got, err := l.MergeCalibration(ctx, map[string][]byte{"k": []byte("v")},
		func(old, delta []byte) ([]byte, error) { return delta, nil }); err != nil || string(got["k"]) != "v" {
		t.Errorf("calibration on an upgraded file: %q, %v", got, err)
	}
	if v := schemaVersion(t, l); v != LatestSchemaVersion() {
		t.Errorf("schema version %d after upgrade, want %d", v, LatestSchemaVersion())
	}
}

func schemaVersion(t *testing.T, l *Ledger) int {
	t.Helper()
	var v int
	if err := l.read.QueryRow(`SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
