package abi

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestParseScaledIsExactCeiling: for any decimal with an exponent,
// ParseScaled is ceil(value * 10^scale), computed here with exact
// rationals, or an overflow error past int64.
func TestParseScaledIsExactCeiling(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		intPart := rapid.StringMatching(`[0-9]{0,21}`).Draw(t, "int")
		frac := rapid.StringMatching(`[0-9]{0,21}`).Draw(t, "frac")
		if intPart == "" && frac == "" {
			intPart = "0"
		}
		exp := rapid.IntRange(-30, 30).Draw(t, "exp")
		scale := rapid.SampledFrom([]int{0, 9, 15}).Draw(t, "scale")
		s := intPart + "." + frac + "e" + strconv.Itoa(exp)

		want := new(big.Rat).SetFrac(bigInt(intPart+frac), pow10(len(frac)))
		if e := exp + scale; e >= 0 {
			want.Mul(want, new(big.Rat).SetInt(pow10(e)))
		} else {
			want.Quo(want, new(big.Rat).SetInt(pow10(-e)))
		}
		ceil := new(big.Int).Quo(want.Num(), want.Denom())
		if new(big.Rat).SetInt(ceil).Cmp(want) < 0 {
			ceil.Add(ceil, big.NewInt(1))
		}
		got, err := ParseScaled(s, scale)
		if ceil.Cmp(big.NewInt(math.MaxInt64)) > 0 {
			if err == nil || !strings.Contains(err.Error(), "overflows") {
				t.Fatalf("%q scale %d: got %d, %v; want an overflow", s, scale, got, err)
			}
			return
		}
		if err != nil || got != ceil.Int64() {
			t.Fatalf("%q scale %d: got %d, %v; want %s", s, scale, got, err, ceil)
		}
	})
}

func TestParseScaledRefuses(t *testing.T) {
	for s, reason := range map[string]string{
		"": "empty", "-1": "negative", "NaN": "not a finite", "inf": "not a finite", "1e": "malformed exponent",
		"1e401": "malformed exponent", ".": "no digits", "1,5": "unexpected character ','", "1€": "unexpected character '€'",
		"9223372036.854775808": "overflows",
	} {
		if _, err := ParseScaled(s, 9); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: got %v, want %q", s, err, reason)
		}
	}
}

func bigInt(digits string) *big.Int {
	n, ok := new(big.Int).SetString("0"+digits, 10)
	if !ok {
		panic(digits)
	}
	return n
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }
