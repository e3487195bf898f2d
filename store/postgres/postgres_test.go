package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/enforcer/ledgertest"
	"github.com/purser-dev/purser/store/postgres"
)

// testDSN returns the database the tests may use, or skips the test.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("PURSER_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("set PURSER_TEST_POSTGRES_DSN=postgres://... to run; scripts/pg-up.sh starts one")
	}
	return dsn
}

// freshSchema returns a new schema name and drops the schema when the test
// ends, so every ledger starts empty and tests never see each other.
func freshSchema(t testing.TB, dsn string) string {
	t.Helper()
	name := fmt.Sprintf("purser_test_%016x", rand.Uint64())
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// openTemp opens a ledger in a fresh schema and closes it when the test
// ends (before the schema is dropped).
func openTemp(t testing.TB, opts enforcer.LedgerOptions, options ...postgres.Option) *postgres.Ledger {
	t.Helper()
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	l, err := postgres.Open(context.Background(), dsn, opts,
		append([]postgres.Option{postgres.WithSchema(schema), postgres.WithPoolConnsMax(8)}, options...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return l
}

// The conformance suite, scaled to a networked store: every write is a
// transaction with a WAL flush, and each property sequence migrates a new
// schema, so the simulation takes 10,000 steps (every account shape,
// ~1,000 reservations, all terminal states including late commits) instead
// of 100,000.
func TestPostgresLedgerConformance(t *testing.T) {
	testDSN(t)
	o := ledgertest.RunOptions{SimSteps: 10_000}
	if testing.Short() {
		o.SimSteps, o.PropertySteps = 2_000, 30
	}
	ledgertest.Run(t, func(t *testing.T, opts enforcer.LedgerOptions) enforcer.Ledger {
		return openTemp(t, opts)
	}, o)
}

// Without batching every operation is its own transaction: the same
// suite must pass (it is the path an isolated failing operation takes).
func TestPostgresLedgerConformanceUnbatched(t *testing.T) {
	testDSN(t)
	ledgertest.Run(t, func(t *testing.T, opts enforcer.LedgerOptions) enforcer.Ledger {
		return openTemp(t, opts, postgres.WithMaxBatch(1), postgres.WithWriters(8))
	}, ledgertest.RunOptions{SimSteps: 2_000, PropertySteps: 30, Goroutines: 200})
}
