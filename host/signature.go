package host

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/purser-dev/purser/signing"
)

// ErrSignature: the module's signature is missing, malformed, for another
// module or manifest, by an unknown or revoked key, or does not verify
// (Config.Signatures; docs/signing.md). The cause is a signing.Err*.
var ErrSignature = errors.New("signature refused")

// sigState is what the signature check of one version found.
type sigState struct {
	verified       *signing.Verified // nil: unsigned (and accepted)
	manifestDigest [32]byte          // of the pre-init manifest, canonical JSON
}

// checkSignature applies the host's signature policy to spec's module,
// whose sha256 is digest; the manifest is checked once it is read.
func (h *Host) checkSignature(spec *Spec, digest [32]byte) (*signing.Verified, error) {
	pol := h.cfg.Signatures
	if pol == nil {
		return nil, nil
	}
	sig, err := readSig(spec.File)
	if err != nil {
		return nil, err
	}
	return pol.Check(sig, digest)
}

// readSig reads FILE.sig; nil when there is none (or no file, for a module
// given as bytes).
func readSig(file string) ([]byte, error) {
	if file == "" {
		return nil, nil
	}
	f, err := os.Open(file + signing.SigSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading signature: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, signing.SigBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("reading signature %s: %w", file+signing.SigSuffix, err)
	}
	return b, nil
}

// noteManifest records the manifest's digest and, for a signed module,
// refuses a manifest other than the signed one.
func (v *version) noteManifest(name string, manifestJSON []byte) error {
	d, err := signing.ManifestDigest(manifestJSON)
	if err != nil {
		return &LoadError{Plugin: name, Reason: err.Error(), Err: ErrBadManifest}
	}
	v.sig.manifestDigest = d
	if v.sig.verified == nil {
		return nil
	}
	if err := v.sig.verified.CheckManifest(d); err != nil {
		return &LoadError{Plugin: name, Reason: err.Error(), Err: fmt.Errorf("%w: %w", ErrSignature, err)}
	}
	return nil
}

// ManifestSHA256 is the hex sha256 of the manifest the serving version
// declared before purser_init, in canonical JSON: what a signature covers.
func (p *Plugin) ManifestSHA256() string {
	d := p.cur.Load().sig.manifestDigest
	return hex.EncodeToString(d[:])
}

// SignedBy is the key id whose signature the serving version carried, or
// "" when it was loaded unsigned or without a signature policy.
func (p *Plugin) SignedBy() string {
	if v := p.cur.Load().sig.verified; v != nil {
		return v.KeyID
	}
	return ""
}
