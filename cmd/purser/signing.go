package main

import (
	"crypto/ed25519"
	"fmt"
	"os"

	"github.com/purser-dev/purser/signing"
)

// TrustedKeyConfig is one entry of plugins.trusted_keys: a public key given
// inline (PEM or "ed25519:BASE64") or as a file, optionally revoked.
type TrustedKeyConfig struct {
	Key     string `koanf:"key"`
	File    string `koanf:"file"`
	Revoked bool   `koanf:"revoked"`
}

// buildSignatures turns plugins.trusted_keys and plugins.require_signature
// into the host's policy; nil when neither is set (signatures ignored).
func (c PluginsConfig) buildSignatures(p *problems) *signing.Policy {
	if len(c.TrustedKeys) == 0 && !c.RequireSignature {
		return nil
	}
	var keys []signing.TrustedKey
	for i, k := range c.TrustedKeys {
		path := fmt.Sprintf("plugins.trusted_keys[%d]", i)
		pub, err := k.public()
		if err != nil {
			p.add(path, "%v", err)
			continue
		}
		keys = append(keys, signing.TrustedKey{Public: pub, Revoked: k.Revoked})
	}
	pol, err := signing.NewPolicy(keys, c.RequireSignature)
	if err != nil {
		p.add("plugins.trusted_keys", "%v", err)
		return nil
	}
	return pol
}

func (k TrustedKeyConfig) public() (ed25519.PublicKey, error) {
	switch {
	case (k.Key == "") == (k.File == ""):
		return nil, fmt.Errorf("set exactly one of key (inline public key) and file (a .pub file)")
	case k.Key != "":
		pub, err := signing.ParsePublicKey([]byte(k.Key))
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		return pub, nil
	}
	b, err := os.ReadFile(k.File)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	pub, err := signing.ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", k.File, err)
	}
	return pub, nil
}
