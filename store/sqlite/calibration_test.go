package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/store/sqlite"
)

// addMerge treats values as decimal counters: merging adds the delta.
func addMerge(old, delta []byte) ([]byte, error) {
	a, b := 0, 0
	var err error
	if old != nil {
		if a, err = strconv.Atoi(string(old)); err != nil {
			return nil, err
		}
	}
	if b, err = strconv.Atoi(string(delta)); err != nil {
		return nil, err
	}
	return []byte(strconv.Itoa(a + b)), nil
}

func counters(kv ...any) map[string][]byte {
	out := map[string][]byte{}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = []byte(fmt.Sprint(kv[i+1]))
	}
	return out
}

func wantCalibration(t *testing.T, got map[string][]byte, err error, want map[string][]byte) {
	t.Helper()
	if err != nil || !maps.EqualFunc(got, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("calibration %q, %v; want %q", got, err, want)
	}
}

// TestCalibrationMergesAndSurvivesReopen: a new key merges from nil, a
// known one from its stored value; every call returns all keys; nil
// deltas only read; the values are there after a reopen.
func TestCalibrationMergesAndSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := sqlite.Open(ctx, path, enforcer.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fresh := map[string]bool{}
	merge := func(old, delta []byte) ([]byte, error) {
		fresh[string(delta)] = old == nil
		return addMerge(old, delta)
	}
	got, err := l.MergeCalibration(ctx, counters("a", 1, "b", 2), merge)
	wantCalibration(t, got, err, counters("a", 1, "b", 2))
	got, err = l.MergeCalibration(ctx, counters("a", 3), merge)
	wantCalibration(t, got, err, counters("a", 4, "b", 2))
	if !fresh["1"] || !fresh["2"] || fresh["3"] {
		t.Errorf("old was nil for deltas %v; want only for the first of each key", fresh)
	}
	got, err = l.MergeCalibration(ctx, nil, nil)
	wantCalibration(t, got, err, counters("a", 4, "b", 2))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openPath(t, path, enforcer.LedgerOptions{})
	got, err = l.MergeCalibration(ctx, map[string][]byte{}, addMerge)
	wantCalibration(t, got, err, counters("a", 4, "b", 2))
}

// TestCalibrationRefusals: a failed merge or an oversized value stores
// nothing of that call; bad keys are refused before anything is written.
func TestCalibrationRefusals(t *testing.T) {
	ctx := context.Background()
	l := openTemp(t, enforcer.LedgerOptions{})
	if _, err := l.MergeCalibration(ctx, counters("a", 1), addMerge); err != nil {
		t.Fatal(err)
	}
	_, err := l.MergeCalibration(ctx, counters("a", 1, "b", "not a number"), addMerge)
	if err == nil || errors.Is(err, enforcer.ErrLedgerUnavailable) || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("failing merge: %v, want its error naming the key", err)
	}
	big := func(old, delta []byte) ([]byte, error) { return make([]byte, enforcer.MaxCalibrationValueBytes+1), nil }
	_, err = l.MergeCalibration(ctx, counters("a", 1), big)
	if !errors.Is(err, enforcer.ErrInvalidParams) || errors.Is(err, enforcer.ErrLedgerUnavailable) {
		t.Errorf("oversized value: %v", err)
	}
	for _, key := range []string{"", strings.Repeat("k", enforcer.MaxCalibrationKeyLen+1)} {
		if _, err := l.MergeCalibration(ctx, counters(key, 1), addMerge); !errors.Is(err, enforcer.ErrInvalidParams) {
			t.Errorf("key of %d bytes: %v", len(key), err)
		}
	}
	if _, err := l.MergeCalibration(ctx, counters("a", 1), nil); !errors.Is(err, enforcer.ErrInvalidParams) {
		t.Errorf("no merge function: %v", err)
	}
	got, err := l.MergeCalibration(ctx, nil, nil)
	wantCalibration(t, got, err, counters("a", 1))
	// The ledger still writes: a refusal is not a store failure.
	if err := l.Ready(ctx); err != nil {
		t.Errorf("ready after refusals: %v", err)
	}
}

// TestCalibrationConcurrentMerges: merges from many goroutines on two
// ledgers sharing one file (as two processes would) lose no delta.
func TestCalibrationConcurrentMerges(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	ls := []*sqlite.Ledger{openPath(t, path, enforcer.LedgerOptions{}), openPath(t, path, enforcer.LedgerOptions{})}
	const callers, rounds = 20, 10
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			for j := range rounds {
				if _, err := ls[(i+j)%2].MergeCalibration(ctx, counters("shared", 1, fmt.Sprint("own", i), 1), addMerge); err != nil {
					t.Errorf("merge: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got, err := ls[0].MergeCalibration(ctx, nil, nil)
	if err != nil || string(got["shared"]) != strconv.Itoa(callers*rounds) || string(got["own7"]) != strconv.Itoa(rounds) {
		t.Errorf("shared=%q own7=%q (%v); want %d and %d", got["shared"], got["own7"], err, callers*rounds, rounds)
	}
}
