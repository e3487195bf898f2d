package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

// TestConnectionSettings: the durability settings the package promises are
// the ones the connections really run with.
func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		sync Synchronous
		want int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{SyncFull, 2}, {SyncNormal, 1}} {
		l, err := Open(ctx, filepath.Join(t.TempDir(), "p.db"), enforcer.LedgerOptions{}, WithSynchronous(c.sync))
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		var sync, fk, busy int
		for q, dst := range map[string]any{
			"PRAGMA journal_mode": &mode, "PRAGMA synchronous": &sync, "PRAGMA foreign_keys": &fk, "PRAGMA busy_timeout": &busy,
		} {
			if err := l.w.conn.QueryRowContext(ctx, q).Scan(dst); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if mode != "wal" || sync != c.want || fk != 1 || busy != 10_000 {
			t.Errorf("%s: writer has journal_mode %s, synchronous %d, foreign_keys %d, busy_timeout %d",
				c.sync, mode, sync, fk, busy)
		}
		var readOnly int
		if err := l.read.QueryRowContext(ctx, "PRAGMA query_only").Scan(&readOnly); err != nil || readOnly != 1 {
			t.Errorf("read pool query_only = %d, %v", readOnly, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
