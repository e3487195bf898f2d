package enforcer

import (
	"errors"
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

// ceilRatio is ceil(a*b/den) in exact arithmetic.
func ceilRatio(a, b, den int64) *big.Int {
	p := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
	q, r := new(big.Int).QuoRem(p, big.NewInt(den), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// operands draws a, b, den either anywhere or with a*b/den just below
// 2^64, where a rounded-up quotient used to wrap to 0.
func operands(t *rapid.T, den int64) (a, b int64) {
	a = rapid.Int64Range(0, math.MaxInt64).Draw(t, "a")
	if a == 0 || !rapid.Bool().Draw(t, "nearWrap") {
		return a, rapid.Int64Range(0, math.MaxInt64).Draw(t, "b")
	}
	// b = floor((2^64*den - 1) / a), capped to an int64.
	top := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(den), 64), big.NewInt(1))
	q := top.Quo(top, big.NewInt(a))
	if !q.IsInt64() {
		return a, math.MaxInt64
	}
	// Never below 0: a near MaxInt64 makes q as small as 2.
	return a, max(q.Int64()-rapid.Int64Range(0, 3).Draw(t, "minus"), 0)
}

func checkAgainstBig(t *rapid.T, what string, a, b, den int64, got Nanos, err error) {
	want := ceilRatio(a, b, den)
	if !want.IsInt64() {
		if !errors.Is(err, ErrInvalidAmount) {
			t.Fatalf("%s(%d, %d, %d) = %d, %v; exact %s overflows int64, want ErrInvalidAmount", what, a, b, den, got, err, want)
		}
		return
	}
	if err != nil || int64(got) != want.Int64() {
		t.Fatalf("%s(%d, %d, %d) = %d, %v; want %s", what, a, b, den, got, err, want)
	}
}

func TestMulRatioCeilMatchesExactArithmetic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		den := rapid.Int64Range(1, math.MaxInt64).Draw(t, "den")
		if rapid.Bool().Draw(t, "smallDen") {
			den = rapid.Int64Range(1, 1_000_000).Draw(t, "den")
		}
		a, b := operands(t, den)
		got, err := MulRatioCeil(Nanos(a), b, den)
		checkAgainstBig(t, "MulRatioCeil", a, b, den, got, err)
	})
}

func TestTokenCostMatchesExactArithmetic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tokens, price := operands(t, 1_000_000)
		got, err := PerMTok(price).Cost(tokens)
		checkAgainstBig(t, "Cost", tokens, price, 1_000_000, got, err)
	})
}

func TestRoundedUpQuotientPast2To64IsAnErrorNotZero(t *testing.T) {
	// 31 x 1190112520884487201 = 2^65 - 1, and (2^65 - 1) / 2 is 2^64 - 1
	// remainder 1: rounding up reaches 2^64, which used to wrap to $0.
	got, err := MulRatioCeil(31, 1190112520884487201, 2)
	if !errors.Is(err, ErrInvalidAmount) {
		t.Errorf("ceil(31 x 1190112520884487201 / 2) = %d, %v; want an overflow error, not a wrapped amount", got, err)
	}
}
