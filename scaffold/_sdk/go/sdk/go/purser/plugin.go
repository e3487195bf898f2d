package purser

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"

	"github.com/purser-dev/purser/abi"
)

// Re-exported ABI types, so plugins rarely need to import abi.
type (
	// Manifest describes the plugin (name, version, tools, config schema).
	// Kind and ABI are filled in by NewEstimator / NewPolicy.
	Manifest = abi.Manifest
	// Code is a result status; see the Code* constants.
	Code = abi.Code
	// Verdict is a policy's answer.
	Verdict = abi.Verdict
	// Budget is the account's snapshot before the call is held.
	Budget = abi.Budget
	// Level is a log level.
	Level = abi.LogLevel
)

// ToolAny in Manifest.Tools means the plugin handles every tool.
const ToolAny = abi.ToolAny

// Error codes (abi/ABI.md section 4).
const (
	CodeInternal       = abi.CodeInternal
	CodeBadRequest     = abi.CodeBadRequest
	CodeBadConfig      = abi.CodeBadConfig
	CodeUnsupported    = abi.CodeUnsupported
	CodeBadParams      = abi.CodeBadParams
	CodeNotInitialized = abi.CodeNotInitialized
	CodeFirstCustom    = abi.CodeFirstCustom
)

// Log levels.
const (
	LevelTrace = abi.LogTrace
	LevelDebug = abi.LogDebug
	LevelInfo  = abi.LogInfo
	LevelWarn  = abi.LogWarn
	LevelError = abi.LogError
)

// Estimator prices a call. It returns the estimate in nano-USD (>= 0) or an
// error; an *Error carries its code, any other error is reported as
// CodeInternal with its message.
type Estimator interface {
	Estimate(req *Request) (nanos int64, err error)
}

// Policy judges a call and its estimate.
type Policy interface {
	Admit(req *Request) (Decision, error)
}

// ToolLister is implemented by an Estimator or Policy whose tools depend on
// its config (such as configured aliases). After a successful purser_init
// the manifest lists Tools() instead of Manifest.Tools, and the host
// routes only those tools to the plugin (abi/ABI.md section 5). A host
// that reads the manifest only before purser_init uses Manifest.Tools, so
// declare a superset there ("*").
type ToolLister interface {
	Tools() []string
}

// EstimatorFunc adapts a function to Estimator.
type EstimatorFunc func(req *Request) (int64, error)

// Estimate calls f.
func (f EstimatorFunc) Estimate(req *Request) (int64, error) { return f(req) }

// PolicyFunc adapts a function to Policy.
type PolicyFunc func(req *Request) (Decision, error)

// Admit calls f.
func (f PolicyFunc) Admit(req *Request) (Decision, error) { return f(req) }

// Plugin is a manifest plus a constructor that builds the estimator or
// policy from the config JSON delivered by purser_init ("{}" when the
// operator gave none). Build one with NewEstimator or NewPolicy.
type Plugin struct {
	manifest     Manifest
	newEstimator func(config []byte) (Estimator, error)
	newPolicy    func(config []byte) (Policy, error)
}

// NewEstimator declares an estimator plugin. newFn runs once per instance,
// at purser_init; returning an error fails the plugin's load with
// CodeBadConfig (or the code of an *Error).
func NewEstimator(m Manifest, newFn func(config []byte) (Estimator, error)) *Plugin {
	m.Kind = abi.KindEstimator
	m.ABI = abi.VersionString(abi.Version)
	return &Plugin{manifest: m, newEstimator: newFn}
}

// NewPolicy declares a policy plugin; see NewEstimator.
func NewPolicy(m Manifest, newFn func(config []byte) (Policy, error)) *Plugin {
	m.Kind = abi.KindPolicy
	m.ABI = abi.VersionString(abi.Version)
	return &Plugin{manifest: m, newPolicy: newFn}
}

// Manifest returns the manifest the plugin declares.
func (p *Plugin) Manifest() Manifest { return p.manifest }

// Validate checks the manifest the way the host will at load, and that the
// config schema, when given, is a JSON object.
func (p *Plugin) Validate() error {
	if p == nil {
		return errors.New("purser: nil plugin")
	}
	if p.newEstimator == nil && p.newPolicy == nil {
		return errors.New("purser: plugin " + strconv.Quote(p.manifest.Name) + " has no constructor")
	}
	if err := p.manifest.Validate(); err != nil {
		return errors.New("purser: plugin " + strconv.Quote(p.manifest.Name) + ": " + err.Error())
	}
	if s := p.manifest.ConfigSchema; len(s) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(s, &obj); err != nil {
			return errors.New("purser: plugin " + strconv.Quote(p.manifest.Name) + ": config_schema is not a JSON object: " + err.Error())
		}
	}
	return nil
}

// Decision is a policy's verdict and its reason. Build one with Allow, Ask,
// Deny, AskBytes or DenyBytes.
type Decision struct {
	verdict Verdict
	reason  string
	reasonB []byte
}

// Allow lets the call run.
func Allow() Decision { return Decision{verdict: abi.Allow} }

// Ask requires a human's approval; reason is shown to them.
func Ask(reason string) Decision { return Decision{verdict: abi.Ask, reason: reason} }

// Deny refuses the call with reason.
func Deny(reason string) Decision { return Decision{verdict: abi.Deny, reason: reason} }

// AskBytes is Ask with a reason built in a reusable buffer (for example
// Request.Scratch); the SDK copies it before the buffer can change.
func AskBytes(reason []byte) Decision { return Decision{verdict: abi.Ask, reasonB: reason} }

// DenyBytes is Deny with a reason built in a reusable buffer.
func DenyBytes(reason []byte) Decision { return Decision{verdict: abi.Deny, reasonB: reason} }

// Verdict is abi.Allow, abi.Ask or abi.Deny.
func (d Decision) Verdict() Verdict { return d.verdict }

// Reason returns the reason text.
func (d Decision) Reason() string {
	if d.reasonB != nil {
		return string(d.reasonB)
	}
	return d.reason
}

func (d Decision) appendTo(dst []byte) []byte {
	if d.reasonB != nil {
		return abi.AppendResult(dst, abi.CodeOK, d.verdict, 0, bytesString(d.reasonB))
	}
	return abi.AppendVerdict(dst, d.verdict, d.reason)
}

// Error is a plugin error with an ABI code. Return it from Estimate, Admit
// or a constructor to choose the code the host sees.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Message }

// NewError returns an *Error with code and message.
func NewError(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// Unsupported says the plugin does not handle this tool or request; the
// host falls back without counting a failure.
func Unsupported(message string) *Error { return &Error{CodeUnsupported, message} }

// BadParams says the caller's tool params are invalid. The host answers
// the caller with an invalid-params error instead of an estimate or
// verdict, and does not count it against the plugin's health. Start the
// message with the param's path, "params.<key>: <reason>" (InvalidParam
// does), so the caller is told which param.
func BadParams(message string) *Error { return &Error{CodeBadParams, message} }

// InvalidParam is BadParams naming the param: key is its path inside the
// params ("cache_read_tokens", "usage.input_tokens").
func InvalidParam(key, reason string) *Error {
	return &Error{CodeBadParams, "params." + key + ": " + reason}
}

// BadConfig says the plugin config is invalid (from a constructor).
func BadConfig(message string) *Error { return &Error{CodeBadConfig, message} }

// Internal says the plugin failed for a reason of its own.
func Internal(message string) *Error { return &Error{CodeInternal, message} }

// codeOf maps any error to an ABI code and message.
func codeOf(err error, fallback Code) (Code, string) {
	var e *Error
	if errors.As(err, &e) && e.Code != abi.CodeOK {
		return e.Code, e.Message
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return CodeBadParams, err.Error()
	}
	return fallback, err.Error()
}

// DecodeConfig decodes the config JSON into v strictly: the config must be
// one JSON object, unknown fields are rejected, and the error says which
// field is wrong. Meant for constructors (it uses encoding/json, so keep it
// off the per-call path). An empty config counts as "{}".
func DecodeConfig(config []byte, v any) error {
	if len(bytes.TrimSpace(config)) == 0 {
		config = []byte("{}")
	}
	if c := bytes.TrimSpace(config); c[0] != '{' {
		return BadConfig("config must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return BadConfig("config: " + describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return BadConfig("config: unexpected data after the JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return "field " + strconv.Quote(te.Field) + ": expected " + te.Type.String() + ", got JSON " + te.Value
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "malformed JSON at byte " + strconv.FormatInt(se.Offset, 10) + ": " + se.Error()
	}
	return err.Error()
}
