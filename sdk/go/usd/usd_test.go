package usd

import (
	"errors"
	"math"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0.10", 100_000_000},
		{"$0.10", 100_000_000},
		{" 12 ", 12_000_000_000},
		{"1.5e-3", 1_500_000},
		{"0.00875", 8_750_000},
		{"0.0001", 100_000},
		{"1e-10", 1}, // below one nano rounds up
		{"0", 0},
		{"0.0000000011", 2},
		{"9223372036.854775807", math.MaxInt64},
		{".5", 500_000_000},
		{"5.", 5_000_000_000},
		{"+1", 1_000_000_000},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{"", "-1", "NaN", "inf", "1e999", "abc", "1.2.3", "9223372037", "$", "1e", "0x10"} {
		_, err := Parse(in)
		var e *Error
		if !errors.As(err, &e) || e.Input != in {
			t.Errorf("Parse(%q) err = %v, want *Error naming the input", in, err)
		}
	}
}

func TestParsePerToken(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"2.5e-06", 2_500_000_000},  // $2.50 per 1M tokens
		{"5e-07", 500_000_000},      // $0.50 per 1M tokens
		{"1.875e-08", 18_750_000},   // $0.01875 per 1M tokens
		{"1e-05", 10_000_000_000},   // $10 per 1M
		{"0.000003", 3_000_000_000}, // plain decimal
		{"1e-16", 1},                // rounds up
	} {
		got, err := ParsePerToken(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParsePerToken(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "$0.00"},
		{100_000_000, "$0.10"},
		{150_000_000, "$0.15"},
		{8_750_000, "$0.00875"},
		{1, "$0.000000001"},
		{12_000_000_000, "$12.00"},
		{-50_000_000, "-$0.05"},
		{math.MinInt64, "-$9223372036.854775808"},
	} {
		if got := Format(tc.n); got != tc.want {
			t.Errorf("Format(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := string(AppendDecimal(nil, 8_750_000)); got != "0.00875" {
		t.Errorf("AppendDecimal = %q", got)
	}
}

func TestArithmetic(t *testing.T) {
	if c, ok := TokenCost(17_500, 500_000_000); !ok || c != 8_750_000 {
		t.Errorf("TokenCost(17500 @ $0.50/M) = %d %v", c, ok)
	}
	if c, ok := TokenCost(1, 1); !ok || c != 1 {
		t.Errorf("fractional nano must round up, got %d %v", c, ok)
	}
	if _, ok := TokenCost(-1, 1); ok {
		t.Error("negative tokens accepted")
	}
	if _, ok := MulDivCeil(math.MaxInt64, math.MaxInt64, 1); ok {
		t.Error("overflow accepted")
	}
	if _, ok := Add(math.MaxInt64, 1); ok {
		t.Error("Add overflow accepted")
	}
	if s, ok := Add(2, 3); !ok || s != 5 {
		t.Error("Add(2,3)")
	}
}

func FuzzParseFormat(f *testing.F) {
	for _, s := range []string{"0.10", "1e-3", "2.5e-06", "12.000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("Parse(%q) = %d < 0", s, n)
		}
		back, err := Parse(Format(n))
		if err != nil || back != n {
			t.Fatalf("Format/Parse round trip of %d: %d %v", n, back, err)
		}
	})
}
