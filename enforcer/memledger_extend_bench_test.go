package enforcer_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// batch is how many holds one timed phase works on: the timer stops
// around setting them up and settling them, so Reserve and Extend are
// each timed alone on the same ledger state.
const batch = 1024

// timedBatches runs b.N timed operations in phases of batch holds on
// account: setup (untimed) readies ids[:k], op is timed per hold, then
// every hold is committed (untimed) and forgotten.
func timedBatches(b *testing.B, l *enforcer.MemoryLedger, account string, setup, op func(id string)) {
	ctx := context.Background()
	ids := makeIDs("r")[:batch]
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		b.StopTimer()
		for _, id := range ids[:n] {
			setup(id)
		}
		b.StartTimer()
		for _, id := range ids[:n] {
			op(id)
		}
		b.StopTimer()
		for _, id := range ids[:n] {
			if _, err := l.Commit(ctx, id, nil, ""); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := l.Sweep(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		done += n
	}
}

func hierarchy3(b *testing.B) *enforcer.MemoryLedger {
	l := benchLedger(b)
	mustCreate(b, l, "org", "", enforcer.MaxNanos)
	mustCreate(b, l, "org/team", "org", enforcer.MaxNanos/2)
	mustCreate(b, l, "org/team/agent", "org/team", enforcer.MaxNanos/4)
	return l
}

func benchReserve(b *testing.B, l *enforcer.MemoryLedger) func(id string) {
	ctx := context.Background()
	return func(id string) {
		req := enforcer.ReserveRequest{ID: id, Account: "org/team/agent", Tool: "LLM", Estimate: enforcer.USD(0, 10_000_000), TTL: time.Hour}
		if _, err := l.Reserve(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryLedgerReserveAlone times Reserve by itself on a 3-level
// tree, the baseline for Extend.
func BenchmarkMemoryLedgerReserveAlone(b *testing.B) {
	l := hierarchy3(b)
	timedBatches(b, l, "org/team/agent", func(string) {}, benchReserve(b, l))
}

// BenchmarkMemoryLedgerExtend times one Extend of a pending hold on a
// 3-level tree, after prior extensions of that hold (the idempotency
// check scans them).
func BenchmarkMemoryLedgerExtend(b *testing.B) {
	for _, prior := range []int{0, 8} {
		b.Run("prior="+strconv.Itoa(prior), func(b *testing.B) {
			l := hierarchy3(b)
			ctx := context.Background()
			xs := make([]string, prior+1)
			for i := range xs {
				xs[i] = "x" + strconv.Itoa(i)
			}
			reserve := benchReserve(b, l)
			extend := func(x string) func(id string) {
				return func(id string) {
					if _, err := l.Extend(ctx, enforcer.ExtendRequest{ID: id, ExtensionID: x, Add: enforcer.USD(0, 1_000_000)}); err != nil {
						b.Fatal(err)
					}
				}
			}
			setup := func(id string) {
				reserve(id)
				for _, x := range xs[:prior] {
					extend(x)(id)
				}
			}
			timedBatches(b, l, "org/team/agent", setup, extend(xs[prior]))
		})
	}
}
