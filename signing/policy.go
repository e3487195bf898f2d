package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Refusals; Check's errors wrap one of them and name the key id.
var (
	ErrUnsigned       = errors.New("plugin is not signed")
	ErrMalformed      = errors.New("malformed signature file")
	ErrUnknownKey     = errors.New("signed by an unknown key")
	ErrRevokedKey     = errors.New("signed by a revoked key")
	ErrDigestMismatch = errors.New("signature is for another module")
	ErrManifest       = errors.New("signature is for another manifest")
	ErrInvalid        = errors.New("signature does not verify")
)

// errNoKey: NewPolicy was asked to require signatures no key can make.
var errNoKey = errors.New("signatures are required but every trusted key is revoked or none is listed")

// MalformedError says which field of a signature file is wrong, or where
// its JSON breaks.
type MalformedError struct {
	Field  string // "" when the JSON itself is broken
	Reason string
}

func (e *MalformedError) Error() string {
	if e.Field == "" {
		return "signature file: " + e.Reason
	}
	return fmt.Sprintf("signature file: field %q %s", e.Field, e.Reason)
}

func (e *MalformedError) Unwrap() error { return ErrMalformed }

// TrustedKey is a public key a policy accepts, or refuses by name when
// Revoked (rotation keeps the old key listed, revoked, so its signatures
// are refused with a clear reason instead of as unknown).
type TrustedKey struct {
	Public  ed25519.PublicKey
	Revoked bool
}

// Policy says which signatures a host accepts.
type Policy struct {
	keys    map[string]TrustedKey // by key id
	require bool
}

// NewPolicy builds a policy. With require, an unsigned module is refused;
// without, a signature that is present must still verify.
func NewPolicy(keys []TrustedKey, require bool) (*Policy, error) {
	p := &Policy{keys: map[string]TrustedKey{}, require: require}
	usable := false
	for _, k := range keys {
		if len(k.Public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("trusted key is %d bytes, want %d", len(k.Public), ed25519.PublicKeySize)
		}
		id := KeyID(k.Public)
		if _, dup := p.keys[id]; dup {
			return nil, fmt.Errorf("key %s is listed twice", id)
		}
		p.keys[id] = k
		usable = usable || !k.Revoked
	}
	if require && !usable {
		return nil, errNoKey
	}
	return p, nil
}

// usableIDs lists the unrevoked key ids, sorted.
func (p *Policy) usableIDs() []string {
	var ids []string
	for id, k := range p.keys {
		if !k.Revoked {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Required says whether an unsigned module is refused.
func (p *Policy) Required() bool { return p.require }

// Verified is an accepted signature: the key that made it and the manifest
// digest the loaded module must declare.
type Verified struct {
	KeyID          string
	ManifestSHA256 string
}

// Check verifies the signature file sig (nil when there is none) of a
// module whose sha256 is module. It returns nil, nil for an unsigned module
// a non-requiring policy accepts. The manifest is checked later with
// Verified.CheckManifest, once the host has read it.
func (p *Policy) Check(sig []byte, module [32]byte) (*Verified, error) {
	if sig == nil {
		if p.require {
			return nil, fmt.Errorf("%w: no %s file next to it, and signatures are required (plugins.require_signature) by key id %s",
				ErrUnsigned, SigSuffix, strings.Join(p.usableIDs(), " or "))
		}
		return nil, nil
	}
	s, err := ParseSignature(sig)
	if err != nil {
		return nil, err
	}
	k, ok := p.keys[s.KeyID]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: key id %s is not a trusted key", ErrUnknownKey, s.KeyID)
	case k.Revoked:
		return nil, fmt.Errorf("%w: key id %s is revoked", ErrRevokedKey, s.KeyID)
	}
	got := hex.EncodeToString(module[:])
	if s.ModuleSHA256 != got {
		return nil, fmt.Errorf("%w: key id %s signed module sha256 %s, this file has %s", ErrDigestMismatch, s.KeyID, s.ModuleSHA256, got)
	}
	return VerifyWith(k.Public, s)
}

// VerifyWith checks s's signature with pub over the digests s names. It
// does not compare them with a file; Policy.Check does.
func VerifyWith(pub ed25519.PublicKey, s Signature) (*Verified, error) {
	if id := KeyID(pub); id != s.KeyID {
		return nil, fmt.Errorf("%w: key id %s signed it, the given key is %s", ErrUnknownKey, s.KeyID, id)
	}
	var mod, man [32]byte
	raw, _ := base64.StdEncoding.DecodeString(s.Signature) // validated by ParseSignature
	if !decodeDigest(s.ModuleSHA256, &mod) || !decodeDigest(s.ManifestSHA256, &man) ||
		!ed25519.Verify(pub, Message(mod, man), raw) {
		return nil, fmt.Errorf("%w: key id %s: the signature does not match the digests it names (tampered signature file)", ErrInvalid, s.KeyID)
	}
	return &Verified{KeyID: s.KeyID, ManifestSHA256: s.ManifestSHA256}, nil
}

func decodeDigest(s string, out *[32]byte) bool {
	b, err := hex.DecodeString(s)
	return err == nil && copy(out[:], b) == 32
}

// CheckManifest compares the digest of the manifest the module declares
// (ManifestDigest) with the signed one.
func (v *Verified) CheckManifest(manifest [32]byte) error {
	if got := hex.EncodeToString(manifest[:]); got != v.ManifestSHA256 {
		return fmt.Errorf("%w: key id %s signed manifest sha256 %s, the module declares %s", ErrManifest, v.KeyID, v.ManifestSHA256, got)
	}
	return nil
}
