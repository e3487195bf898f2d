package abi

import "encoding/binary"

// Result record layout, v1.0 (little-endian). The same record answers
// purser_estimate, purser_admit and (when not 0) purser_init.
const (
	offResStatus  = 0  // u32: Code, 0 = ok
	offResVerdict = 4  // u32: Verdict (policies; 0 otherwise)
	offResNanos   = 8  // i64: estimate in nano-USD (estimators; 0 otherwise)
	offResTextLen = 16 // u32: length of the text that follows
	// ResultHeaderSize is the fixed part of a result; the text follows it.
	ResultHeaderSize = 20
)

// Result is a decoded result record. Text is the deny/ask reason of a
// policy, or the error message when Status is not CodeOK.
type Result struct {
	Status  Code
	Verdict Verdict
	Nanos   int64
	Text    []byte
}

// EstimateResult is an estimator's answer.
type EstimateResult struct {
	Nanos int64
}

// AdmitResult is a policy's answer.
type AdmitResult struct {
	Verdict Verdict
	Reason  string
}

// ResultSize is the encoded length of a result carrying text of length n.
func ResultSize(textLen int) int { return ResultHeaderSize + textLen }

// AppendResult appends a result record to dst.
func AppendResult(dst []byte, status Code, verdict Verdict, nanos int64, text string) []byte {
	var h [ResultHeaderSize]byte
	le := binary.LittleEndian
	le.PutUint32(h[offResStatus:], uint32(status))
	le.PutUint32(h[offResVerdict:], uint32(verdict))
	le.PutUint64(h[offResNanos:], uint64(nanos))
	le.PutUint32(h[offResTextLen:], uint32(len(text)))
	dst = append(dst, h[:]...)
	return append(dst, text...)
}

// AppendEstimate appends a successful estimator result.
func AppendEstimate(dst []byte, nanos int64) []byte {
	return AppendResult(dst, CodeOK, Allow, nanos, "")
}

// AppendVerdict appends a successful policy result.
func AppendVerdict(dst []byte, v Verdict, reason string) []byte {
	return AppendResult(dst, CodeOK, v, 0, reason)
}

// AppendError appends an error result.
func AppendError(dst []byte, code Code, message string) []byte {
	return AppendResult(dst, code, Allow, 0, message)
}

// ParseResult decodes a result record. Text aliases b. Bytes past the text
// are ignored (room for later minors).
func ParseResult(b []byte) (Result, error) {
	le := binary.LittleEndian
	if len(b) < ResultHeaderSize {
		return Result{}, &FormatError{"result", itoa(int64(len(b))) + " bytes, shorter than the " + itoa(ResultHeaderSize) + "-byte header"}
	}
	n := le.Uint32(b[offResTextLen:])
	if uint64(n) > uint64(len(b)-ResultHeaderSize) {
		return Result{}, &FormatError{"result", "text_len " + itoa(int64(n)) + " past the end of a " + itoa(int64(len(b))) + "-byte record"}
	}
	return Result{
		Status:  Code(le.Uint32(b[offResStatus:])),
		Verdict: Verdict(le.Uint32(b[offResVerdict:])),
		Nanos:   int64(le.Uint64(b[offResNanos:])),
		Text:    b[ResultHeaderSize : ResultHeaderSize+n : ResultHeaderSize+n],
	}, nil
}

// Estimate checks an ok result as an estimator answer.
func (r *Result) Estimate() (EstimateResult, error) {
	if r.Nanos < 0 {
		return EstimateResult{}, &FormatError{"result", "negative estimate " + itoa(r.Nanos) + " nanos"}
	}
	return EstimateResult{Nanos: r.Nanos}, nil
}

// Admit checks an ok result as a policy answer (allocates the reason).
func (r *Result) Admit() (AdmitResult, error) {
	if r.Verdict > Deny {
		return AdmitResult{}, &FormatError{"result", "unknown verdict " + itoa(int64(r.Verdict))}
	}
	return AdmitResult{Verdict: r.Verdict, Reason: string(r.Text)}, nil
}
