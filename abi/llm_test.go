package abi

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func llmCall() Call {
	return Call{
		Tool: "LLM", Account: "team/a", Model: "claude-opus-4-5",
		Params: []byte(`{"model":"claude-opus-4-5","prompt":"hi"}`), Labels: []Label{{"tier", "gold"}},
		Budget: Unlimited(1, 2), PromptChars: 2, HasPrompt: true, MaxTokens: -1,
		LLM: &LLMContext{
			Price: LLMPrice{Input: 5_000, Output: 25_000, CacheRead: 500, CacheWrite: 6_250, CacheWrite1h: 10_000,
				TierAboveTokens: 200_000, InputAbove: 10_000, OutputAbove: 37_500, CacheReadAbove: 1_000, CacheWriteAbove: 12_500},
			PriceFallback: true, ExpectedOutputTokens: 812, CacheReadTokens: 40_000,
		},
		LLMPriceSource: "fallback:dearest-anthropic:claude-opus-4-5",
	}
}

func TestLLMContextRoundTrip(t *testing.T) {
	in := EstimateRequest{llmCall()}
	b := AppendEstimateRequest(nil, &in)
	if len(b) != in.EncodedSize() {
		t.Fatalf("EncodedSize %d, encoded %d", in.EncodedSize(), len(b))
	}
	if hl := binary.LittleEndian.Uint16(b); hl != HeaderSize || HeaderSize != 168 {
		t.Fatalf("header_len %d", hl)
	}
	v, err := ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.EstimateRequest(); !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
	}
	if f := v.Flags(); f != FlagHasPrompt|FlagLLM|FlagLLMPriceFallback {
		t.Fatalf("flags %b", f)
	}
	allocs := testing.AllocsPerRun(100, func() {
		v, _ := ParseRequest(b)
		_, _ = v.LLM()
		_ = v.LLMPriceSource()
	})
	if allocs != 0 {
		t.Fatalf("reading the LLM context allocates %v times", allocs)
	}
}

func TestNoLLMContext(t *testing.T) {
	c := llmCall()
	c.LLM = nil // a source without a context is not sent
	b := AppendEstimateRequest(nil, &EstimateRequest{c})
	v, err := ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := v.LLM(); ok || l != (LLMContext{}) || len(v.LLMPriceSource()) != 0 || v.Flags()&(FlagLLM|FlagLLMPriceFallback) != 0 {
		t.Fatalf("LLM() = %+v, %v; source %q; flags %b", l, ok, v.LLMPriceSource(), v.Flags())
	}
	for off := HeaderSizeV1_0; off < HeaderSize; off++ {
		if b[off] != 0 {
			t.Fatalf("byte %d of the LLM fields is %#x without a context", off, b[off])
		}
	}
}

// v10Record rewrites a v1.1 record the way a v1.0 host wrote it: a 72-byte
// header and six strings.
func v10Record(t *testing.T, c Call) []byte {
	t.Helper()
	c.LLM = nil
	b := AppendEstimateRequest(nil, &EstimateRequest{c})
	le := binary.LittleEndian
	out := append([]byte(nil), b[:HeaderSizeV1_0]...)
	le.PutUint16(out, HeaderSizeV1_0)
	le.PutUint32(out[offStringCount:], StringCountV1_0)
	out = append(out, b[HeaderSize:len(b)-4]...) // drop the empty string 6
	return out
}

func TestParsesV10Records(t *testing.T) {
	c := llmCall()
	v, err := ParseRequest(v10Record(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.LLM(); ok || len(v.LLMPriceSource()) != 0 {
		t.Fatal("a v1.0 record has no LLM context")
	}
	c.LLM, c.LLMPriceSource = nil, ""
	if got := v.EstimateRequest(); !reflect.DeepEqual(got.Call, c) {
		t.Fatalf("v1.0 record:\n got %+v\nwant %+v", got.Call, c)
	}
}

// A v1.0 reader finds the v1.0 fields and strings of a v1.1 record where it
// always did: the header's fields at their offsets and the strings from
// header_len, with the new ones after them.
func TestV11RecordKeepsV10Layout(t *testing.T) {
	c := llmCall()
	b := AppendEstimateRequest(nil, &EstimateRequest{c})
	old := v10Record(t, c)
	le := binary.LittleEndian
	if string(b[offKind:offFlags]) != string(old[offKind:offFlags]) ||
		le.Uint32(b[offFlags:])&^(FlagLLM|FlagLLMPriceFallback) != le.Uint32(old[offFlags:]) || le.Uint32(b[offReserved:]) != 0 {
		t.Fatal("v1.0 header fields moved")
	}
	for _, off := range []int{offEstimateNanos, offLimitNanos, offCommittedNanos, offPendingNanos, offRemainingNanos, offPromptChars, offMaxTokens} {
		if string(b[off:off+8]) != string(old[off:off+8]) {
			t.Fatalf("field at %d differs", off)
		}
	}
	if n := le.Uint32(b[offStringCount:]); n != StringCount || StringCount != StringCountV1_0+1 {
		t.Fatalf("string_count %d", n)
	}
	// The six v1.0 strings, byte for byte, then string 6.
	strs := b[HeaderSize:]
	if want := old[HeaderSizeV1_0:]; string(strs[:len(want)]) != string(want) {
		t.Fatal("v1.0 strings differ")
	}
	if tail := strs[len(old)-HeaderSizeV1_0:]; string(tail[4:]) != c.LLMPriceSource || int(le.Uint32(tail)) != len(c.LLMPriceSource) {
		t.Fatalf("string 6 %q", tail)
	}
}

func TestParseRejectsLLMFlagInShortHeader(t *testing.T) {
	b := v10Record(t, llmCall())
	binary.LittleEndian.PutUint32(b[offFlags:], binary.LittleEndian.Uint32(b[offFlags:])|FlagLLM)
	if _, err := ParseRequest(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("flag llm with a 72-byte header: %v", err)
	}
}
