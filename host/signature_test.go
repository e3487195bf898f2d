package host

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/signing"
)

// throwawayKey makes a key pair for one test; nothing is written to disk.
func throwawayKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := signing.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// manifestDigest loads file on a host without a signature policy and
// returns the digest a signature must cover.
func manifestDigest(t *testing.T, file string) [32]byte {
	t.Helper()
	h, _ := newTestHost(t, Config{})
	p, err := h.Load(context.Background(), Spec{File: file})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var d [32]byte
	b, _ := hex.DecodeString(p.ManifestSHA256())
	copy(d[:], b)
	return d
}

// signFile writes file.sig for file's current bytes.
func signFile(t *testing.T, priv ed25519.PrivateKey, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	writeSig(t, file, signing.Sign(priv, sha256.Sum256(b), manifestDigest(t, file)))
}

func writeSig(t *testing.T, file string, s signing.Signature) {
	t.Helper()
	if err := os.WriteFile(file+signing.SigSuffix, s.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sigHost(t *testing.T, require bool, keys ...signing.TrustedKey) *Host {
	t.Helper()
	pol, err := signing.NewPolicy(keys, require)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHost(t, Config{Signatures: pol})
	return h
}

func wantSigRefusal(t *testing.T, err error, cause error, names string) {
	t.Helper()
	var le *LoadError
	if !errors.As(err, &le) || !errors.Is(err, ErrSignature) || !errors.Is(err, cause) || !strings.Contains(err.Error(), names) {
		t.Fatalf("got %v; want a *LoadError for %v naming %q", err, cause, names)
	}
}

func TestRequiredSignatureAtLoadAndReload(t *testing.T) {
	pub, priv := throwawayKey(t)
	id := signing.KeyID(pub)
	h := sigHost(t, true, signing.TrustedKey{Public: pub})
	dir := t.TempDir()
	file := filepath.Join(dir, "est.wasm")
	copyPlugin(t, "estimator", file)

	r, err := h.NewRegistry(context.Background(), RegistryConfig{Dir: dir})
	wantSigRefusal(t, err, signing.ErrUnsigned, "require_signature")
	defer r.Close()
	if st := statusOf(t, r, "est.wasm"); st.Loaded || !strings.Contains(st.LastError, "signature refused") {
		t.Fatalf("unsigned plugin status %+v", st)
	}

	signFile(t, priv, file)
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	est := r.Estimator("Read")
	if est == nil || est.SignedBy() != id || statusOf(t, r, "est.wasm").SignedBy != id || estimateNanos(t, est) != 1_000_000 {
		t.Fatalf("signed plugin not serving: %v", est)
	}

	// A new module under the old signature: refused, the old one serves.
	copyPlugin(t, "estimator_v2", file)
	wantSigRefusal(t, r.Reload(context.Background()), signing.ErrDigestMismatch, id)
	if estimateNanos(t, est) != 1_000_000 {
		t.Fatal("a module whose signature is for another file replaced the good version")
	}
	// Unsigned on reload: refused, the old one serves.
	if err := os.Remove(file + signing.SigSuffix); err != nil {
		t.Fatal(err)
	}
	wantSigRefusal(t, r.Reload(context.Background()), signing.ErrUnsigned, "not signed")
	if estimateNanos(t, est) != 1_000_000 {
		t.Fatal("an unsigned module replaced the good version")
	}
	signFile(t, priv, file)
	if err := r.Reload(context.Background()); err != nil || estimateNanos(t, est) != 2_000_000 {
		t.Fatalf("signed v2 not swapped in: %v", err)
	}
}

func TestSignatureTamper(t *testing.T) {
	pub, priv := throwawayKey(t)
	id := signing.KeyID(pub)
	h := sigHost(t, true, signing.TrustedKey{Public: pub})
	file := filepath.Join(t.TempDir(), "est.wasm")
	copyPlugin(t, "estimator", file)
	signFile(t, priv, file)
	load := func() error {
		p, err := h.Load(context.Background(), Spec{File: file})
		if err == nil {
			p.Close()
		}
		return err
	}
	if err := load(); err != nil {
		t.Fatal(err)
	}

	t.Run("a flipped byte of the module", func(t *testing.T) {
		b, _ := os.ReadFile(wasmPath("estimator"))
		b[len(b)-1] ^= 1
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		defer copyPlugin(t, "estimator", file)
		wantSigRefusal(t, load(), signing.ErrDigestMismatch, id)
	})
	t.Run("another manifest", func(t *testing.T) {
		// A valid signature of this module's bytes with another manifest:
		// what a module declaring something else than was signed meets.
		b, _ := os.ReadFile(file)
		other, _ := signing.ManifestDigest([]byte(`{"name":"estimator","kind":"policy"}`))
		writeSig(t, file, signing.Sign(priv, sha256.Sum256(b), other))
		wantSigRefusal(t, load(), signing.ErrManifest, id)
	})
	t.Run("a flipped byte of the signature", func(t *testing.T) {
		signFile(t, priv, file)
		sig, _ := os.ReadFile(file + signing.SigSuffix)
		s, err := signing.ParseSignature(sig)
		if err != nil {
			t.Fatal(err)
		}
		s.ManifestSHA256 = strings.Repeat("ab", 32)
		writeSig(t, file, s)
		wantSigRefusal(t, load(), signing.ErrInvalid, id)
	})
	t.Run("malformed", func(t *testing.T) {
		if err := os.WriteFile(file+signing.SigSuffix, []byte("{\"format\": 1}"), 0o644); err != nil {
			t.Fatal(err)
		}
		wantSigRefusal(t, load(), signing.ErrMalformed, `field "format"`)
	})
}

func TestSignatureKeys(t *testing.T) {
	oldPub, oldPriv := throwawayKey(t)
	newPub, newPriv := throwawayKey(t)
	file := filepath.Join(t.TempDir(), "est.wasm")
	copyPlugin(t, "estimator", file)
	load := func(h *Host) error {
		p, err := h.Load(context.Background(), Spec{File: file})
		if err == nil {
			p.Close()
		}
		return err
	}
	rotated := sigHost(t, true, signing.TrustedKey{Public: oldPub, Revoked: true}, signing.TrustedKey{Public: newPub})
	signFile(t, oldPriv, file)
	wantSigRefusal(t, load(rotated), signing.ErrRevokedKey, signing.KeyID(oldPub))
	wantSigRefusal(t, load(sigHost(t, false, signing.TrustedKey{Public: newPub})), signing.ErrUnknownKey, signing.KeyID(oldPub))
	signFile(t, newPriv, file)
	if err := load(rotated); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}

	// Trusted keys without require: unsigned loads, a bad signature does not.
	optional := sigHost(t, false, signing.TrustedKey{Public: newPub})
	if err := os.WriteFile(file+signing.SigSuffix, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantSigRefusal(t, load(optional), signing.ErrMalformed, "line 1, column")
	if err := os.Remove(file + signing.SigSuffix); err != nil {
		t.Fatal(err)
	}
	if err := load(optional); err != nil {
		t.Fatalf("unsigned with signatures optional: %v", err)
	}
}

// A signature that lands after its module is picked up by the watcher:
// the module alone is refused (old version serving), its .sig loads it.
func TestWatchReloadsWhenTheSignatureArrives(t *testing.T) {
	pub, priv := throwawayKey(t)
	h := sigHost(t, true, signing.TrustedKey{Public: pub})
	dir := t.TempDir()
	file := filepath.Join(dir, "est.wasm")
	copyPlugin(t, "estimator", file)
	signFile(t, priv, file)
	r, err := h.NewRegistry(context.Background(), RegistryConfig{Dir: dir, Watch: true, Debounce: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := r.Estimator("x")

	// Sign v2 elsewhere, then deploy the module first and the signature after.
	staged := filepath.Join(t.TempDir(), "est.wasm")
	copyPlugin(t, "estimator_v2", staged)
	signFile(t, priv, staged)
	copyPlugin(t, "estimator_v2", file)
	eventually(t, "the unsigned module to be refused", func() bool {
		return strings.Contains(statusOf(t, r, "est.wasm").LastError, "another module")
	})
	if p.Manifest().Version != "1.0.0" {
		t.Fatal("the refused module replaced the running one")
	}
	sig, err := os.ReadFile(staged + signing.SigSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file+signing.SigSuffix+".tmp", sig, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+signing.SigSuffix+".tmp", file+signing.SigSuffix); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the signature to trigger a reload", func() bool { return p.Manifest().Version == "2.0.0" })
}
