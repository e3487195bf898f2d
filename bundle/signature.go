package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/purser-dev/purser/signing"
)

// SignatureFormat names the bundle signature and is the domain prefix of
// the signed message, so a bundle signature is never a plugin signature.
const SignatureFormat = "purser-bundle-signature-v1"

// Signature is bundle.json.sig.
type Signature struct {
	Format         string `json:"format"`
	KeyID          string `json:"key_id"`
	Algorithm      string `json:"algorithm"`
	ManifestSHA256 string `json:"manifest_sha256"`
	Signature      string `json:"signature"`
}

// message is SignatureFormat, a NUL, then the raw 32-byte digest.
func message(digest [32]byte) []byte {
	return append(append([]byte(SignatureFormat), 0), digest[:]...)
}

// Sign signs a manifest digest (hex) with priv; the result is the
// content of bundle.json.sig.
func Sign(priv ed25519.PrivateKey, digestHex string) ([]byte, error) {
	var d [32]byte
	if raw, err := hex.DecodeString(digestHex); err != nil || copy(d[:], raw) != 32 {
		return nil, fmt.Errorf("bundle digest %q is not 64 hex digits", digestHex)
	}
	pub, _ := priv.Public().(ed25519.PublicKey)
	s := Signature{Format: SignatureFormat, KeyID: signing.KeyID(pub), Algorithm: signing.Algorithm,
		ManifestSHA256: digestHex, Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(priv, message(d)))}
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}

// checkSignature returns the signing key id, "" for an accepted unsigned
// bundle. Errors wrap the signing.Err* sentinels and name the key id.
func checkSignature(sig []byte, digestHex string, opt Options) (string, error) {
	if sig == nil {
		if opt.RequireSignature {
			return "", fmt.Errorf("%w: no %s in the bundle, and bundle signatures are required", signing.ErrUnsigned, SignatureFile)
		}
		return "", nil
	}
	if len(sig) > signing.SigBytesMax {
		return "", fmt.Errorf("%w: %s is over %d bytes", signing.ErrMalformed, SignatureFile, signing.SigBytesMax)
	}
	var s Signature
	dec := json.NewDecoder(bytes.NewReader(sig))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return "", fmt.Errorf("%w: %s: %v", signing.ErrMalformed, SignatureFile, err)
	}
	if s.Format != SignatureFormat || s.Algorithm != signing.Algorithm {
		return "", fmt.Errorf("%w: %s: format must be %q and algorithm %q", signing.ErrMalformed, SignatureFile, SignatureFormat, signing.Algorithm)
	}
	k, err := trusted(opt.TrustedKeys, s.KeyID)
	if err != nil {
		return "", err
	}
	if s.ManifestSHA256 != digestHex {
		return "", fmt.Errorf("%w: key id %s signed bundle digest %s, this %s has %s", signing.ErrDigestMismatch, s.KeyID, s.ManifestSHA256, ManifestFile, digestHex)
	}
	var d [32]byte
	raw, _ := hex.DecodeString(digestHex)
	copy(d[:], raw)
	sigBytes, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil || !ed25519.Verify(k, message(d), sigBytes) {
		return "", fmt.Errorf("%w: key id %s: %s does not verify", signing.ErrInvalid, s.KeyID, SignatureFile)
	}
	return s.KeyID, nil
}

func trusted(keys []signing.TrustedKey, id string) (ed25519.PublicKey, error) {
	var ids []string
	for _, k := range keys {
		kid := signing.KeyID(k.Public)
		ids = append(ids, kid)
		if kid != id {
			continue
		}
		if k.Revoked {
			return nil, fmt.Errorf("%w: key id %s is revoked", signing.ErrRevokedKey, id)
		}
		return k.Public, nil
	}
	return nil, fmt.Errorf("%w: key id %s is not a trusted key (trusted: %s)", signing.ErrUnknownKey, id, strings.Join(ids, ", "))
}
