package abi_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/bridge"
	"github.com/purser-dev/purser/enforcer"
)

// paramsExample is one http:/f64: line of ABI.md section 3a and its out: line.
type paramsExample struct {
	line      int
	in, out   string
	useNumber bool // http: numbers decode as json.Number, f64: as float64
}

var rawByte = regexp.MustCompile(`\\x[0-9a-f]{2}`)

// docParamsExamples reads the block after the params-examples marker.
func docParamsExamples(t *testing.T) []paramsExample {
	t.Helper()
	doc, err := os.ReadFile("ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(doc, []byte("<!-- params-examples:"))
	if !ok {
		t.Fatal("ABI.md: params-examples marker not found")
	}
	var out []paramsExample
	var cur *paramsExample
	sc := bufio.NewScanner(bytes.NewReader(after))
	fences := 0
	for n := 1; sc.Scan() && fences < 2; n++ {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "```"):
			fences++
		case strings.HasPrefix(l, "http:"), strings.HasPrefix(l, "f64:"):
			kind, in, _ := strings.Cut(l, ":")
			cur = &paramsExample{line: n, in: strings.TrimSpace(in), useNumber: kind == "http"}
		case strings.HasPrefix(l, "out:"):
			if cur == nil {
				t.Fatalf("ABI.md params examples, line %d after the marker: out: without an input", n)
			}
			cur.out = strings.TrimSpace(strings.TrimPrefix(l, "out:"))
			out = append(out, *cur)
			cur = nil
		}
	}
	return out
}

// guestParams is string 4 of the estimate request the host builds for
// params, read back from the encoded record as a guest would.
func guestParams(t *testing.T, params map[string]any) []byte {
	t.Helper()
	req, err := bridge.EstimateRequest(enforcer.Call{Tool: "T", Account: "a", Params: params})
	if err != nil {
		t.Fatal(err)
	}
	v, err := abi.ParseRequest(abi.AppendEstimateRequest(nil, &req))
	if err != nil {
		t.Fatal(err)
	}
	return v.Params()
}

func TestDocParamsExamplesMatchTheHostEncoder(t *testing.T) {
	examples := docParamsExamples(t)
	if len(examples) < 10 {
		t.Fatalf("found %d params examples in ABI.md, want at least 10", len(examples))
	}
	for _, ex := range examples {
		in := rawByte.ReplaceAllStringFunc(ex.in, func(s string) string {
			b, _ := hex.DecodeString(s[2:])
			return string(b)
		})
		dec := json.NewDecoder(strings.NewReader(in))
		if ex.useNumber {
			dec.UseNumber()
		}
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("ABI.md example %q: %v", ex.in, err)
		}
		if got := guestParams(t, m); string(got) != ex.out {
			t.Errorf("ABI.md example %q:\n got %s\nwant %s", ex.in, got, ex.out)
		}
	}
}

// The prose claims of section 3a that the examples cannot show.
func TestDocParamsGoValues(t *testing.T) {
	got := guestParams(t, map[string]any{"s": "a\xffb", "i": 7, "j": int64(-8), "del": "\x7f"})
	if want := "{\"del\":\"\x7f\",\"i\":7,\"j\":-8,\"s\":\"a\\ufffdb\"}"; string(got) != want {
		t.Errorf("Go values: got %s, want %s", got, want)
	}
	if got := guestParams(t, nil); len(got) != 0 {
		t.Errorf("no params: got %q, want empty", got)
	}
}
