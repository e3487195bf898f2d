package purser

import (
	"github.com/purser-dev/purser/abi"
)

// Request is one estimate or admission request, read in place from the
// buffer the host wrote: no field is decoded or copied until asked for.
// Byte slices it returns alias that buffer and are valid only during the
// call; copy what must outlive it. A Request is reused from call to call.
type Request struct {
	v       abi.RequestView
	scratch []byte
}

// NewRequest parses an encoded request record (see abi.AppendEstimateRequest
// and abi.AppendAdmitRequest); the SDK does this for every call, tests may
// use it directly.
func NewRequest(record []byte) (*Request, error) {
	r := &Request{scratch: make([]byte, 0, scratchSize)}
	return r, r.reset(record)
}

func (r *Request) reset(record []byte) error {
	v, err := abi.ParseRequest(record)
	if err != nil {
		return err
	}
	r.v = v
	return nil
}

// IsAdmit reports whether this is an admission request (else an estimate).
func (r *Request) IsAdmit() bool { return r.v.Kind() == abi.RequestAdmit }

// Tool is the tool name ("LLM", "Bash", "mcp__github__create_issue").
func (r *Request) Tool() []byte { return r.v.Tool() }

// ToolIs reports whether the tool name is exactly name (no allocation).
func (r *Request) ToolIs(name string) bool { return string(r.v.Tool()) == name }

// Account is the account id.
func (r *Request) Account() []byte { return r.v.Account() }

// Model is params.model when it is a string, else empty.
func (r *Request) Model() []byte { return r.v.Model() }

// PromptChars is the host-counted number of Unicode characters of
// params.prompt (or of the messages' contents joined by spaces); ok is false
// when the params carry neither.
func (r *Request) PromptChars() (chars int64, ok bool) { return r.v.PromptChars() }

// MaxTokens is params.max_tokens when it is an integer; ok is false when
// absent.
func (r *Request) MaxTokens() (n int64, ok bool) {
	n = r.v.MaxTokens()
	return n, n >= 0
}

// Budget is the account's snapshot before this call is held. LimitNanos is
// -1 for an unlimited account.
func (r *Request) Budget() Budget { return r.v.Budget() }

// Unlimited reports whether the account has no limit.
func (r *Request) Unlimited() bool { return r.v.Budget().LimitNanos < 0 }

// Overdrawn reports whether the account or an ancestor is overdrawn.
func (r *Request) Overdrawn() bool { return r.v.Flags()&abi.FlagOverdrawn != 0 }

// EstimateNanos is the call's estimate (admission requests; 0 otherwise).
func (r *Request) EstimateNanos() int64 { return r.v.EstimateNanos() }

// EstimateSource is where the estimate came from (admission requests).
func (r *Request) EstimateSource() abi.Source { return r.v.EstimateSource() }

// SourceLabel is the estimate's source label: "plugin:<name>@<digest>",
// "table", "llm" or "unknown" (admission requests).
func (r *Request) SourceLabel() []byte { return r.v.SourceLabel() }

// Params is the tool's params as canonical JSON (sorted keys, compact), or
// empty.
func (r *Request) Params() []byte { return r.v.Params() }

// Param finds a top-level params field without decoding the rest and
// without allocating. An absent key gives a Value whose Exists is false and
// a nil error; malformed params give a *FieldError (reported as
// CodeBadParams when returned from Estimate or Admit).
func (r *Request) Param(key string) (Value, error) {
	v, err := Field(r.v.Params(), key)
	if err != nil {
		if fe, ok := err.(*FieldError); ok {
			fe.Key = key
		}
	}
	return v, err
}

// Label returns the account label key (tier, owner...).
func (r *Request) Label(key string) (value []byte, ok bool) { return r.v.Label(key) }

// EachLabel calls fn for each account label in key order until it returns
// false.
func (r *Request) EachLabel(fn func(key, value []byte) bool) { r.v.EachLabel(fn) }

// Scratch returns an empty buffer with room for a few hundred bytes, reused
// across calls, for building a reason (with append and usd.Append) to pass
// to AskBytes or DenyBytes without allocating. Its contents are overwritten
// by the next call.
func (r *Request) Scratch() []byte { return r.scratch[:0] }
