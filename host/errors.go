package host

import (
	"errors"
	"fmt"
	"strings"

	"github.com/purser-dev/purser/abi"
)

// Load refusals; every *LoadError wraps one of them.
var (
	ErrABIVersion     = errors.New("unsupported ABI version")
	ErrMissingExport  = errors.New("missing export")
	ErrBadSignature   = errors.New("export or import has the wrong signature")
	ErrUnknownImport  = errors.New("unknown import")
	ErrBadManifest    = errors.New("bad manifest")
	ErrDigestMismatch = errors.New("sha256 digest does not match the pinned one")
	ErrInvalidModule  = errors.New("invalid or uncompilable wasm module")
	ErrInit           = errors.New("plugin initialisation failed")
	ErrRead           = errors.New("cannot read plugin file")
	// ErrNotMeterable: the fuel instrumenter cannot rewrite the module (an
	// opcode or construct it does not know), so it could not be bounded.
	ErrNotMeterable = errors.New("module cannot be metered")
)

// LoadError says which plugin and file were refused and why.
type LoadError struct {
	Plugin string // manifest name, or the file's base name before the manifest is known
	File   string // path, or "<bytes>" for in-memory modules
	Reason string // exactly what is wrong
	Err    error  // one of the Err* sentinels above, possibly wrapping a cause
	// Manifest is the module's manifest when the refusal came after it was
	// read (purser_init refusing the config, a failed smoke call), so a
	// plugin that needs config can still be described.
	Manifest *abi.Manifest
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("plugin %q (%s): %s: %s", e.Plugin, e.File, loadSentinel(e.Err), e.Reason)
}

// loadSentinel names the refusal without repeating the cause, which
// Reason already spells out.
func loadSentinel(err error) string {
	for _, s := range []error{ErrABIVersion, ErrMissingExport, ErrBadSignature, ErrUnknownImport,
		ErrBadManifest, ErrDigestMismatch, ErrInvalidModule, ErrInit, ErrRead, ErrNotMeterable, ErrSignature} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return err.Error()
}

// Unwrap returns the sentinel (and its cause).
func (e *LoadError) Unwrap() error { return e.Err }

// Call failures; every *CallError wraps one of them (or a context error
// when the caller gave up).
var (
	ErrTimeout = errors.New("plugin call timed out")
	// ErrFuelExhausted: the call burned its whole fuel budget. Fuel, not
	// the clock, bounds plugin calls; ErrTimeout remains a backstop.
	ErrFuelExhausted = errors.New("plugin ran out of fuel")
	ErrTrap          = errors.New("plugin trapped")
	ErrGuestError    = errors.New("plugin returned an error")
	// ErrUnsupported: the guest answered code 4 (unsupported), it does not
	// handle this call. Not a failure: it never counts toward health or
	// the error counters, and the caller falls back.
	ErrUnsupported = errors.New("plugin does not handle this call")
	// ErrInvalidParams: the guest answered code 5 (bad_params), the
	// caller's params are invalid. The caller's mistake, not the plugin's:
	// it never counts toward health; CallError.Param names the param.
	ErrInvalidParams  = errors.New("plugin refused the call's params")
	ErrOutputTooLarge = errors.New("plugin output too large")
	ErrBadOutput      = errors.New("plugin output malformed")
	ErrInputTooLarge  = errors.New("request too large for plugin")
	ErrUnhealthy      = errors.New("plugin unhealthy")
	// ErrPoolWait: every instance stayed busy for PoolWaitMax; the caller
	// falls back. Load, not a plugin failure: it does not count toward
	// health (the calls that keep the pool busy do if they fail).
	ErrPoolWait  = errors.New("plugin busy: no instance free")
	ErrClosed    = errors.New("plugin closed")
	ErrWrongKind = errors.New("plugin kind does not serve this call")
)

// CallError is a failed estimate or admit call.
type CallError struct {
	Plugin  string
	Digest  string // hex sha256 of the module that failed
	Op      string // "estimate", "admit", "init"
	Code    uint32 // the guest's abi.Code when Err is ErrGuestError, else 0
	Message string // the guest's message, or what the host saw
	Err     error
}

func (e *CallError) Error() string {
	d := e.Digest
	if len(d) > 12 {
		d = d[:12]
	}
	s := fmt.Sprintf("plugin %s@%s %s: %v", e.Plugin, d, e.Op, e.Err)
	if e.Code != 0 {
		s += fmt.Sprintf(" (code %d)", e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the sentinel.
func (e *CallError) Unwrap() error { return e.Err }

// Param splits an invalid-params message into the param it names and the
// reason (abi/ABI.md section 4, bad_params): "params.usage.cache_read_tokens:
// want a non-negative integer" names "usage.cache_read_tokens"; "params: ..."
// and a message without the "params" prefix name no single param ("").
func (e *CallError) Param() (param, reason string) {
	head, rest, ok := strings.Cut(e.Message, ": ")
	switch {
	case !ok:
	case head == "params":
		return "", rest
	case strings.HasPrefix(head, "params.") && len(head) > len("params.") && !strings.ContainsAny(head, " \t\n"):
		return head[len("params."):], rest
	}
	return "", e.Message
}
