package enforcer

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseUSD(t *testing.T) {
	cases := []struct {
		in   string
		want Nanos
	}{
		{"0", 0}, {"0.00875", 8_750_000}, {"0.10", 100_000_000}, {"12", 12_000_000_000},
		{"0.000000001", 1}, {"007.5", 7_500_000_000},
		{"9223372036.854775807", math.MaxInt64}, {"0.000000000", 0},
	}
	for _, c := range cases {
		got, err := ParseUSD(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseUSD(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestParseUSDRejects(t *testing.T) {
	for _, in := range []string{"", "-1", "-0.01", "NaN", "nan", "Inf", "+Inf", "-inf", "1e400", "abc", "1.2.3",
		"9223372036.854775808", "1e10", "$", "0x10", "1,5", "."} {
		_, err := ParseUSD(in)
		var ae *AmountError
		if !errors.As(err, &ae) || !errors.Is(err, ErrInvalidAmount) || ae.Input != in {
			t.Errorf("ParseUSD(%q) error = %v; want *AmountError naming the input", in, err)
		}
	}
}

func TestParseUSDAcceptsOnlyPlainDecimals(t *testing.T) {
	for _, in := range []string{"$1", " 1", "1 ", "+1", "1e3", "1E2", "1.5e-3", ".5", "5.", "0.0000000001",
		"0.0000000015", "1.1234567891", "１", "1_000", "0x1p3", "-1e3"} {
		n, err := ParseUSD(in)
		if !errors.Is(err, ErrInvalidAmount) {
			t.Errorf("ParseUSD(%q) = %s, %v; want refused", in, n, err)
			continue
		}
		if !strings.Contains(err.Error(), `want digits with at most 9 decimals, like "0.05"`) && !strings.Contains(err.Error(), "negative") {
			t.Errorf("ParseUSD(%q): %v; want the error to show the accepted form", in, err)
		}
	}
	if _, err := ParseUSD("1e3"); err == nil || err.Error() != `invalid amount "1e3": not a decimal USD amount (want digits with at most 9 decimals, like "0.05")` {
		t.Errorf("ParseUSD(\"1e3\"): %v", err)
	}
}

func TestParseBilledUSDRoundsFloatTextUp(t *testing.T) {
	cases := map[string]Nanos{
		"1.5e-3": 1_500_000, "0.0000000001": 1, "0.0000000015": 2, "1E2": 100_000_000_000,
		"0.00123456789012": 1_234_568, "2.5e-06": 2_500, "0": 0, "+1": 1_000_000_000,
	}
	for in, want := range cases {
		if got, err := ParseBilledUSD(in); err != nil || got != want {
			t.Errorf("ParseBilledUSD(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1e-3", "NaN", "1e400", "", "$1"} {
		if _, err := ParseBilledUSD(in); !errors.Is(err, ErrInvalidAmount) {
			t.Errorf("ParseBilledUSD(%q): %v; want ErrInvalidAmount", in, err)
		}
	}
}

func TestNanosString(t *testing.T) {
	cases := map[Nanos]string{
		0: "$0.00", 100_000_000: "$0.10", 50_000_000: "$0.05", 8_750_000: "$0.00875",
		1: "$0.000000001", 12_000_000_000: "$12.00", 100_000: "$0.0001", -50_000_000: "$-0.05",
		math.MinInt64: "$-9223372036.854775808",
	}
	for n, want := range cases {
		if got := n.String(); got != want {
			t.Errorf("Nanos(%d).String() = %q; want %q", int64(n), got, want)
		}
	}
}

func TestPerTokenPrices(t *testing.T) {
	cases := map[string]PerMTok{"2.5e-06": 2_500_000_000, "1.875e-08": 18_750_000, "0": 0, "1e-05": 10_000_000_000,
		"3e-07": 300_000_000}
	for in, want := range cases {
		got, err := ParsePerTokenUSD(in)
		if err != nil || got != want {
			t.Errorf("ParsePerTokenUSD(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	p, _ := ParsePerTokenUSD("1.875e-08")
	if c, _ := p.Cost(3); c != 57 { // 56.25 nanos rounds up
		t.Errorf("3 tokens at 1.875e-08 = %d nanos; want 57", c)
	}
	if c, _ := p.Cost(1_000_000); c != 18_750_000 {
		t.Errorf("1M tokens at 1.875e-08 = %d; want 18750000", c)
	}
	if _, err := PerMTok(math.MaxInt64).Cost(math.MaxInt64); !errors.Is(err, ErrInvalidAmount) {
		t.Errorf("overflowing cost: err = %v; want ErrInvalidAmount", err)
	}
}

func TestAddAndRatio(t *testing.T) {
	if _, err := MaxNanos.Add(1); !errors.Is(err, ErrInvalidAmount) {
		t.Errorf("MaxNanos+1: err = %v; want overflow", err)
	}
	if s, err := Nanos(5).Add(-2); err != nil || s != 3 {
		t.Errorf("5 + -2 = %d, %v", s, err)
	}
	if got, _ := MulRatioCeil(MustParseUSD("0.01"), 12000, 10000); got != MustParseUSD("0.012") {
		t.Errorf("0.01 x 1.2 = %s", got)
	}
	if got, _ := MulRatioCeil(10, 1, 3); got != 4 {
		t.Errorf("ceil(10/3) = %d; want 4", got)
	}
	if _, err := MulRatioCeil(-1, 1, 1); err == nil {
		t.Error("negative ratio operand accepted")
	}
}

// FuzzParseUSD: never panics; accepted input formats back to a string that
// parses to the same amount; rejected input is an *AmountError.
func FuzzParseUSD(f *testing.F) {
	for _, s := range []string{"0.00875", "0.10", "$0.10", "1e-9", "2.5e-06", "NaN", "-1", "9223372036.854775807", "1e400", ".", "0.0000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseUSD(s)
		if err != nil {
			var ae *AmountError
			if !errors.As(err, &ae) {
				t.Fatalf("ParseUSD(%q): error %v is not *AmountError", s, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseUSD(%q) = %d, negative", s, n)
		}
		back, err := ParseUSD(n.Decimal())
		if err != nil || back != n {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, n, n.Decimal(), back, err)
		}
	})
}
