// Package usd handles money the way purser does: an int64 count of nano-USD
// (1e-9 USD), parsed from decimal text and never through float64. Text is
// read by abi.ParseScaled, the host's own parser, so guests and host agree
// to the nano:
//
//   - Parse reads "0.10", "$0.10", "12", "1.5e-3"; a fractional nano rounds up;
//     negatives, NaN, infinities and overflow are errors.
//   - ParsePerToken reads LiteLLM-style per-token prices ("2.5e-06") into
//     nano-USD per million tokens, which is exact for such prices.
//   - Format prints "$0.10": at least two decimals, more when needed to be exact.
//
// It uses strconv only (no fmt), so it stays small inside a wasm guest.
package usd

import (
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/purser-dev/purser/abi"
)

// Nano-USD per dollar.
const NanosPerUSD = 1_000_000_000

// Error says which text could not be read as money and why.
type Error struct {
	Input  string
	Reason string
}

func (e *Error) Error() string { return "invalid amount " + strconv.Quote(e.Input) + ": " + e.Reason }

// Parse reads a non-negative decimal USD amount into nano-USD.
func Parse(s string) (int64, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "$")
	v, reason := parseScaled(t, 9)
	if reason != "" {
		return 0, &Error{Input: s, Reason: reason}
	}
	return v, nil
}

// ParsePerToken reads a per-token USD price ("2.5e-06") as nano-USD per
// million tokens. A remainder below one nano-USD per million tokens rounds up.
func ParsePerToken(s string) (int64, error) {
	v, reason := parseScaled(strings.TrimSpace(s), 15)
	if reason != "" {
		return 0, &Error{Input: s, Reason: reason}
	}
	return v, nil
}

// ParsePerMillion reads a USD price per million tokens ("0.50") as nano-USD
// per million tokens.
func ParsePerMillion(s string) (int64, error) { return Parse(s) }

// parseScaled is abi.ParseScaled, the host's own parser, with the reason
// alone so callers build one error carrying the input.
func parseScaled(s string, scale int) (int64, string) {
	v, err := abi.ParseScaled(s, scale)
	if err != nil {
		return 0, err.Error()
	}
	return v, ""
}

// Format renders n as "$0.10": at least two decimals, more when needed to be
// exact ("$0.00875"). Negative amounts get a leading '-' ("-$0.05").
func Format(n int64) string { return string(Append(nil, n)) }

// Append appends Format(n) to dst without allocating beyond dst's growth.
func Append(dst []byte, n int64) []byte {
	if n < 0 {
		dst = append(dst, '-')
	}
	dst = append(dst, '$')
	return appendAbs(dst, n)
}

// AppendDecimal appends n as a decimal USD number without the dollar sign
// ("0.00875", "-0.05").
func AppendDecimal(dst []byte, n int64) []byte {
	if n < 0 {
		dst = append(dst, '-')
	}
	return appendAbs(dst, n)
}

func appendAbs(dst []byte, n int64) []byte {
	u := uint64(n)
	if n < 0 {
		u = uint64(-(n + 1)) + 1 // safe for MinInt64
	}
	whole, frac := u/NanosPerUSD, u%NanosPerUSD
	dst = strconv.AppendUint(dst, whole, 10)
	dst = append(dst, '.')
	var f [9]byte
	for i := 8; i >= 0; i-- {
		f[i] = byte('0' + frac%10)
		frac /= 10
	}
	end := 9
	for end > 2 && f[end-1] == '0' {
		end--
	}
	return append(dst, f[:end]...)
}

// Add returns a+b, or ok=false when the sum overflows int64.
func Add(a, b int64) (sum int64, ok bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// MulDivCeil returns ceil(a*b/den) exactly (128-bit intermediate) for
// non-negative a, b and positive den; ok=false on bad operands or when the
// result does not fit an int64 (never a wrapped value).
func MulDivCeil(a, b, den int64) (q int64, ok bool) {
	return SumProductsDivCeil(den, [2]int64{a, b})
}

// SumProductsDivCeil returns ceil((a1*b1 + a2*b2 + ...) / den) exactly,
// each term being a pair {a, b} of non-negative int64s, with a 128-bit
// intermediate; ok=false on a negative operand, den <= 0, or a result
// (or intermediate sum) past int64. It prices tokens x prices per million
// (den 1e6) without ever rounding through float64 or wrapping to 0.
func SumProductsDivCeil(den int64, terms ...[2]int64) (q int64, ok bool) {
	if den <= 0 {
		return 0, false
	}
	var hi, lo uint64
	for _, t := range terms {
		if t[0] < 0 || t[1] < 0 {
			return 0, false
		}
		h, l := bits.Mul64(uint64(t[0]), uint64(t[1]))
		var c uint64
		lo, c = bits.Add64(lo, l, 0)
		hi, c = bits.Add64(hi, h, c)
		if c != 0 {
			return 0, false
		}
	}
	if hi >= uint64(den) {
		return 0, false
	}
	uq, r := bits.Div64(hi, lo, uint64(den))
	// Test before rounding up: uq+1 would wrap to 0 when uq is MaxUint64.
	if uq > math.MaxInt64 || (r != 0 && uq == math.MaxInt64) {
		return 0, false
	}
	if r != 0 {
		uq++
	}
	return int64(uq), true
}

// TokenCost is the exact price of tokens at perMTok nano-USD per million
// tokens, a fractional nano rounded up; ok=false on negative input or overflow.
func TokenCost(tokens, perMTok int64) (int64, bool) { return MulDivCeil(tokens, perMTok, 1_000_000) }
