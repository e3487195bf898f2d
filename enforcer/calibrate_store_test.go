package enforcer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

// fakeCalibStore is a CalibrationStore in a map; fail makes it refuse.
type fakeCalibStore struct {
	mu     sync.Mutex
	values map[string][]byte
	fail   bool
}

func (s *fakeCalibStore) MergeCalibration(_ context.Context, deltas map[string][]byte, merge func(old, delta []byte) ([]byte, error)) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return nil, fmt.Errorf("fake store down: %w", ErrLedgerUnavailable)
	}
	if s.values == nil {
		s.values = map[string][]byte{}
	}
	for k, d := range deltas {
		v, err := merge(s.values[k], d)
		if err != nil {
			return nil, err
		}
		s.values[k] = v
	}
	out := make(map[string][]byte, len(s.values))
	for k, v := range s.values {
		out[k] = append([]byte(nil), v...)
	}
	return out, nil
}

func samplesOf(t *testing.T, c *calibEnv, account string) int64 {
	t.Helper()
	return c.estimate(account, llmParams("gpt-4o", 40_000)).Explain.Samples
}

// Two hosts on one store converge after a sync each, and a restarted host
// starts from what was stored.
func TestCalibrationSyncSharesAndSurvivesRestart(t *testing.T) {
	store := &fakeCalibStore{}
	ctx := context.Background()
	a := newCalibEnv(t, Config{CalibrationStore: store}, "org/s")
	b := newCalibEnv(t, Config{CalibrationStore: store}, "org/s")
	for range 5 {
		a.teach("org/s", llmParams("gpt-4o", 40_000), MustParseUSD("0.03"), nil)
	}
	for range 3 {
		b.teach("org/s", llmParams("gpt-4o", 40_000), MustParseUSD("0.03"), nil)
	}
	if n := samplesOf(t, b, "org/s"); n != 3 {
		t.Fatalf("b before any sync: n=%d; want its own 3", n)
	}
	for _, h := range []*calibEnv{a, b, a} {
		if err := h.e.SyncCalibration(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if na, nb := samplesOf(t, a, "org/s"), samplesOf(t, b, "org/s"); na != 8 || nb != 8 {
		t.Errorf("after syncs: a n=%d, b n=%d; want both 8", na, nb)
	}
	restarted := newCalibEnv(t, Config{CalibrationStore: store}, "org/s")
	if err := restarted.e.SyncCalibration(ctx); err != nil {
		t.Fatal(err)
	}
	if n := samplesOf(t, restarted, "org/s"); n != 8 {
		t.Errorf("restarted host: n=%d; want the stored 8", n)
	}
}

// A failed sync loses nothing: its deltas go out with the next one.
func TestCalibrationSyncFailureKeepsDeltas(t *testing.T) {
	store := &fakeCalibStore{fail: true}
	ctx := context.Background()
	a := newCalibEnv(t, Config{CalibrationStore: store}, "org/s")
	a.teach("org/s", llmParams("gpt-4o", 40_000), MustParseUSD("0.03"), nil)
	if err := a.e.SyncCalibration(ctx); !errors.Is(err, ErrLedgerUnavailable) {
		t.Fatalf("sync on a failing store: %v; want ErrLedgerUnavailable", err)
	}
	a.teach("org/s", llmParams("gpt-4o", 40_000), MustParseUSD("0.03"), nil)
	store.fail = false
	if err := a.e.SyncCalibration(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := newCalibEnv(t, Config{CalibrationStore: store}, "org/s")
	if err := fresh.e.SyncCalibration(ctx); err != nil {
		t.Fatal(err)
	}
	if n := samplesOf(t, fresh, "org/s"); n != 2 {
		t.Errorf("stored samples after a failed then a good sync: %d; want 2", n)
	}
}

func TestCalibrationSyncWithoutStoreDoesNothing(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	if err := c.e.SyncCalibration(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Concurrent estimates, commits and syncs (run under -race).
func TestCalibrationHammer(t *testing.T) {
	store := &fakeCalibStore{}
	c := newCalibEnv(t, Config{CalibrationStore: store}, "org/a", "org/b", "org/c", "org/d")
	var wg sync.WaitGroup
	for w, acct := range []string{"org/a", "org/b", "org/c", "org/d"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				c.teach(acct, llmParams("gpt-4o", 1000+i*10), MustParseUSD("0.01"), &TokenUsage{Model: "gpt-4o", InputTokens: 300, OutputTokens: int64(w)})
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			if err := c.e.SyncCalibration(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if err := c.e.SyncCalibration(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := samplesOf(t, c, "org/a"); n != 400 {
		t.Errorf("samples after 400 commits and concurrent syncs: %d; want 400 (none lost or doubled)", n)
	}
}

func TestCalibrationKeysAreBounded(t *testing.T) {
	k := newCalibrator(DefaultCalibrationConfig(), SystemClock{}, nil)
	one := &calibStats{}
	one.add(classCached, 1)
	for i := range MaxCalibrationKeys + 10 {
		k.fold(fmt.Sprintf("key-%d", i), one)
	}
	if len(k.keys) != MaxCalibrationKeys {
		t.Errorf("keys = %d; want the bound %d", len(k.keys), MaxCalibrationKeys)
	}
	if len(calibrationKey(strings.Repeat("r", 400), "LLM", "m")) > MaxCalibrationKeyLen {
		t.Errorf("a long account makes a key past MaxCalibrationKeyLen")
	}
}

func TestCalibrationSessionsAreBounded(t *testing.T) {
	m := newFIFOMap[int](3)
	for i := range 5 {
		m.put(fmt.Sprint(i), i)
	}
	if _, ok := m.get("1"); ok || len(m.items) != 3 {
		t.Errorf("after 5 puts into 3: %v; want the oldest two forgotten", m.items)
	}
	if v, ok := m.get("4"); !ok || v != 4 {
		t.Errorf("newest entry lost")
	}
}

func genStats(t *rapid.T, label string) *calibStats {
	s := &calibStats{}
	for _, r := range rapid.SliceOfN(rapid.Float64Range(1e-4, 1e5), 0, 300).Draw(t, label) {
		s.add(rapid.IntRange(0, calibClasses-1).Draw(t, label+"class"), r)
	}
	s.holds[1], s.misses[0] = rapid.Uint64Range(0, 1000).Draw(t, label+"holds"), rapid.Uint64Range(0, 1000).Draw(t, label+"misses")
	s.outSum, s.outN = rapid.Uint64Range(0, 1e9).Draw(t, label+"out"), rapid.Uint64Range(0, 1000).Draw(t, label+"outN")
	s.minCached = rapid.Int64Range(0, 1e6).Draw(t, label+"min")
	return s
}

// The quantile covers: at least q of the samples are at or below it
// (ratios inside the sketch's range), and it never decreases with q.
func TestSketchQuantileCovers(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rs := rapid.SliceOfN(rapid.Float64Range(0.004, 4000), 1, 500).Draw(t, "ratios")
		q := rapid.Float64Range(0.01, 0.99).Draw(t, "q")
		s := &calibStats{}
		for _, r := range rs {
			s.add(classCached, r)
		}
		v := s.quantile(classCached, q, 2, 0)
		below := 0
		for _, r := range rs {
			if r <= v {
				below++
			}
		}
		if float64(below) < q*float64(len(rs)) {
			t.Fatalf("q=%v: %d of %d at or below %v", q, below, len(rs), v)
		}
		sorted := append([]float64(nil), rs...)
		sort.Float64s(sorted)
		exact := sorted[int(math.Ceil(q*float64(len(rs))))-1]
		if v > exact*math.Exp2(1.0/sketchBinsPerOctave)*1.000001 {
			t.Fatalf("q=%v: sketch %v more than one bin above the exact %v", q, v, exact)
		}
		if s.quantile(classCached, min(q+0.01, 0.999), 2, 0) < v {
			t.Fatalf("quantile decreased with q")
		}
	})
}

// Merging is order-free (below the cap) and the encoding round-trips, so
// hosts merging in any order agree.
func TestSketchMergeAndEncoding(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genStats(t, "a"), genStats(t, "b")
		ab, ba := *a, *b
		ab.merge(b, 1<<24)
		ba.merge(a, 1<<24)
		if ab != ba {
			t.Fatalf("merge not commutative")
		}
		got, err := decodeCalibStats(ab.encode())
		if err != nil || *got != ab {
			t.Fatalf("round trip: %v", err)
		}
		if len(ab.encode()) > MaxCalibrationValueBytes {
			t.Fatalf("encoded %d bytes, above MaxCalibrationValueBytes", len(ab.encode()))
		}
	})
}

func TestSketchHalvesPastTheCap(t *testing.T) {
	s := &calibStats{}
	one := &calibStats{}
	one.add(classCached, 1.5)
	for range 100 {
		s.merge(one, 64)
	}
	if n := s.count(classCached); n > 64 || n < 32 {
		t.Errorf("count after 100 samples under a cap of 64: %d; want halved into (32, 64]", n)
	}
}

func TestDecodeCalibStatsRefusesGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {9}, {1}, {1, 0, 0, 0, 0, 0, 200, 1}} {
		if _, err := decodeCalibStats(b); !errors.Is(err, errCalibEncoding) {
			t.Errorf("%v: err %v; want errCalibEncoding", b, err)
		}
	}
}
