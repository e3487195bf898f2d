package usd

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// bigSumProductsDivCeil is the reference: exact rational arithmetic.
func bigSumProductsDivCeil(den int64, terms ...[2]int64) (int64, bool) {
	if den <= 0 {
		return 0, false
	}
	sum := new(big.Int)
	for _, t := range terms {
		if t[0] < 0 || t[1] < 0 {
			return 0, false
		}
		sum.Add(sum, new(big.Int).Mul(big.NewInt(t[0]), big.NewInt(t[1])))
	}
	d := big.NewInt(den)
	q, r := new(big.Int).QuoRem(sum, d, new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

// Just past 2^64 the rounding-up increment used to wrap the quotient to 0,
// which was returned as a valid $0.
func TestMulDivCeilNeverWrapsToZero(t *testing.T) {
	for _, tc := range []struct{ a, b, den int64 }{
		{311, 177_942_868_878_227_186, 3}, // a*b = 3*(2^64-1) + 1
		{math.MaxInt64, math.MaxInt64, 4_611_686_018_427_387_903},
		{math.MaxInt64, 2, 1},
	} {
		if q, ok := MulDivCeil(tc.a, tc.b, tc.den); ok {
			t.Errorf("MulDivCeil(%d, %d, %d) = %d, ok; want overflow", tc.a, tc.b, tc.den, q)
		}
	}
	// 65,535e6 x 281,479,271,743,489 = 1e6 x (2^64-1); +1 puts the ceiling at 2^64.
	if q, ok := SumProductsDivCeil(1_000_000, [2]int64{65_535_000_000, 281_479_271_743_489}, [2]int64{1, 1}); ok {
		t.Errorf("SumProductsDivCeil just past 2^64 = %d, ok; want overflow", q)
	}
}

// randOperand favours the edges where 128-bit arithmetic goes wrong.
func randOperand(r *rand.Rand) int64 {
	switch r.IntN(6) {
	case 0:
		return r.Int64N(1000)
	case 1:
		return math.MaxInt64 - r.Int64N(1000)
	case 2:
		return int64(1)<<r.IntN(63) + r.Int64N(3) - 1
	case 3:
		return r.Int64N(1 << 32)
	case 4:
		return -r.Int64N(3)
	}
	return r.Int64()
}

func TestSumProductsDivCeilMatchesBig(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 7))
	for i := 0; i < 200_000; i++ {
		den := randOperand(r)
		if r.IntN(3) == 0 {
			den = []int64{1, 2, 3, 1_000_000, 1_000_000_000}[r.IntN(5)]
		}
		terms := make([][2]int64, 1+r.IntN(3))
		for j := range terms {
			terms[j] = [2]int64{randOperand(r), randOperand(r)}
		}
		if r.IntN(2) == 0 {
			den, terms = edgeCase(r)
		}
		got, gotOK := SumProductsDivCeil(den, terms...)
		want, wantOK := bigSumProductsDivCeil(den, terms...)
		if got != want || gotOK != wantOK {
			t.Fatalf("SumProductsDivCeil(%d, %v) = %d %v; math/big says %d %v", den, terms, got, gotOK, want, wantOK)
		}
		if len(terms) == 1 {
			if q, ok := MulDivCeil(terms[0][0], terms[0][1], den); q != want || ok != wantOK {
				t.Fatalf("MulDivCeil(%d, %d, %d) = %d %v; math/big says %d %v", terms[0][0], terms[0][1], den, q, ok, want, wantOK)
			}
		}
	}
}

// edgeCase builds terms whose exact quotient sits at the int64 and uint64
// edges (2^63-1 .. 2^63, 2^64-2 .. 2^64), with and without a remainder.
func edgeCase(r *rand.Rand) (int64, [][2]int64) {
	q := new(big.Int).SetUint64(uint64(math.MaxInt64) - 1 + uint64(r.IntN(3)))
	if r.IntN(2) == 0 {
		q.SetUint64(math.MaxUint64 - uint64(r.IntN(2)))
		q.Add(q, big.NewInt(int64(r.IntN(2))))
	}
	d := 1 + r.Int64N(1_000_000)
	s := new(big.Int).Mul(q, big.NewInt(d))
	s.Add(s, big.NewInt(r.Int64N(d))) // remainder in [0, d)
	m := big.NewInt(math.MaxInt64)
	a, c := new(big.Int).QuoRem(s, m, new(big.Int))
	return d, [][2]int64{{a.Int64(), math.MaxInt64}, {c.Int64(), 1}}
}
