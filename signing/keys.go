package signing

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
)

// KeyIDLen is the length of a key id: the first 16 hex digits of the
// sha256 of the raw 32-byte public key.
const KeyIDLen = 16

// compactPrefix starts the one-line form of a public key, handy in YAML.
const compactPrefix = "ed25519:"

// KeyID names a public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:KeyIDLen]
}

// GenerateKey makes a key pair from rand (crypto/rand.Reader in real use).
func GenerateKey(rand io.Reader) (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand)
}

// MarshalPrivateKey encodes priv as PEM "PRIVATE KEY" (PKCS #8), which
// openssl also reads.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey encodes pub as PEM "PUBLIC KEY" (PKIX).
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// CompactPublicKey is the one-line form "ed25519:BASE64", accepted
// wherever a public key is.
func CompactPublicKey(pub ed25519.PublicKey) string {
	return compactPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a PEM "PUBLIC KEY" or the compact form.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	s := strings.TrimSpace(string(b))
	if rest, ok := strings.CutPrefix(s, compactPrefix); ok {
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("public key %q...: after %q want the base64 of %d bytes", clip(s), compactPrefix, ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(raw), nil
	}
	der, err := pemBlock(b, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is a %T, want an Ed25519 key", k)
	}
	return pub, nil
}

// ParsePrivateKey reads a PEM "PRIVATE KEY" (PKCS #8) holding an Ed25519 key.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	der, err := pemBlock(b, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is a %T, want an Ed25519 key", k)
	}
	return priv, nil
}

func pemBlock(b []byte, typ string) ([]byte, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("want a PEM %q block or %q followed by base64", typ, compactPrefix)
	}
	if blk.Type != typ {
		return nil, fmt.Errorf("PEM block is %q, want %q", blk.Type, typ)
	}
	return blk.Bytes, nil
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}
