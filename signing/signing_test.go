package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

var (
	testModule   = sha256.Sum256([]byte("module bytes"))
	testManifest = mustManifest(`{"name":"est","kind":"estimator","tools":["Read"]}`)
)

func mustManifest(s string) [32]byte {
	d, err := ManifestDigest([]byte(s))
	if err != nil {
		panic(err)
	}
	return d
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func policy(t *testing.T, require bool, keys ...TrustedKey) *Policy {
	t.Helper()
	p, err := NewPolicy(keys, require)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignVerifyRoundTrip(t *testing.T) {
	pub, priv := newKey(t)
	sig := Sign(priv, testModule, testManifest)
	v, err := policy(t, true, TrustedKey{Public: pub}).Check(sig.Marshal(), testModule)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyID != KeyID(pub) || len(v.KeyID) != KeyIDLen {
		t.Fatalf("key id %q, want %q", v.KeyID, KeyID(pub))
	}
	if err := v.CheckManifest(testManifest); err != nil {
		t.Fatal(err)
	}
}

func TestRefusals(t *testing.T) {
	pub, priv := newKey(t)
	other, _ := newKey(t)
	id := KeyID(pub)
	good := Sign(priv, testModule, testManifest)
	tampered := good
	tampered.ManifestSHA256 = strings.Repeat("0", 64) // the signature no longer matches its digests
	flipped := testModule
	flipped[0] ^= 1
	for _, tc := range []struct {
		name   string
		pol    *Policy
		sig    []byte
		module [32]byte
		want   error
		names  string
	}{
		{"unsigned, required", policy(t, true, TrustedKey{Public: pub}), nil, testModule, ErrUnsigned, "require_signature) by key id " + id},
		{"another module", policy(t, true, TrustedKey{Public: pub}), good.Marshal(), flipped, ErrDigestMismatch, id},
		{"unknown key", policy(t, true, TrustedKey{Public: other}), good.Marshal(), testModule, ErrUnknownKey, id},
		{"revoked key", policy(t, true, TrustedKey{Public: other}, TrustedKey{Public: pub, Revoked: true}), good.Marshal(), testModule, ErrRevokedKey, id},
		{"tampered digests", policy(t, false, TrustedKey{Public: pub}), tampered.Marshal(), testModule, ErrInvalid, id},
		{"malformed, not required", policy(t, false, TrustedKey{Public: pub}), []byte("{"), testModule, ErrMalformed, "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.pol.Check(tc.sig, tc.module)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("got %v, want %v naming %q", err, tc.want, tc.names)
			}
		})
	}
}

func TestUnsignedAcceptedWhenNotRequired(t *testing.T) {
	pub, _ := newKey(t)
	v, err := policy(t, false, TrustedKey{Public: pub}).Check(nil, testModule)
	if v != nil || err != nil {
		t.Fatalf("got %v, %v; want nil, nil", v, err)
	}
}

func TestRotation(t *testing.T) {
	oldPub, oldPriv := newKey(t)
	newPub, newPriv := newKey(t)
	both := policy(t, true, TrustedKey{Public: oldPub}, TrustedKey{Public: newPub})
	for _, priv := range []ed25519.PrivateKey{oldPriv, newPriv} {
		if _, err := both.Check(Sign(priv, testModule, testManifest).Marshal(), testModule); err != nil {
			t.Fatalf("during rotation both keys verify: %v", err)
		}
	}
	after := policy(t, true, TrustedKey{Public: oldPub, Revoked: true}, TrustedKey{Public: newPub})
	if _, err := after.Check(Sign(newPriv, testModule, testManifest).Marshal(), testModule); err != nil {
		t.Fatal(err)
	}
	_, err := after.Check(Sign(oldPriv, testModule, testManifest).Marshal(), testModule)
	if !errors.Is(err, ErrRevokedKey) || !strings.Contains(err.Error(), KeyID(oldPub)) {
		t.Fatalf("old key after revocation: %v", err)
	}
}

func TestNewPolicyRefusesNoUsableKey(t *testing.T) {
	pub, _ := newKey(t)
	if _, err := NewPolicy([]TrustedKey{{Public: pub, Revoked: true}}, true); err == nil {
		t.Fatal("require with only a revoked key must be refused")
	}
	if _, err := NewPolicy([]TrustedKey{{Public: pub}, {Public: pub}}, false); err == nil || !strings.Contains(err.Error(), KeyID(pub)) {
		t.Fatalf("duplicate key: %v", err)
	}
}

func TestManifestTamperIsRefused(t *testing.T) {
	pub, priv := newKey(t)
	v, err := policy(t, true, TrustedKey{Public: pub}).Check(Sign(priv, testModule, testManifest).Marshal(), testModule)
	if err != nil {
		t.Fatal(err)
	}
	other := mustManifest(`{"name":"est","kind":"policy","tools":["Read"]}`)
	if err := v.CheckManifest(other); !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), KeyID(pub)) {
		t.Fatalf("got %v", err)
	}
}

func TestManifestDigestIsCanonical(t *testing.T) {
	a := mustManifest(`{"name":"x","tools":["a"],"config_schema":{"b":1,"a":2.50}}`)
	b := mustManifest("{ \"config_schema\": {\"a\": 2.50, \"b\": 1},\n \"tools\": [\"a\"], \"name\": \"x\" }")
	if a != b {
		t.Fatal("key order and spacing changed the digest")
	}
	if c := mustManifest(`{"name":"x","tools":["a"],"config_schema":{"b":1,"a":2.5}}`); c == a {
		t.Fatal("a number written differently must change the digest (numbers are kept as written)")
	}
	if _, err := ManifestDigest([]byte(`{} {}`)); err == nil {
		t.Fatal("trailing data accepted")
	}
}

func TestParseSignatureNamesFieldOrPosition(t *testing.T) {
	_, priv := newKey(t)
	good := string(Sign(priv, testModule, testManifest).Marshal())
	for _, tc := range []struct{ name, in, want string }{
		{"syntax", "{\n  \"format\": ,\n}", "line 2, column"},
		{"type", strings.Replace(good, `"key_id": "`, `"key_id": 7, "x": "`, 1), `field "key_id"`},
		{"unknown field", strings.Replace(good, `"format"`, `"extra": 1, "format"`, 1), `field "extra"`},
		{"format", strings.Replace(good, Format, "v0", 1), `field "format"`},
		{"algorithm", strings.Replace(good, `"ed25519"`, `"rsa"`, 1), `field "algorithm"`},
		{"key id", strings.Replace(good, `"key_id": "`, `"key_id": "zz`, 1), `field "key_id"`},
		{"module", strings.Replace(good, `"module_sha256": "`, `"module_sha256": "A`, 1), `field "module_sha256"`},
		{"signature", strings.Replace(good, `"signature": "`, `"signature": "!!`, 1), `field "signature"`},
		{"trailing", good + "{}", "data after"},
		{"too big", good + strings.Repeat(" ", SigBytesMax), "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSignature([]byte(tc.in))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrMalformed containing %q", err, tc.want)
			}
		})
	}
}

func TestKeyEncodings(t *testing.T) {
	pub, priv := newKey(t)
	pemPub, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemPriv, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{pemPub, []byte(CompactPublicKey(pub) + "\n")} {
		got, err := ParsePublicKey(in)
		if err != nil || !got.Equal(pub) {
			t.Fatalf("ParsePublicKey(%q) = %v, %v", in, got, err)
		}
	}
	got, err := ParsePrivateKey(pemPriv)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	if _, err := ParsePublicKey(pemPriv); err == nil || !strings.Contains(err.Error(), "PUBLIC KEY") {
		t.Fatalf("a private key read as public: %v", err)
	}
	if _, err := ParsePublicKey([]byte("ed25519:AAAA")); err == nil {
		t.Fatal("short compact key accepted")
	}
	if bytes.Contains(pemPub, []byte("PRIVATE")) {
		t.Fatal("public PEM mentions PRIVATE")
	}
}
