package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/postgres"
)

// BenchmarkReserveCommit measures check+reserve+commit triples (what one
// admitted call costs the ledger) from many goroutines on one hot account
// and over 100 accounts of one pool. Needs PURSER_TEST_POSTGRES_DSN.
func BenchmarkReserveCommit(b *testing.B) {
	for _, c := range []struct {
		accounts int
		linger   time.Duration
	}{{1, 0}, {1, 200 * time.Microsecond}, {100, 0}, {100, 200 * time.Microsecond}} {
		accounts := c.accounts
		b.Run(fmt.Sprintf("accounts=%d/linger=%s", accounts, c.linger), func(b *testing.B) {
			l := openTemp(b, enforcer.LedgerOptions{}, postgres.WithLinger(c.linger))
			ctx := context.Background()
			if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: "pool"}); err != nil {
				b.Fatal(err)
			}
			for i := range accounts {
				if _, err := l.CreateAccount(ctx, enforcer.AccountSpec{ID: fmt.Sprintf("pool/a%d", i), Parent: "pool"}); err != nil {
					b.Fatal(err)
				}
			}
			var n atomic.Int64
			run := time.Now().UnixNano()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					acct := fmt.Sprintf("pool/a%d", i%int64(accounts))
					id := fmt.Sprintf("b%d-%d", run, i)
					if _, err := l.Check(ctx, acct, 1000); err != nil {
						b.Error(err)
						return
					}
					if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: acct, Tool: "Read", Estimate: 1000, TTL: time.Minute}); err != nil {
						b.Error(err)
						return
					}
					actual := enforcer.Nanos(900)
					if _, err := l.Commit(ctx, id, &actual, ""); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkExtendVsReserve compares one Extend with one Reserve on a hot
// account of a 2-level tree (the same path, lock and budget check), from
// one caller and from 16 per core. Each caller extends its own hold and
// starts a new one every MaxExtensions-1 extensions.
func BenchmarkExtendVsReserve(b *testing.B) {
	for _, par := range []int{0, 16} {
		for _, opName := range []string{"Reserve", "Extend"} {
			b.Run(fmt.Sprintf("%s/parallel=%d", opName, par), func(b *testing.B) {
				l := openTemp(b, enforcer.LedgerOptions{})
				ctx := context.Background()
				for _, spec := range []enforcer.AccountSpec{{ID: "pool"}, {ID: "pool/a", Parent: "pool"}} {
					if _, err := l.CreateAccount(ctx, spec); err != nil {
						b.Fatal(err)
					}
				}
				var callers atomic.Int64
				run := time.Now().UnixNano()
				body := func(next func() bool) {
					me, i := callers.Add(1), 0
					hold := ""
					for next() {
						i++
						req := enforcer.ReserveRequest{ID: fmt.Sprintf("b%d-%d-%d", run, me, i), Account: "pool/a", Estimate: 1000, TTL: time.Hour}
						if opName == "Reserve" || (i-1)%(enforcer.MaxExtensions-1) == 0 {
							if _, err := l.Reserve(ctx, req); err != nil {
								b.Error(err)
								return
							}
							hold = req.ID
							if opName == "Reserve" {
								continue
							}
						}
						if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: hold, ExtensionID: fmt.Sprint(i), Add: 10}); err != nil {
							b.Error(err)
							return
						}
					}
				}
				b.ResetTimer()
				if par == 0 {
					n := 0
					body(func() bool { n++; return n <= b.N })
					return
				}
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) { body(pb.Next) })
			})
		}
	}
}
