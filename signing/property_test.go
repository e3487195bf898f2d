package signing

import (
	"crypto/ed25519"
	"testing"

	"pgregory.net/rapid"
)

// A signature accepts exactly the (module, manifest) pair it was made for:
// flipping any one bit of either digest is refused.
func TestSignatureBindsBothDigests(t *testing.T) {
	pub, priv := newKey(t)
	pol := policy(t, true, TrustedKey{Public: pub})
	digest := func(t *rapid.T, label string) (d [32]byte) {
		copy(d[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, label))
		return d
	}
	rapid.Check(t, func(t *rapid.T) {
		module, manifest := digest(t, "module"), digest(t, "manifest")
		sig := Sign(priv, module, manifest).Marshal()
		v, err := pol.Check(sig, module)
		if err != nil || v.CheckManifest(manifest) != nil {
			t.Fatalf("the signed pair is refused: %v", err)
		}
		bit := rapid.IntRange(0, 255).Draw(t, "bit")
		if rapid.Bool().Draw(t, "flip the module") {
			module[bit/8] ^= 1 << (bit % 8)
			if _, err := pol.Check(sig, module); err == nil {
				t.Fatal("a module with one bit flipped is accepted")
			}
			return
		}
		manifest[bit/8] ^= 1 << (bit % 8)
		if v.CheckManifest(manifest) == nil {
			t.Fatal("a manifest with one bit flipped is accepted")
		}
	})
}

// The signature really is over the message: changing any byte of the
// message breaks it (guards Message against dropping a part).
func TestMessageCoversEveryByte(t *testing.T) {
	_, priv := newKey(t)
	pub, _ := priv.Public().(ed25519.PublicKey)
	msg := Message(testModule, testManifest)
	if len(msg) != len(Format)+1+64 {
		t.Fatalf("message is %d bytes", len(msg))
	}
	sig := ed25519.Sign(priv, msg)
	for i := range msg {
		m := append([]byte(nil), msg...)
		m[i] ^= 1
		if ed25519.Verify(pub, m, sig) {
			t.Fatalf("byte %d of the message is not covered", i)
		}
	}
}
