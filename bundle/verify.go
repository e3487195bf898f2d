package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/purser-dev/purser/signing"
)

// Options say what a verified bundle must satisfy.
type Options struct {
	Limits Limits
	// TrustedKeys may sign bundle.json (a revoked key's signature is
	// refused, naming it). With RequireSignature an unsigned bundle is
	// refused; without, a signature that is present must still verify.
	TrustedKeys      []signing.TrustedKey
	RequireSignature bool
	// Digest, when set, pins the manifest digest (hex): any other bundle
	// is refused.
	Digest string
}

// Bundle is a verified bundle: every file listed, present and matching.
type Bundle struct {
	Manifest *Manifest
	Digest   string // hex sha256 of the canonical manifest
	SignedBy string // key id, "" when unsigned
	Files    Files
}

// Verify checks files as a bundle: the manifest parses, every file it
// lists is present with its sha256, no other file is there, the digest
// matches a pin, and the signature (when present or required) verifies.
func Verify(files Files, opt Options) (*Bundle, error) {
	raw, ok := files[ManifestFile]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrMissing, ManifestFile)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, err
	}
	digest, err := Digest(raw)
	if err != nil {
		return nil, err
	}
	if opt.Digest != "" && opt.Digest != digest {
		return nil, fmt.Errorf("%w: %s has digest %s, want %s", ErrPinned, ManifestFile, digest, opt.Digest)
	}
	if err := checkFiles(m, files); err != nil {
		return nil, err
	}
	b := &Bundle{Manifest: m, Digest: digest, Files: files}
	b.SignedBy, err = checkSignature(files[SignatureFile], digest, opt)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func checkFiles(m *Manifest, files Files) error {
	for _, name := range sortedNames(m.Files) {
		b, ok := files[name]
		if !ok {
			return fmt.Errorf("%w: %q is listed in %s but not in the bundle", ErrMissing, name, ManifestFile)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != m.Files[name] {
			return fmt.Errorf("%w: %q has sha256 %s, %s says %s", ErrDigest, name, got, ManifestFile, m.Files[name])
		}
	}
	for _, name := range sortedNames(files) {
		if _, ok := m.Files[name]; !ok && name != ManifestFile && name != SignatureFile {
			return fmt.Errorf("%w: %q", ErrUnlisted, name)
		}
	}
	return nil
}

// FileDigests lists the sha256 of every file but the manifest and its
// signature, as bundle.json's files.
func FileDigests(files Files) map[string]string {
	out := map[string]string{}
	for name, b := range files {
		if name == ManifestFile || name == SignatureFile {
			continue
		}
		sum := sha256.Sum256(b)
		out[name] = hex.EncodeToString(sum[:])
	}
	return out
}
