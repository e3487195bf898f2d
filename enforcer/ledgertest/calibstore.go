package ledgertest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

// runCalibrationStore checks enforcer.CalibrationStore on ledgers that
// implement it (the suite skips it for the others).
func runCalibrationStore(t *testing.T, newLedger NewLedger) {
	probe := newLedger(t, enforcer.LedgerOptions{Clock: NewFakeClock(Epoch())})
	if _, ok := probe.(enforcer.CalibrationStore); !ok {
		t.Skipf("%T does not implement enforcer.CalibrationStore", probe)
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, c *calibEnv)
	}{
		{"MergeAndRead", testCalibMerge},
		{"ConcurrentMergesLoseNothing", testCalibConcurrent},
		{"KeyBound", testCalibKeyBound},
		{"KeyLength", testCalibKeyLength},
		{"ValueBound", testCalibValueBound},
		{"MergeError", testCalibMergeError},
		{"NilMergeRefused", testCalibNilMerge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLedger(t, enforcer.LedgerOptions{Clock: NewFakeClock(Epoch())})
			c.fn(t, &calibEnv{t: t, s: l.(enforcer.CalibrationStore)})
		})
	}
}

type calibEnv struct {
	t *testing.T
	s enforcer.CalibrationStore
}

// sumMerge treats values as 8-byte big-endian counters and adds.
func sumMerge(old, delta []byte) ([]byte, error) {
	var n uint64
	if old != nil {
		if len(old) != 8 {
			return nil, fmt.Errorf("stored value of %d bytes is not a counter", len(old))
		}
		n = binary.BigEndian.Uint64(old)
	}
	if len(delta) != 8 {
		return nil, fmt.Errorf("delta of %d bytes is not a counter", len(delta))
	}
	return binary.BigEndian.AppendUint64(nil, n+binary.BigEndian.Uint64(delta)), nil
}

func counter(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func (c *calibEnv) merge(deltas map[string][]byte) map[string][]byte {
	c.t.Helper()
	out, err := c.s.MergeCalibration(c.t.Context(), deltas, sumMerge)
	if err != nil {
		c.t.Fatalf("merge %d keys: %v", len(deltas), err)
	}
	return out
}

// wantCount asserts a key's counter in a merge's answer (0: absent).
func (c *calibEnv) wantCount(got map[string][]byte, key string, want uint64) {
	c.t.Helper()
	v, ok := got[key]
	switch {
	case want == 0 && ok:
		c.t.Errorf("key %q stored (%x), want absent", key, v)
	case want != 0 && (len(v) != 8 || binary.BigEndian.Uint64(v) != want):
		c.t.Errorf("key %q = %x, want counter %d", key, v, want)
	}
}

func testCalibMerge(t *testing.T, c *calibEnv) {
	if got := c.merge(nil); len(got) != 0 {
		t.Errorf("empty store reads %v", got)
	}
	got := c.merge(map[string][]byte{"root|LLM|m1": counter(3), "root|Bash|": counter(1)})
	c.wantCount(got, "root|LLM|m1", 3)
	c.wantCount(got, "root|Bash|", 1)
	got = c.merge(map[string][]byte{"root|LLM|m1": counter(4)})
	c.wantCount(got, "root|LLM|m1", 7)
	c.wantCount(got, "root|Bash|", 1) // every stored key comes back
	got["root|LLM|m1"][7] = 0xff      // the answer is the caller's copy
	c.wantCount(c.merge(map[string][]byte{}), "root|LLM|m1", 7)
}

// testCalibConcurrent: merges racing on shared keys (as hosts sharing a
// store do) add up exactly.
func testCalibConcurrent(t *testing.T, c *calibEnv) {
	const workers, rounds = 16, 10
	parallel(workers, func(g int) {
		for range rounds {
			d := map[string][]byte{"shared": counter(1), fmt.Sprintf("own-%d", g): counter(2)}
			if _, err := c.s.MergeCalibration(t.Context(), d, sumMerge); err != nil {
				t.Errorf("worker %d: %v", g, err)
			}
		}
	})
	got := c.merge(nil)
	c.wantCount(got, "shared", workers*rounds)
	for g := range workers {
		c.wantCount(got, fmt.Sprintf("own-%d", g), 2*rounds)
	}
}

// testCalibKeyBound: past MaxCalibrationKeys a new key's delta is
// dropped while stored keys still merge.
func testCalibKeyBound(t *testing.T, c *calibEnv) {
	full := make(map[string][]byte, enforcer.MaxCalibrationKeys)
	for i := range enforcer.MaxCalibrationKeys {
		full[fmt.Sprintf("k%05d", i)] = counter(1)
	}
	if got := c.merge(full); len(got) != enforcer.MaxCalibrationKeys {
		t.Fatalf("stored %d keys, want %d", len(got), enforcer.MaxCalibrationKeys)
	}
	got := c.merge(map[string][]byte{"k00042": counter(1), "new": counter(5)})
	if len(got) != enforcer.MaxCalibrationKeys {
		t.Errorf("stored %d keys past the bound", len(got))
	}
	c.wantCount(got, "k00042", 2)
	c.wantCount(got, "new", 0)
}

func testCalibKeyLength(t *testing.T, c *calibEnv) {
	long := strings.Repeat("k", enforcer.MaxCalibrationKeyLen)
	for _, k := range []string{"", long + "k"} {
		_, err := c.s.MergeCalibration(t.Context(), map[string][]byte{k: counter(1), "ok": counter(1)}, sumMerge)
		wantErr(t, err, enforcer.ErrInvalidParams)
	}
	got := c.merge(map[string][]byte{long: counter(1)})
	c.wantCount(got, "ok", 0) // a refused batch stored nothing
	c.wantCount(got, long, 1)
}

// testCalibValueBound: a delta or merged value above
// MaxCalibrationValueBytes is an error and the stored value stays.
func testCalibValueBound(t *testing.T, c *calibEnv) {
	c.merge(map[string][]byte{"k": counter(1)})
	grow := func(n int) func(old, delta []byte) ([]byte, error) {
		return func(old, delta []byte) ([]byte, error) { return make([]byte, n), nil }
	}
	_, err := c.s.MergeCalibration(t.Context(), map[string][]byte{"k": counter(1)}, grow(enforcer.MaxCalibrationValueBytes+1))
	wantErr(t, err, enforcer.ErrInvalidParams)
	_, err = c.s.MergeCalibration(t.Context(), map[string][]byte{"k": make([]byte, enforcer.MaxCalibrationValueBytes+1)}, sumMerge)
	wantErr(t, err, enforcer.ErrInvalidParams)
	c.wantCount(c.merge(nil), "k", 1)
	got, err := c.s.MergeCalibration(t.Context(), map[string][]byte{"big": counter(1)}, grow(enforcer.MaxCalibrationValueBytes))
	if err != nil || len(got["big"]) != enforcer.MaxCalibrationValueBytes {
		t.Errorf("value of the maximum size: %d bytes, %v", len(got["big"]), err)
	}
}

// testCalibMergeError: the merge's own error comes back wrapped and the
// stored value stays, even when the merge wrote into old first.
func testCalibMergeError(t *testing.T, c *calibEnv) {
	c.merge(map[string][]byte{"k": counter(1)})
	boom := errors.New("boom")
	_, err := c.s.MergeCalibration(t.Context(), map[string][]byte{"k": counter(1)}, func(old, delta []byte) ([]byte, error) {
		clear(old)
		return nil, boom
	})
	wantErr(t, err, boom)
	c.wantCount(c.merge(nil), "k", 1)
}

// testCalibNilMerge: a nil merge func is refused (ErrInvalidParams) by
// every store alike and stores nothing; with no deltas it only reads.
func testCalibNilMerge(t *testing.T, c *calibEnv) {
	c.merge(map[string][]byte{"j": counter(1)})
	_, err := c.s.MergeCalibration(t.Context(), map[string][]byte{"k": counter(1)}, nil)
	wantErr(t, err, enforcer.ErrInvalidParams)
	got, err := c.s.MergeCalibration(t.Context(), nil, nil)
	if err != nil {
		t.Fatalf("a read (no deltas, nil merge): %v", err)
	}
	c.wantCount(got, "k", 0)
	c.wantCount(got, "j", 1)
}
