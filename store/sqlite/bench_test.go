package sqlite_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/sqlite"
)

// benchLedger opens a ledger on the real clock with a team pool and one
// agent account under it (a two-level path, as in a real deployment).
func benchLedger(b *testing.B, options ...sqlite.Option) *sqlite.Ledger {
	b.Helper()
	l := openTemp(b, enforcer.LedgerOptions{Clock: enforcer.SystemClock{}}, options...)
	ctx := context.Background()
	limit := enforcer.USD(1_000_000_000, 0)
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "team", Limit: &limit}); err != nil {
		b.Fatal(err)
	}
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "team/agent", Parent: "team"}); err != nil {
		b.Fatal(err)
	}
	return l
}

// pair reserves and commits one call with id.
func pair(b *testing.B, l *sqlite.Ledger, id string) {
	ctx := context.Background()
	if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: "team/agent", Tool: "Bash",
		Estimate: enforcer.USD(0, 10_000_000), TTL: time.Hour}); err != nil {
		b.Fatal(err)
	}
	actual := enforcer.USD(0, 1_000_000)
	if _, err := l.Commit(ctx, id, &actual, enforcer.CostActual); err != nil {
		b.Fatal(err)
	}
}

func reportPairs(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkSQLiteReserveCommit is one caller doing durable reserve+commit
// pairs back to back: each is two fsynced transactions, so it measures the
// disk's fsync latency more than anything else.
func BenchmarkSQLiteReserveCommit(b *testing.B) {
	for _, sync := range []sqlite.Synchronous{sqlite.SyncFull, sqlite.SyncNormal} {
		b.Run(string(sync), func(b *testing.B) {
			l := benchLedger(b, sqlite.WithSynchronous(sync))
			b.ResetTimer()
			for i := range b.N {
				pair(b, l, "r"+strconv.Itoa(i))
			}
			reportPairs(b)
		})
	}
}

// BenchmarkSQLiteReserveCommitParallel is many concurrent callers (16 per
// core) on one hot account, as behind purser serve: group commit shares
// each fsync among the requests that queued meanwhile.
func BenchmarkSQLiteReserveCommitParallel(b *testing.B) {
	for _, sync := range []sqlite.Synchronous{sqlite.SyncFull, sqlite.SyncNormal} {
		b.Run(string(sync), func(b *testing.B) {
			l := benchLedger(b, sqlite.WithSynchronous(sync))
			var next atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					pair(b, l, "r"+strconv.FormatInt(next.Add(1), 10))
				}
			})
			reportPairs(b)
		})
	}
}

// BenchmarkSQLiteCheck is the admission read (no hold) on a three-level
// path, from the read pool while nothing is overdue.
func BenchmarkSQLiteCheck(b *testing.B) {
	l := benchLedger(b)
	ctx := context.Background()
	if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "team/agent/session", Parent: "team/agent"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if c, err := l.Check(ctx, "team/agent/session", enforcer.USD(0, 10_000_000)); err != nil || !c.OK {
			b.Fatal(c, err)
		}
	}
}
