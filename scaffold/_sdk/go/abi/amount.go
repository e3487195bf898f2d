package abi

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// ParseScaled reads a non-negative decimal with an optional exponent
// ("0.10", "12", "1.5e-3", "2.5e-06") as value*10^scale in an int64,
// rounding any remainder up (money spent is never under-counted, and a
// positive amount below one unit is one). Negatives, NaN, infinities and
// overflow are errors whose text is the reason alone: callers wrap it in
// their own error naming the input.
//
// It is the one decimal-money parser of Go purser: the host's amounts
// (enforcer, scale 9) and the Go guest SDK's (sdk/go/usd, scale 9 for USD,
// 15 for per-token prices) both read text through it, so guests and host
// agree to the nano.
func ParseScaled(s string, scale int) (int64, error) {
	mant, exp, err := splitExponent(s)
	if err != nil {
		return 0, err
	}
	intPart, fracPart, _ := strings.Cut(mant, ".")
	if intPart == "" && fracPart == "" {
		return 0, errors.New("no digits")
	}
	digits := intPart + fracPart
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, errors.New("unexpected character " + strconv.QuoteRune(c))
		}
	}
	// value = digits * 10^(exp-len(fracPart)); we want value * 10^scale.
	return scaleDigits(strings.TrimLeft(digits, "0"), exp-len(fracPart)+scale)
}

// splitExponent refuses what is not a non-negative finite number and
// splits the rest into mantissa and exponent.
func splitExponent(s string) (mant string, exp int, err error) {
	if s == "" {
		return "", 0, errors.New("empty")
	}
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "-"):
		return "", 0, errors.New("negative amounts are not allowed")
	case strings.Contains(lower, "nan"), strings.Contains(lower, "inf"):
		return "", 0, errors.New("not a finite number")
	}
	mant = lower
	if i := strings.IndexByte(lower, 'e'); i >= 0 {
		e, err := strconv.Atoi(lower[i+1:])
		if err != nil || e > 400 || e < -400 {
			return "", 0, errors.New("malformed exponent")
		}
		mant, exp = lower[:i], e
	}
	return strings.TrimPrefix(mant, "+"), exp, nil
}

// scaleDigits returns digits (no leading zeros) * 10^shift, rounding a
// remainder up.
func scaleDigits(digits string, shift int) (int64, error) {
	if digits == "" {
		return 0, nil
	}
	if shift >= 0 {
		if len(digits)+shift > 19 {
			return 0, errOverflow
		}
		return digitsToInt(digits + strings.Repeat("0", shift))
	}
	cut := len(digits) + shift
	if cut <= 0 {
		return 1, nil // a positive amount below one unit rounds up to one
	}
	v, err := digitsToInt(digits[:cut])
	if err != nil {
		return 0, err
	}
	if strings.Trim(digits[cut:], "0") != "" {
		if v == math.MaxInt64 {
			return 0, errOverflow
		}
		v++
	}
	return v, nil
}

var errOverflow = errors.New("overflows int64 nano-USD")

func digitsToInt(d string) (int64, error) {
	v, err := strconv.ParseUint(d, 10, 64)
	if err != nil || v > math.MaxInt64 {
		return 0, errOverflow
	}
	return int64(v), nil
}
