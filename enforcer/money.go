package enforcer

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/purser-dev/purser/abi"
)

// Nanos is an amount of money in nano-USD (1e-9 USD). Every amount in purser
// is a Nanos: floats never touch money, so sums are exact and reproducible.
type Nanos int64

// Common amounts.
const (
	NanosPerUSD  Nanos = 1_000_000_000
	MaxNanos     Nanos = math.MaxInt64
	nanoDecimals       = 9
)

// ErrInvalidAmount is the sentinel behind every *AmountError.
var ErrInvalidAmount = errors.New("invalid amount")

// AmountError says which text could not be read as money and why.
type AmountError struct {
	Input  string
	Reason string
}

func (e *AmountError) Error() string {
	return fmt.Sprintf("invalid amount %q: %s", e.Input, e.Reason)
}

func (e *AmountError) Unwrap() error { return ErrInvalidAmount }

// USD returns whole and fractional dollars as Nanos; it is meant for
// constants and tests (USD(0, 5_000_000) is $0.005).
func USD(dollars int64, nanos int64) Nanos { return Nanos(dollars*int64(NanosPerUSD) + nanos) }

// usdForm is the one form ParseUSD accepts, shown in its errors.
const usdForm = `want digits with at most 9 decimals, like "0.05"`

// ParseUSD reads a non-negative USD amount written the one way people and
// clients write money to purser: digits, optionally a point and 1 to 9
// more digits ("0.05", "12", "0.000000001"). Anything else is an
// *AmountError showing that form: a sign, "$", spaces, an exponent ("1e3"
// would be $1,000), or more than 9 decimals, which cannot be held in
// nano-USD without rounding the amount someone typed. Costs a provider
// reports as float text are read by ParseBilledUSD instead.
func ParseUSD(s string) (Nanos, error) {
	whole, frac, dot := strings.Cut(s, ".")
	switch {
	case strings.HasPrefix(s, "-") && plainDigits(strings.TrimPrefix(whole, "-")) && (!dot || plainDigits(frac)):
		return 0, &AmountError{Input: s, Reason: "negative amounts are not allowed"}
	case !plainDigits(whole) || (dot && !plainDigits(frac)):
		return 0, &AmountError{Input: s, Reason: "not a decimal USD amount (" + usdForm + ")"}
	case len(frac) > nanoDecimals:
		return 0, &AmountError{Input: s, Reason: fmt.Sprintf("%d decimals is finer than a nano-dollar (%s)", len(frac), usdForm)}
	}
	v, err := abi.ParseScaled(s, nanoDecimals)
	if err != nil {
		return 0, &AmountError{Input: s, Reason: err.Error()}
	}
	return Nanos(v), nil
}

// plainDigits reports whether s is one or more ASCII digits.
func plainDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ParseBilledUSD reads a cost as a provider or a trace reports it: a
// float's text such as "0.00123456789012" or "1.2e-05". Money spent is
// never under-counted, so a fractional nano rounds up. NaN, infinities,
// negatives and overflow are errors. Amounts people configure or send
// (limits, prices, actual costs over the API) use ParseUSD.
func ParseBilledUSD(s string) (Nanos, error) {
	v, err := abi.ParseScaled(s, nanoDecimals)
	if err != nil {
		return 0, &AmountError{Input: s, Reason: err.Error()}
	}
	return Nanos(v), nil
}

// MustParseUSD is ParseUSD for constants known to be valid; it panics on a
// programmer error.
func MustParseUSD(s string) Nanos {
	n, err := ParseUSD(s)
	if err != nil {
		panic(err)
	}
	return n
}

// String formats n as "$0.10": at least two decimals, more when needed to
// be exact.
func (n Nanos) String() string { return "$" + n.Decimal() }

// Decimal formats n without the dollar sign ("0.00875"), exact, with at
// least two decimals.
func (n Nanos) Decimal() string {
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-(n + 1)) + 1 // safe for MinInt64
	}
	whole, frac := u/uint64(NanosPerUSD), u%uint64(NanosPerUSD)
	fs := fmt.Sprintf("%09d", frac)
	fs = strings.TrimRight(fs, "0")
	for len(fs) < 2 {
		fs += "0"
	}
	s := strconv.FormatUint(whole, 10) + "." + fs
	if neg {
		return "-" + s
	}
	return s
}

// Add returns a+b, or an error if the sum overflows.
func (n Nanos) Add(m Nanos) (Nanos, error) {
	s := n + m
	if (m > 0 && s < n) || (m < 0 && s > n) {
		return 0, fmt.Errorf("%w: %s + %s overflows", ErrInvalidAmount, n, m)
	}
	return s, nil
}

// MulRatioCeil returns ceil(n * num / den) exactly (128-bit intermediate),
// for non-negative operands; used for percentages and buffers.
func MulRatioCeil(n Nanos, num, den int64) (Nanos, error) {
	if n < 0 || num < 0 || den <= 0 {
		return 0, fmt.Errorf("%w: MulRatioCeil(%d, %d, %d) needs non-negative operands", ErrInvalidAmount, n, num, den)
	}
	return mulDivCeil(uint64(n), uint64(num), uint64(den))
}

func mulDivCeil(a, b, den uint64) (Nanos, error) {
	hi, lo := bits.Mul64(a, b)
	if hi >= den {
		return 0, fmt.Errorf("%w: %d x %d / %d overflows", ErrInvalidAmount, a, b, den)
	}
	q, r := bits.Div64(hi, lo, den)
	// Check before rounding up: q may be 2^64-1, and q+1 would wrap to 0.
	if q > math.MaxInt64 || (q == math.MaxInt64 && r != 0) {
		return 0, fmt.Errorf("%w: %d x %d / %d overflows", ErrInvalidAmount, a, b, den)
	}
	if r != 0 {
		q++
	}
	return Nanos(q), nil
}

// PerMTok is a per-token price kept as nano-USD per million tokens, which is
// exact for LiteLLM's "2.5e-06"-style per-token USD prices.
type PerMTok int64

// ParsePerTokenUSD reads a per-token USD price ("2.5e-06") as PerMTok.
// A remainder below one nano-USD per million tokens rounds up.
func ParsePerTokenUSD(s string) (PerMTok, error) {
	v, err := abi.ParseScaled(strings.TrimSpace(s), nanoDecimals+6)
	if err != nil {
		return 0, &AmountError{Input: s, Reason: err.Error()}
	}
	return PerMTok(v), nil
}

// ParsePerMTokUSD reads a USD price per million tokens ("0.50").
func ParsePerMTokUSD(s string) (PerMTok, error) {
	n, err := ParseUSD(s)
	return PerMTok(n), err
}

// Cost returns the exact price of tokens, rounding a fractional nano up.
func (p PerMTok) Cost(tokens int64) (Nanos, error) {
	if tokens < 0 || p < 0 {
		return 0, fmt.Errorf("%w: %d tokens at %d nano-USD/Mtok", ErrInvalidAmount, tokens, p)
	}
	return mulDivCeil(uint64(tokens), uint64(p), 1_000_000)
}

// USDPerMTok formats the price as decimal USD per million tokens.
func (p PerMTok) USDPerMTok() string { return Nanos(p).Decimal() }
