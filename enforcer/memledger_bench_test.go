package enforcer_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// benchIDs is a ring of reservation ids; a Sweep every sweepEvery
// operations (with a 1ns retention) forgets settled ones before reuse, so
// memory stays flat however large b.N gets and pruning is paid for.
const (
	benchIDs   = 1 << 14
	sweepEvery = 1 << 10
)

func benchLedger(b *testing.B) *enforcer.MemoryLedger {
	b.Helper()
	return enforcer.NewMemoryLedger(enforcer.LedgerOptions{Clock: enforcer.SystemClock{}, RetainSettled: time.Nanosecond})
}

func makeIDs(prefix string) []string {
	ids := make([]string, benchIDs)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	return ids
}

func mustCreate(b *testing.B, l enforcer.Ledger, id, parent string, limit enforcer.Nanos) {
	b.Helper()
	if _, err := l.CreateAccount(context.Background(), enforcer.AccountSpec{ID: id, Parent: parent, Limit: &limit}); err != nil {
		b.Fatal(err)
	}
}

// reserveCommit runs n Reserve+Commit pairs on account.
func reserveCommit(b *testing.B, l enforcer.Ledger, account string, ids []string, n int) {
	ctx := context.Background()
	actual := enforcer.USD(0, 1_000_000)
	for i := range n {
		id := ids[i%benchIDs]
		if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: account, Tool: "Bash", Estimate: enforcer.USD(0, 10_000_000), TTL: time.Hour}); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Commit(ctx, id, &actual, enforcer.CostActual); err != nil {
			b.Fatal(err)
		}
		if i%sweepEvery == sweepEvery-1 {
			if _, err := l.Sweep(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkMemoryLedgerReserveCommit(b *testing.B) {
	l := benchLedger(b)
	mustCreate(b, l, "a", "", enforcer.MaxNanos)
	ids := makeIDs("r")
	b.ReportAllocs()
	b.ResetTimer()
	reserveCommit(b, l, "a", ids, b.N)
}

func BenchmarkMemoryLedgerReserveCommitHierarchy3(b *testing.B) {
	l := benchLedger(b)
	mustCreate(b, l, "org", "", enforcer.MaxNanos)
	mustCreate(b, l, "org/team", "org", enforcer.MaxNanos/2)
	mustCreate(b, l, "org/team/agent", "org/team", enforcer.MaxNanos/4)
	ids := makeIDs("r")
	b.ReportAllocs()
	b.ResetTimer()
	reserveCommit(b, l, "org/team/agent", ids, b.N)
}

// Each goroutine works on its own tree, so throughput should scale with
// cores (ns/op here is wall time per operation across all goroutines).
func BenchmarkMemoryLedgerReserveCommitParallel(b *testing.B) {
	l := benchLedger(b)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := strconv.FormatInt(next.Add(1), 10)
		account := "tree" + g
		mustCreate(b, l, account, "", enforcer.MaxNanos)
		ids := makeIDs("g" + g + "-")
		ctx := context.Background()
		actual := enforcer.USD(0, 1_000_000)
		for i := 0; pb.Next(); i++ {
			id := ids[i%benchIDs]
			if _, err := l.Reserve(ctx, enforcer.ReserveRequest{ID: id, Account: account, Tool: "Bash", Estimate: enforcer.USD(0, 10_000_000), TTL: time.Hour}); err != nil {
				b.Fatal(err)
			}
			if _, err := l.Commit(ctx, id, &actual, enforcer.CostActual); err != nil {
				b.Fatal(err)
			}
			if i%sweepEvery == sweepEvery-1 {
				if _, err := l.Sweep(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// Check is the admission path's read (no hold) on a 3-level hierarchy.
func BenchmarkMemoryLedgerCheckHierarchy3(b *testing.B) {
	l := benchLedger(b)
	mustCreate(b, l, "org", "", enforcer.MaxNanos)
	mustCreate(b, l, "org/team", "org", enforcer.MaxNanos/2)
	mustCreate(b, l, "org/team/agent", "org/team", enforcer.MaxNanos/4)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if c, err := l.Check(ctx, "org/team/agent", enforcer.USD(0, 10_000_000)); err != nil || !c.OK {
			b.Fatal(c, err)
		}
	}
}
