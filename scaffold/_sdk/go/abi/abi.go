// Package abi is the contract between the purser host and its WebAssembly
// plugins: version numbers, export and import names, and the binary
// encodings of requests, results and the manifest. ABI.md beside this file
// is the normative description; this package is its Go implementation,
// shared by the host (host/) and the Go guest SDK (sdk/go), which imports it
// from a GOOS=wasip1 GOARCH=wasm build. It therefore imports only small
// standard packages (no reflection, no encoding/json, no fmt) so guests stay
// small and the hot path does not allocate.
package abi

// Version of the ABI this package implements. A guest declares the version
// it was built for through the purser_abi_version export as
// VersionMajor<<16 | VersionMinor. The host accepts a guest whose major
// equals its own and whose minor is at most its own: minors only add
// (new trailing request fields, new optional exports and imports), majors
// break.
const (
	VersionMajor = 1
	// VersionMinor 1 added the host's LLM context to requests (header
	// fields after offset 72, string 6); ABI.md section 3.
	VersionMinor = 1
	// Version is the packed value purser_abi_version returns.
	Version = VersionMajor<<16 | VersionMinor
)

// PackVersion packs major and minor the way purser_abi_version returns them.
func PackVersion(major, minor uint16) uint32 { return uint32(major)<<16 | uint32(minor) }

// UnpackVersion splits a packed version.
func UnpackVersion(v uint32) (major, minor uint16) { return uint16(v >> 16), uint16(v) }

// Compatible reports whether a host implementing this package's version can
// run a guest that declared the packed version v.
func Compatible(v uint32) bool {
	major, minor := UnpackVersion(v)
	return major == VersionMajor && minor <= VersionMinor
}

// VersionString renders a packed version as "major.minor".
func VersionString(v uint32) string {
	major, minor := UnpackVersion(v)
	return itoa(int64(major)) + "." + itoa(int64(minor))
}

// Export names. Signatures use wasm value types; see ABI.md.
const (
	ExportMemory     = "memory"             // the guest's linear memory (required)
	ExportABIVersion = "purser_abi_version" // () -> i32 (required)
	ExportAlloc      = "purser_alloc"       // (size i32) -> i32 (required)
	ExportManifest   = "purser_manifest"    // () -> i64 (required)
	ExportInit       = "purser_init"        // (ptr i32, len i32) -> i64 (optional)
	ExportEstimate   = "purser_estimate"    // (ptr i32, len i32) -> i64 (estimators)
	ExportAdmit      = "purser_admit"       // (ptr i32, len i32) -> i64 (policies)
	ExportInitialize = "_initialize"        // () -> () (optional, WASI reactors such as Go c-shared)
	ExportStart      = "_start"             // refused: a command module cannot serve calls
	ImportModule     = "purser"             // module name of the host imports
	ImportLog        = "log"                // (level i32, ptr i32, len i32) -> ()
	WASIModule       = "wasi_snapshot_preview1"
)

// Kind is what a plugin does; it selects the call export.
type Kind string

// Plugin kinds.
const (
	KindEstimator Kind = "estimator"
	KindPolicy    Kind = "policy"
)

// CallExport returns the export a plugin of kind k must provide.
func (k Kind) CallExport() string {
	switch k {
	case KindEstimator:
		return ExportEstimate
	case KindPolicy:
		return ExportAdmit
	}
	return ""
}

// LogLevel is the level argument of the purser.log import.
type LogLevel int32

// Log levels, from most to least verbose.
const (
	LogTrace LogLevel = 0
	LogDebug LogLevel = 1
	LogInfo  LogLevel = 2
	LogWarn  LogLevel = 3
	LogError LogLevel = 4
)

// Verdict is a policy's answer.
type Verdict uint32

// Verdicts. Their order is their precedence: deny beats ask beats allow.
const (
	Allow Verdict = 0
	Ask   Verdict = 1
	Deny  Verdict = 2
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Ask:
		return "ask"
	case Deny:
		return "deny"
	}
	return "invalid(" + itoa(int64(v)) + ")"
}

// Code is a result status. 0 is success; other values are errors. Codes
// 1..999 are reserved for this table; plugins may use 1000 and above for
// their own errors.
type Code uint32

// Status codes.
const (
	CodeOK             Code = 0
	CodeInternal       Code = 1 // the plugin failed for a reason of its own
	CodeBadRequest     Code = 2 // the request record could not be decoded
	CodeBadConfig      Code = 3 // purser_init rejected the plugin config
	CodeUnsupported    Code = 4 // this plugin does not handle this tool or request
	CodeBadParams      Code = 5 // the tool params are unusable (missing field, wrong type)
	CodeNotInitialized Code = 6 // a call arrived before a successful purser_init
	CodeFirstCustom    Code = 1000
)

func (c Code) String() string {
	switch c {
	case CodeOK:
		return "ok"
	case CodeInternal:
		return "internal"
	case CodeBadRequest:
		return "bad_request"
	case CodeBadConfig:
		return "bad_config"
	case CodeUnsupported:
		return "unsupported"
	case CodeBadParams:
		return "bad_params"
	case CodeNotInitialized:
		return "not_initialized"
	}
	if c >= CodeFirstCustom {
		return "plugin_error_" + itoa(int64(c))
	}
	return "code_" + itoa(int64(c))
}

// PackPtrLen packs a guest pointer and length into the i64 that
// purser_manifest, purser_init, purser_estimate and purser_admit return.
func PackPtrLen(ptr, length uint32) uint64 { return uint64(ptr)<<32 | uint64(length) }

// UnpackPtrLen splits a packed pointer and length.
func UnpackPtrLen(v uint64) (ptr, length uint32) { return uint32(v >> 32), uint32(v) }

// itoa avoids strconv/fmt so guests importing abi stay small.
func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	for u > 0 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
