package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format names the signature format and is the domain-separation prefix of
// the signed message.
const Format = "purser-plugin-signature-v1"

// Algorithm is the only signature algorithm of Format.
const Algorithm = "ed25519"

// SigSuffix is appended to a module's path to name its signature file.
const SigSuffix = ".sig"

// SigBytesMax bounds a signature file; a real one is under 400 bytes.
const SigBytesMax = 4096

// Signature is the detached signature file, FILE.wasm.sig (JSON).
type Signature struct {
	Format         string `json:"format"`
	KeyID          string `json:"key_id"`
	Algorithm      string `json:"algorithm"`
	ModuleSHA256   string `json:"module_sha256"`
	ManifestSHA256 string `json:"manifest_sha256"`
	Signature      string `json:"signature"` // base64 (standard, padded) of 64 bytes
}

// Message is what is signed: Format, a NUL, then the raw 32-byte module
// and manifest digests.
func Message(module, manifest [32]byte) []byte {
	m := make([]byte, 0, len(Format)+1+64)
	m = append(m, Format...)
	m = append(m, 0)
	m = append(m, module[:]...)
	return append(m, manifest[:]...)
}

// Sign signs a module and manifest digest with priv.
func Sign(priv ed25519.PrivateKey, module, manifest [32]byte) Signature {
	pub, _ := priv.Public().(ed25519.PublicKey)
	return Signature{
		Format:         Format,
		KeyID:          KeyID(pub),
		Algorithm:      Algorithm,
		ModuleSHA256:   hex.EncodeToString(module[:]),
		ManifestSHA256: hex.EncodeToString(manifest[:]),
		Signature:      base64.StdEncoding.EncodeToString(ed25519.Sign(priv, Message(module, manifest))),
	}
}

// Marshal encodes s as the signature file's bytes.
func (s Signature) Marshal() []byte {
	b, _ := json.MarshalIndent(s, "", "  ") // strings only: cannot fail
	return append(b, '\n')
}

// ManifestDigest is the sha256 of a manifest in canonical JSON: decoded and
// re-encoded with sorted object keys and no insignificant space, numbers
// kept as written, so the digest depends on what the manifest says, not on
// how the guest's JSON encoder orders or spaces it.
func ManifestDigest(manifestJSON []byte) ([32]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(manifestJSON))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return [32]byte{}, fmt.Errorf("manifest is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return [32]byte{}, errors.New("manifest has data after its JSON value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return [32]byte{}, fmt.Errorf("manifest: %w", err)
	}
	return sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// ParseSignature decodes and checks a signature file. Its errors are
// *MalformedError naming the field, or the line and column of bad JSON.
func ParseSignature(b []byte) (Signature, error) {
	var s Signature
	if len(b) > SigBytesMax {
		return s, &MalformedError{Reason: fmt.Sprintf("is %d bytes, over the %d-byte limit", len(b), SigBytesMax)}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, jsonError(b, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		line, col := position(b, dec.InputOffset())
		return s, &MalformedError{Reason: fmt.Sprintf("line %d, column %d: data after the JSON object", line, col)}
	}
	return s, s.validate()
}

func (s Signature) validate() error {
	bad := func(field, format string, args ...any) error {
		return &MalformedError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case s.Format != Format:
		return bad("format", "must be %q, got %q", Format, s.Format)
	case s.Algorithm != Algorithm:
		return bad("algorithm", "must be %q, got %q", Algorithm, s.Algorithm)
	case !isHex(s.KeyID, KeyIDLen):
		return bad("key_id", "must be %d lowercase hex digits, got %q", KeyIDLen, s.KeyID)
	case !isHex(s.ModuleSHA256, 64):
		return bad("module_sha256", "must be 64 lowercase hex digits, got %q", s.ModuleSHA256)
	case !isHex(s.ManifestSHA256, 64):
		return bad("manifest_sha256", "must be 64 lowercase hex digits, got %q", s.ManifestSHA256)
	}
	if sig, err := base64.StdEncoding.DecodeString(s.Signature); err != nil || len(sig) != ed25519.SignatureSize {
		return bad("signature", "must be the base64 of %d bytes", ed25519.SignatureSize)
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// jsonError turns a decoding error into a *MalformedError with a position
// or a field.
func jsonError(b []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := position(b, se.Offset)
		return &MalformedError{Reason: fmt.Sprintf("line %d, column %d: %v", line, col, se)}
	case errors.As(err, &te):
		return &MalformedError{Field: te.Field, Reason: fmt.Sprintf("must be a JSON %s, got %s", te.Type, te.Value)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &MalformedError{Reason: "is empty or truncated JSON"}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &MalformedError{Field: strings.Trim(f, `"`), Reason: "is not a field of " + Format}
	}
	return &MalformedError{Reason: err.Error()}
}

// position turns a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	before := b[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	return line, int(off) - bytes.LastIndexByte(before, '\n')
}
