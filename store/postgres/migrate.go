package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew means the database was migrated by a newer purser.
var ErrSchemaTooNew = errors.New("database schema is newer than this purser supports")

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. Their
// names are NNNN_description.sql with NNNN = 1, 2, ... without gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name is not NNNN_description.sql", e.Name())
		}
		body, err := fs.ReadFile(migrationFiles, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d", m.name, m.version, i+1)
		}
	}
	return out, nil
}

// LatestSchemaVersion is the schema version this code writes.
func LatestSchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrateLockKey is the advisory lock serializing migrations of one schema
// across every host starting at once.
func migrateLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("purser.migrate\x00" + schema))
	return int64(h.Sum64())
}

// migrate brings the schema up to date. It holds a session advisory lock
// for the whole run, so of several hosts starting together one applies the
// migrations and the others wait and then find nothing to do; each
// migration runs in its own transaction with its version row, so a crash
// mid-way leaves the previous version intact.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (err error) {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Release()
	key := migrateLockKey(schema)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return fmt.Errorf("migrate: advisory lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key); uerr != nil {
			err = errors.Join(err, fmt.Errorf("migrate: advisory unlock: %w", uerr))
		}
	}()
	if schema != "" {
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("migrate: create schema %s: %w", schema, err)
		}
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS purser_schema_version (
		version    INTEGER     NOT NULL PRIMARY KEY,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("migrate: schema version table: %w", err)
	}
	var cur int
	if err := conn.QueryRow(ctx, "SELECT COALESCE(max(version), 0) FROM purser_schema_version").Scan(&cur); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if latest := len(ms); cur > latest {
		return fmt.Errorf("%w: the database is at schema version %d, this build knows versions up to %d; upgrade purser or point it at another database or schema",
			ErrSchemaTooNew, cur, latest)
	}
	for _, m := range ms[cur:] {
		if err := applyMigration(ctx, conn.Conn(), m); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *pgx.Conn, m migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: apply %s: begin: %w", m.name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return fmt.Errorf("migrate: apply %s: %w", m.name, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO purser_schema_version (version) VALUES ($1)", m.version); err != nil {
		return fmt.Errorf("migrate: record %s: %w", m.name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: apply %s: commit: %w", m.name, err)
	}
	return nil
}
