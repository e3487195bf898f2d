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

// holder reserves the holds an Extend benchmark grows: a new one every
// MaxExtensions extensions (one Reserve per 1000 ops, kept in the timing).
type holder struct {
	l    *sqlite.Ledger
	next *atomic.Int64
	id   string
	n    int
}

func (h *holder) extend(b *testing.B) {
	ctx := context.Background()
	if h.id == "" || h.n == enforcer.MaxExtensions {
		h.id, h.n = "h"+strconv.FormatInt(h.next.Add(1), 10), 0
		reserveOne(b, h.l, h.id)
	}
	h.n++
	if _, err := h.l.Extend(ctx, enforcer.ExtendRequest{ID: h.id, ExtensionID: strconv.Itoa(h.n), Add: 1}); err != nil {
		b.Fatal(err)
	}
}

func reserveOne(b *testing.B, l *sqlite.Ledger, id string) {
	if _, err := l.Reserve(context.Background(), enforcer.ReserveRequest{ID: id, Account: "team/agent", Tool: "Bash",
		Estimate: enforcer.USD(0, 10_000_000), TTL: time.Hour}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSQLiteExtendVsReserve: one Extend against one Reserve, each a
// durable write on a two-level path, by one caller and by 16 per core
// (group commit). Extend is the same kind of write (check the path, one
// row in, totals up), so it should cost the same.
func BenchmarkSQLiteExtendVsReserve(b *testing.B) {
	for _, sync := range []sqlite.Synchronous{sqlite.SyncFull, sqlite.SyncNormal} {
		for _, par := range []bool{false, true} {
			name := string(sync)
			if par {
				name += "/parallel"
			}
			b.Run("reserve/"+name, func(b *testing.B) {
				l := benchLedger(b, sqlite.WithSynchronous(sync))
				var next atomic.Int64
				runOps(b, par, func() { reserveOne(b, l, "r"+strconv.FormatInt(next.Add(1), 10)) })
			})
			b.Run("extend/"+name, func(b *testing.B) {
				l := benchLedger(b, sqlite.WithSynchronous(sync))
				var next atomic.Int64
				if !par {
					h := &holder{l: l, next: &next}
					runOps(b, false, func() { h.extend(b) })
					return
				}
				b.SetParallelism(16)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					h := &holder{l: l, next: &next}
					for pb.Next() {
						h.extend(b)
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}

// runOps runs op b.N times, serially or from 16 goroutines per core.
func runOps(b *testing.B, par bool, op func()) {
	b.ResetTimer()
	if par {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op()
			}
		})
	} else {
		for range b.N {
			op()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
