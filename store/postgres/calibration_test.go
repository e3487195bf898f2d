package postgres_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/postgres"
)

// addCounts is a merge for tests: values are 8-byte counters, merged by
// adding, so a lost merge shows as a missing count.
func addCounts(old, delta []byte) ([]byte, error) {
	var n uint64
	if old != nil {
		n = binary.BigEndian.Uint64(old)
	}
	return binary.BigEndian.AppendUint64(nil, n+binary.BigEndian.Uint64(delta)), nil
}

func count(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func openSchema(t *testing.T, dsn, schema string) *postgres.Ledger {
	t.Helper()
	// Six goroutines on two hosts serialize on the same rows: under -race
	// on a loaded 2-core CI machine one merge waited past the default 5s
	// statement timeout (a failed sync only keeps its deltas for the next
	// interval; this test is about losing nothing, not about latency).
	l, err := postgres.Open(context.Background(), dsn, enforcer.LedgerOptions{}, postgres.WithSchema(schema), postgres.WithPoolConnsMax(4),
		postgres.WithStatementTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Two hosts (two Ledgers on one database) merging the same keys at once
// lose nothing: every delta is in the final values, and each host reads
// the other's merges back.
func TestCalibrationSharedByHostsLosesNothing(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	hosts := []*postgres.Ledger{openSchema(t, dsn, schema), openSchema(t, dsn, schema)}
	ctx := context.Background()
	const rounds = 40
	keys := []string{"org|llm|a", "org|llm|b", "org|llm|c"}
	var wg sync.WaitGroup
	for h, l := range hosts {
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range rounds {
					// Each round a new key too, so concurrent inserts of one
					// key race as well as updates.
					deltas := map[string][]byte{fmt.Sprint("new|", i): count(1)}
					for _, k := range keys {
						deltas[k] = count(1)
					}
					if _, err := l.MergeCalibration(ctx, deltas, addCounts); err != nil {
						t.Errorf("host %d goroutine %d round %d: %v", h, g, i, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	for h, l := range hosts {
		all, err := l.MergeCalibration(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(keys)+rounds {
			t.Errorf("host %d reads %d keys; want %d", h, len(all), len(keys)+rounds)
		}
		for k, v := range all {
			want := uint64(6)
			if len(k) < 4 || k[:4] != "new|" {
				want = 6 * rounds
			}
			if got := binary.BigEndian.Uint64(v); got != want {
				t.Errorf("host %d: %s = %d; want %d (every host's every delta)", h, k, got, want)
			}
		}
	}
}

// Keys past MaxCalibrationKeys are dropped while the others still merge;
// a merged value past MaxCalibrationValueBytes, a merge error or a bad key
// stores nothing and is an error that is not the store's.
func TestCalibrationBounds(t *testing.T) {
	l := openTemp(t, enforcer.LedgerOptions{})
	ctx := context.Background()
	fill := make(map[string][]byte, enforcer.MaxCalibrationKeys)
	for i := range enforcer.MaxCalibrationKeys {
		fill[fmt.Sprintf("k%05d", i)] = count(1)
	}
	if all, err := l.MergeCalibration(ctx, fill, addCounts); err != nil || len(all) != enforcer.MaxCalibrationKeys {
		t.Fatalf("filling to the bound: %d keys, %v", len(all), err)
	}
	all, err := l.MergeCalibration(ctx, map[string][]byte{"k00000": count(2), "one-too-many": count(1)}, addCounts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all["one-too-many"]; ok || len(all) != enforcer.MaxCalibrationKeys {
		t.Errorf("a key past the bound was stored (%d keys)", len(all))
	}
	if got := binary.BigEndian.Uint64(all["k00000"]); got != 3 {
		t.Errorf("existing key beside a dropped one: %d; want 3 (still merged)", got)
	}
	huge := func(old, delta []byte) ([]byte, error) { return make([]byte, enforcer.MaxCalibrationValueBytes+1), nil }
	failing := func(old, delta []byte) ([]byte, error) { return nil, errors.New("corrupt sketch") }
	for name, m := range map[string]func(old, delta []byte) ([]byte, error){"oversized": huge, "failing": failing} {
		_, err := l.MergeCalibration(ctx, map[string][]byte{"k00001": count(1), "k00002": count(1)}, m)
		if err == nil || errors.Is(err, enforcer.ErrLedgerUnavailable) {
			t.Errorf("%s merge: %v; want an error that is not unavailability", name, err)
		}
	}
	for _, bad := range []map[string][]byte{{"": count(1)}, {"k": make([]byte, enforcer.MaxCalibrationValueBytes+1)}} {
		if _, err := l.MergeCalibration(ctx, bad, addCounts); !errors.Is(err, enforcer.ErrInvalidParams) {
			t.Errorf("merge %d-byte key: %v; want ErrInvalidParams", len(bad), err)
		}
	}
	all, _ = l.MergeCalibration(ctx, nil, nil)
	if a, b := binary.BigEndian.Uint64(all["k00001"]), binary.BigEndian.Uint64(all["k00002"]); a != 1 || b != 1 {
		t.Errorf("after refused merges: %d, %d; want both unchanged at 1", a, b)
	}
}

// Calibration survives a restart: a new Ledger on the database reads it.
func TestCalibrationSurvivesRestart(t *testing.T) {
	dsn := testDSN(t)
	schema := freshSchema(t, dsn)
	ctx := context.Background()
	first := openSchema(t, dsn, schema)
	if _, err := first.MergeCalibration(ctx, map[string][]byte{"k": count(7)}, addCounts); err != nil {
		t.Fatal(err)
	}
	first.Close()
	all, err := openSchema(t, dsn, schema).MergeCalibration(ctx, nil, nil)
	if err != nil || binary.BigEndian.Uint64(all["k"]) != 7 {
		t.Errorf("after a restart: %v %v; want k = 7", all, err)
	}
}

// An unreachable database fails MergeCalibration as unavailable (the
// caller keeps its deltas), through FailOpen too, which does not even try
// while down.
func TestCalibrationUnreachable(t *testing.T) {
	l, p := viaProxy(t, enforcer.LedgerOptions{}, postgres.WithOpTimeout(2*time.Second))
	f, err := postgres.NewFailOpen(l, postgres.FailOpenOptions{CallMax: 10, TotalMax: 10, SyncEvery: time.Hour,
		JournalPath: filepath.Join(t.TempDir(), "journal")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	p.setDown(true)
	for _, c := range []struct {
		name string
		s    enforcer.CalibrationStore
	}{{"ledger", l}, {"fail-open, first attempt", f}, {"fail-open, known down", f}} {
		name, s := c.name, c.s
		if _, err := s.MergeCalibration(ctx, map[string][]byte{"k": count(1)}, addCounts); !errors.Is(err, enforcer.ErrLedgerUnavailable) {
			t.Errorf("%s: merge while unreachable: %v; want ErrLedgerUnavailable", name, err)
		}
	}
}
