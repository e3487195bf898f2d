package abi

import (
	"encoding/binary"
	"errors"
	"math"
)

// RequestKind is byte 2 of a request header.
type RequestKind uint8

// Request kinds.
const (
	RequestEstimate RequestKind = 1
	RequestAdmit    RequestKind = 2
)

// Source says where an admission request's estimate came from (byte 3 of
// the header). The full label ("plugin:<name>@<digest>") is a string field.
type Source uint8

// Estimate sources.
const (
	SourceNone    Source = 0
	SourcePlugin  Source = 1
	SourceTable   Source = 2
	SourceLLM     Source = 3
	SourceUnknown Source = 4
)

// Request header layout, v1.0 (little-endian, no padding between strings).
const (
	offHeaderLen      = 0  // u16: bytes before the first string (168 in v1.1, 72 in v1.0)
	offKind           = 2  // u8: RequestKind
	offSource         = 3  // u8: Source of the estimate (admission)
	offFlags          = 4  // u32: Flag bits
	offEstimateNanos  = 8  // i64
	offLimitNanos     = 16 // i64, -1 = unlimited
	offCommittedNanos = 24 // i64
	offPendingNanos   = 32 // i64
	offRemainingNanos = 40 // i64, math.MaxInt64 when unlimited
	offPromptChars    = 48 // i64
	offMaxTokens      = 56 // i64, -1 = absent
	offStringCount    = 64 // u32: number of strings that follow (7 in v1.1, 6 in v1.0)
	offReserved       = 68 // u32: zero
	// HeaderSizeV1_0 is the v1.0 header length, the shortest this package
	// parses (a guest built for 1.1 may be handed a v1.0 record by tests or
	// tools; the host always sends HeaderSize).
	HeaderSizeV1_0 = 72
)

// Header fields added in v1.1: the host's LLM context (LLMContext), all
// i64 and zero unless FlagLLM is set. Prices are nano-USD per million
// tokens.
const (
	offLLMInput                = 72
	offLLMOutput               = 80
	offLLMCacheRead            = 88
	offLLMCacheWrite           = 96
	offLLMCacheWrite1h         = 104
	offLLMTierAboveTokens      = 112
	offLLMInputAbove           = 120
	offLLMOutputAbove          = 128
	offLLMCacheReadAbove       = 136
	offLLMCacheWriteAbove      = 144
	offLLMExpectedOutputTokens = 152
	offLLMCacheReadTokens      = 160
	// HeaderSize is the header length this package writes (v1.1). Later
	// minors may grow it; guests must locate the strings with the
	// header_len field, not this constant.
	HeaderSize = 168
)

// Flag bits of a request header.
const (
	FlagOverdrawn uint32 = 1 << 0 // the account (or an ancestor) is overdrawn
	FlagHasPrompt uint32 = 1 << 1 // params carry a prompt or messages; prompt_chars counts them
	// FlagLLM (v1.1): the host priced the call's model; the LLM header
	// fields and string StrLLMPriceSource are meaningful.
	FlagLLM uint32 = 1 << 2
	// FlagLLMPriceFallback (v1.1): the model is not in the host's price
	// table; the prices are its fallback rule's (the source says which).
	FlagLLMPriceFallback uint32 = 1 << 3
)

// String fields, in wire order. Later minors append new strings after the
// last one; guests ignore strings past the ones they know.
const (
	StrTool = iota
	StrAccount
	StrModel
	StrSourceLabel
	StrParams
	StrLabels
	// StrLLMPriceSource (v1.1) names where the LLM prices came from, e.g.
	// "litellm:claude-opus-4-5"; empty without an LLM context.
	StrLLMPriceSource
	// StringCount is the number of strings in a v1.1 request.
	StringCount
	// StringCountV1_0 is the number of strings in a v1.0 request.
	StringCountV1_0 = StrLabels + 1
)

// LLMPrice is a model's prices from the host's price table, in nano-USD
// per million tokens (enforcer.ModelPrice on the wire). A zero CacheRead or
// CacheWrite means "as Input", a zero CacheWrite1h "as CacheWrite".
// TierAboveTokens > 0 is a long-context tier: a call whose prompt has more
// tokens pays the *Above prices that are set (non-zero), on every token.
type LLMPrice struct {
	Input, Output, CacheRead, CacheWrite, CacheWrite1h       int64
	TierAboveTokens                                          int64
	InputAbove, OutputAbove, CacheReadAbove, CacheWriteAbove int64
}

// LLMContext (v1.1) is what the host knows about an LLM call before any
// estimator runs: the model's price, from the same table that prices usage
// at commit, and what the host expects of the call.
type LLMContext struct {
	Price LLMPrice
	// PriceFallback: the model is not in the table (FlagLLMPriceFallback).
	PriceFallback bool
	// ExpectedOutputTokens is the output the host expects (0: none).
	ExpectedOutputTokens int64
	// CacheReadTokens is how many prompt tokens the host expects to be read
	// from the provider's cache (params.cache_read_tokens when given).
	CacheReadTokens int64
}

// Label is one account label (tier, owner...).
type Label struct{ Key, Value string }

// Budget is the account's state before the call is held.
type Budget struct {
	LimitNanos     int64 // -1 = unlimited
	CommittedNanos int64
	PendingNanos   int64
	RemainingNanos int64 // limit-committed-pending; math.MaxInt64 when unlimited; negative when overdrawn
	Overdrawn      bool
}

// Unlimited returns the snapshot of an account without a limit.
func Unlimited(committed, pending int64) Budget {
	return Budget{LimitNanos: -1, CommittedNanos: committed, PendingNanos: pending, RemainingNanos: math.MaxInt64}
}

// Call holds the fields common to estimate and admission requests.
type Call struct {
	Tool    string
	Account string
	Model   string // params.model, "" when absent
	// Params is the tool's params as canonical JSON (sorted keys), or empty.
	Params []byte
	// Labels are the account's labels, sorted by key.
	Labels []Label
	Budget Budget
	// PromptChars counts Unicode characters of params.prompt, else of the
	// messages[].content joined by single spaces; meaningful when HasPrompt.
	PromptChars int64
	HasPrompt   bool
	MaxTokens   int64 // params.max_tokens, -1 when absent
	// LLM is the host's LLM context (v1.1), nil when it has none.
	LLM *LLMContext
	// LLMPriceSource names the LLM prices' source; only sent with LLM.
	LLMPriceSource string
}

// EstimateRequest asks an estimator for a price.
type EstimateRequest struct{ Call }

// AdmitRequest asks a policy for a verdict on a call and its estimate.
type AdmitRequest struct {
	Call
	EstimateNanos       int64
	EstimateSource      Source
	EstimateSourceLabel string // "plugin:<name>@<digest12>", "table", "llm", "unknown"
}

// llmPriceSource is string 6 as sent: empty without an LLM context.
func (c *Call) llmPriceSource() string {
	if c.LLM == nil {
		return ""
	}
	return c.LLMPriceSource
}

func (c *Call) encodedSize(sourceLabel string) int {
	n := HeaderSize + 4*StringCount + len(c.Tool) + len(c.Account) + len(c.Model) + len(sourceLabel) + len(c.Params) + len(c.llmPriceSource())
	for _, l := range c.Labels {
		n += 8 + len(l.Key) + len(l.Value)
	}
	return n
}

// EncodedSize is the length AppendEstimateRequest will add.
func (r *EstimateRequest) EncodedSize() int { return r.encodedSize("") }

// EncodedSize is the length AppendAdmitRequest will add.
func (r *AdmitRequest) EncodedSize() int { return r.encodedSize(r.EstimateSourceLabel) }

// AppendEstimateRequest appends r's wire form to dst.
func AppendEstimateRequest(dst []byte, r *EstimateRequest) []byte {
	return appendRequest(dst, RequestEstimate, &r.Call, 0, SourceNone, "")
}

// AppendAdmitRequest appends r's wire form to dst.
func AppendAdmitRequest(dst []byte, r *AdmitRequest) []byte {
	return appendRequest(dst, RequestAdmit, &r.Call, r.EstimateNanos, r.EstimateSource, r.EstimateSourceLabel)
}

func appendRequest(dst []byte, kind RequestKind, c *Call, est int64, src Source, srcLabel string) []byte {
	var h [HeaderSize]byte
	le := binary.LittleEndian
	le.PutUint16(h[offHeaderLen:], HeaderSize)
	h[offKind] = byte(kind)
	h[offSource] = byte(src)
	var flags uint32
	if c.Budget.Overdrawn {
		flags |= FlagOverdrawn
	}
	if c.HasPrompt {
		flags |= FlagHasPrompt
	}
	flags |= putLLM(&h, c.LLM)
	le.PutUint32(h[offFlags:], flags)
	le.PutUint64(h[offEstimateNanos:], uint64(est))
	le.PutUint64(h[offLimitNanos:], uint64(c.Budget.LimitNanos))
	le.PutUint64(h[offCommittedNanos:], uint64(c.Budget.CommittedNanos))
	le.PutUint64(h[offPendingNanos:], uint64(c.Budget.PendingNanos))
	le.PutUint64(h[offRemainingNanos:], uint64(c.Budget.RemainingNanos))
	le.PutUint64(h[offPromptChars:], uint64(c.PromptChars))
	le.PutUint64(h[offMaxTokens:], uint64(c.MaxTokens))
	le.PutUint32(h[offStringCount:], StringCount)
	dst = append(dst, h[:]...)
	dst = appendStr(dst, c.Tool)
	dst = appendStr(dst, c.Account)
	dst = appendStr(dst, c.Model)
	dst = appendStr(dst, srcLabel)
	dst = le.AppendUint32(dst, uint32(len(c.Params)))
	dst = append(dst, c.Params...)
	n := 0
	for _, l := range c.Labels {
		n += 8 + len(l.Key) + len(l.Value)
	}
	dst = le.AppendUint32(dst, uint32(n))
	for _, l := range c.Labels {
		dst = appendStr(dst, l.Key)
		dst = appendStr(dst, l.Value)
	}
	return appendStr(dst, c.llmPriceSource())
}

// putLLM writes the v1.1 LLM fields and returns the flags they set.
func putLLM(h *[HeaderSize]byte, c *LLMContext) uint32 {
	if c == nil {
		return 0
	}
	le := binary.LittleEndian
	p := &c.Price
	for _, f := range [...]struct {
		off int
		v   int64
	}{
		{offLLMInput, p.Input}, {offLLMOutput, p.Output}, {offLLMCacheRead, p.CacheRead},
		{offLLMCacheWrite, p.CacheWrite}, {offLLMCacheWrite1h, p.CacheWrite1h},
		{offLLMTierAboveTokens, p.TierAboveTokens}, {offLLMInputAbove, p.InputAbove},
		{offLLMOutputAbove, p.OutputAbove}, {offLLMCacheReadAbove, p.CacheReadAbove},
		{offLLMCacheWriteAbove, p.CacheWriteAbove},
		{offLLMExpectedOutputTokens, c.ExpectedOutputTokens}, {offLLMCacheReadTokens, c.CacheReadTokens},
	} {
		le.PutUint64(h[f.off:], uint64(f.v))
	}
	if c.PriceFallback {
		return FlagLLM | FlagLLMPriceFallback
	}
	return FlagLLM
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// ErrMalformed is wrapped by every decoding error of this package.
var ErrMalformed = errors.New("malformed record")

// FormatError says which record and which part of it is malformed.
type FormatError struct {
	Record string // "request", "result", "manifest"
	Detail string
}

func (e *FormatError) Error() string { return "abi: malformed " + e.Record + ": " + e.Detail }

// Unwrap lets errors.Is(err, ErrMalformed) match.
func (e *FormatError) Unwrap() error { return ErrMalformed }

// RequestView reads a request in place, without copying or allocating.
// Byte-slice accessors alias the buffer: copy what must outlive the call.
type RequestView struct {
	b   []byte
	str [StringCount][2]uint32 // offset, length
}

// ParseRequest validates a request record and indexes its strings. It
// accepts v1.0 records (no LLM context) and records from newer minors
// (longer header, more strings).
func ParseRequest(b []byte) (RequestView, error) {
	var v RequestView
	le := binary.LittleEndian
	if len(b) < HeaderSizeV1_0 {
		return v, &FormatError{"request", "shorter than the " + itoa(HeaderSizeV1_0) + "-byte header"}
	}
	hl := int(le.Uint16(b[offHeaderLen:]))
	if hl < HeaderSizeV1_0 || hl > len(b) {
		return v, &FormatError{"request", "header_len " + itoa(int64(hl)) + " out of range"}
	}
	if k := RequestKind(b[offKind]); k != RequestEstimate && k != RequestAdmit {
		return v, &FormatError{"request", "unknown kind " + itoa(int64(k))}
	}
	if le.Uint32(b[offFlags:])&FlagLLM != 0 && hl < HeaderSize {
		return v, &FormatError{"request", "flag llm set in a header of " + itoa(int64(hl)) + " bytes (< " + itoa(HeaderSize) + ")"}
	}
	n := le.Uint32(b[offStringCount:])
	if n < StringCountV1_0 {
		return v, &FormatError{"request", "string_count " + itoa(int64(n)) + " < " + itoa(StringCountV1_0)}
	}
	off := hl
	for i := 0; i < int(min(n, StringCount)); i++ {
		if len(b)-off < 4 {
			return v, &FormatError{"request", "string " + itoa(int64(i)) + " length past the end"}
		}
		n := int(le.Uint32(b[off:]))
		off += 4
		if n > len(b)-off {
			return v, &FormatError{"request", "string " + itoa(int64(i)) + " past the end"}
		}
		v.str[i] = [2]uint32{uint32(off), uint32(n)}
		off += n
	}
	v.b = b
	if err := v.checkLabels(); err != nil {
		return RequestView{}, err
	}
	return v, nil
}

func (v *RequestView) checkLabels() error {
	l := v.Str(StrLabels)
	for len(l) > 0 {
		var ok bool
		if _, l, ok = cutStr(l); ok {
			_, l, ok = cutStr(l)
		}
		if !ok {
			return &FormatError{"request", "labels field is not a sequence of key/value strings"}
		}
	}
	return nil
}

func cutStr(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

func (v *RequestView) i64(off int) int64 { return int64(binary.LittleEndian.Uint64(v.b[off:])) }

// Kind is RequestEstimate or RequestAdmit.
func (v *RequestView) Kind() RequestKind { return RequestKind(v.b[offKind]) }

// Flags are the header's flag bits.
func (v *RequestView) Flags() uint32 { return binary.LittleEndian.Uint32(v.b[offFlags:]) }

// EstimateNanos is the call's estimate (admission requests).
func (v *RequestView) EstimateNanos() int64 { return v.i64(offEstimateNanos) }

// EstimateSource is where the estimate came from (admission requests).
func (v *RequestView) EstimateSource() Source { return Source(v.b[offSource]) }

// Budget decodes the budget snapshot.
func (v *RequestView) Budget() Budget {
	return Budget{
		LimitNanos:     v.i64(offLimitNanos),
		CommittedNanos: v.i64(offCommittedNanos),
		PendingNanos:   v.i64(offPendingNanos),
		RemainingNanos: v.i64(offRemainingNanos),
		Overdrawn:      v.Flags()&FlagOverdrawn != 0,
	}
}

// PromptChars is the host-counted prompt length in characters and whether
// the params had a prompt or messages at all.
func (v *RequestView) PromptChars() (int64, bool) {
	return v.i64(offPromptChars), v.Flags()&FlagHasPrompt != 0
}

// MaxTokens is params.max_tokens, -1 when absent.
func (v *RequestView) MaxTokens() int64 { return v.i64(offMaxTokens) }

// LLM decodes the host's LLM context (v1.1); ok is false when the request
// carries none: a tool that is not an LLM call, or a v1.0 record.
func (v *RequestView) LLM() (c LLMContext, ok bool) {
	f := v.Flags()
	if f&FlagLLM == 0 { // ParseRequest made sure the header then has the fields
		return c, false
	}
	c.Price = LLMPrice{
		Input: v.i64(offLLMInput), Output: v.i64(offLLMOutput), CacheRead: v.i64(offLLMCacheRead),
		CacheWrite: v.i64(offLLMCacheWrite), CacheWrite1h: v.i64(offLLMCacheWrite1h),
		TierAboveTokens: v.i64(offLLMTierAboveTokens), InputAbove: v.i64(offLLMInputAbove),
		OutputAbove: v.i64(offLLMOutputAbove), CacheReadAbove: v.i64(offLLMCacheReadAbove),
		CacheWriteAbove: v.i64(offLLMCacheWriteAbove),
	}
	c.PriceFallback = f&FlagLLMPriceFallback != 0
	c.ExpectedOutputTokens, c.CacheReadTokens = v.i64(offLLMExpectedOutputTokens), v.i64(offLLMCacheReadTokens)
	return c, true
}

// LLMPriceSource names where the LLM prices came from (string 6, v1.1);
// empty without an LLM context.
func (v *RequestView) LLMPriceSource() []byte { return v.Str(StrLLMPriceSource) }

// Str returns string field i (StrTool...StrLLMPriceSource) aliasing the
// buffer; a string the record does not carry (v1.0) is empty.
func (v *RequestView) Str(i int) []byte {
	s := v.str[i]
	return v.b[s[0] : s[0]+s[1] : s[0]+s[1]]
}

// Tool is the tool name.
func (v *RequestView) Tool() []byte { return v.Str(StrTool) }

// Account is the account id.
func (v *RequestView) Account() []byte { return v.Str(StrAccount) }

// Model is params.model ("" when absent).
func (v *RequestView) Model() []byte { return v.Str(StrModel) }

// SourceLabel is the estimate's source label (admission requests).
func (v *RequestView) SourceLabel() []byte { return v.Str(StrSourceLabel) }

// Params is the canonical params JSON.
func (v *RequestView) Params() []byte { return v.Str(StrParams) }

// EachLabel calls fn for each label in key order until fn returns false.
func (v *RequestView) EachLabel(fn func(key, value []byte) bool) {
	l := v.Str(StrLabels)
	for len(l) > 0 {
		k, rest, ok := cutStr(l)
		if !ok {
			return
		}
		val, rest, ok := cutStr(rest)
		if !ok {
			return
		}
		if !fn(k, val) {
			return
		}
		l = rest
	}
}

// Label returns the value of label key.
func (v *RequestView) Label(key string) (value []byte, found bool) {
	v.EachLabel(func(k, val []byte) bool {
		if string(k) == key { // no allocation: compiler-optimised comparison
			value, found = val, true
			return false
		}
		return true
	})
	return value, found
}

// EstimateRequest copies the view into an EstimateRequest (allocates).
func (v *RequestView) EstimateRequest() EstimateRequest { return EstimateRequest{v.call()} }

// AdmitRequest copies the view into an AdmitRequest (allocates).
func (v *RequestView) AdmitRequest() AdmitRequest {
	return AdmitRequest{
		Call:                v.call(),
		EstimateNanos:       v.EstimateNanos(),
		EstimateSource:      v.EstimateSource(),
		EstimateSourceLabel: string(v.SourceLabel()),
	}
}

func (v *RequestView) call() Call {
	pc, has := v.PromptChars()
	c := Call{
		Tool:        string(v.Tool()),
		Account:     string(v.Account()),
		Model:       string(v.Model()),
		Budget:      v.Budget(),
		PromptChars: pc,
		HasPrompt:   has,
		MaxTokens:   v.MaxTokens(),
	}
	if p := v.Params(); len(p) > 0 {
		c.Params = append([]byte(nil), p...)
	}
	if l, ok := v.LLM(); ok {
		c.LLM, c.LLMPriceSource = &l, string(v.LLMPriceSource())
	}
	v.EachLabel(func(k, val []byte) bool {
		c.Labels = append(c.Labels, Label{string(k), string(val)})
		return true
	})
	return c
}
