package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTestPlugin copies a committed test plugin into dir.
func copyTestPlugin(t *testing.T, name, dst string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "testplugins", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func keyID(t *testing.T, keygenOut string) string {
	t.Helper()
	for _, line := range strings.Split(keygenOut, "\n") {
		if id, ok := strings.CutPrefix(line, "key id:"); ok {
			return strings.TrimSpace(id)
		}
	}
	t.Fatalf("no key id in %q", keygenOut)
	return ""
}

func TestPluginKeygenSignVerify(t *testing.T) {
	dir := t.TempDir()
	wasm := filepath.Join(dir, "est.wasm")
	copyTestPlugin(t, "estimator", wasm)
	// Throwaway keys, made and dropped with the test's temp dir.
	code, out, errOut := cli(t, "plugin", "keygen", "--out", filepath.Join(dir, "team"))
	if code != 0 {
		t.Fatalf("keygen: %d %s %s", code, out, errOut)
	}
	id := keyID(t, out)
	if st, err := os.Stat(filepath.Join(dir, "team.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st, err)
	}
	if code, _, errOut := cli(t, "plugin", "keygen", "--out", filepath.Join(dir, "team")); code != exitUsage || !strings.Contains(errOut, "--force") {
		t.Fatalf("keygen over an existing key: %d %s", code, errOut)
	}
	_, otherOut, _ := cli(t, "plugin", "keygen", "--out", filepath.Join(dir, "other"))
	otherID := keyID(t, otherOut)

	if code, out, errOut := cli(t, "plugin", "sign", "--key", filepath.Join(dir, "team.key"), wasm); code != 0 || !strings.Contains(out, id) {
		t.Fatalf("sign: %d %s %s", code, out, errOut)
	}
	verify := func(pub string) (int, string) {
		code, out, _ := cli(t, "plugin", "verify", wasm, "--pub", filepath.Join(dir, pub))
		return code, out
	}
	if code, out := verify("team.pub"); code != 0 || !strings.Contains(out, "ok:") || !strings.Contains(out, id) {
		t.Fatalf("verify: %d %s", code, out)
	}
	if code, out := verify("other.pub"); code != exitDeny || !strings.Contains(out, "unknown key: key id "+id) || !strings.Contains(out, otherID) {
		t.Fatalf("verify with another key: %d %s", code, out)
	}
	copyTestPlugin(t, "estimator_v2", wasm)
	if code, out := verify("team.pub"); code != exitDeny || !strings.Contains(out, "another module: key id "+id) {
		t.Fatalf("verify of another module: %d %s", code, out)
	}
	if err := os.WriteFile(wasm+".sig", []byte(`{"format": "purser-plugin-signature-v1", "key_id": 12}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := verify("team.pub"); code != exitDeny || !strings.Contains(out, `field "key_id"`) {
		t.Fatalf("verify of a malformed signature: %d %s", code, out)
	}
	if err := os.Remove(wasm + ".sig"); err != nil {
		t.Fatal(err)
	}
	if code, out := verify("team.pub"); code != exitDeny || !strings.Contains(out, "not signed") {
		t.Fatalf("verify of an unsigned module: %d %s", code, out)
	}
}

func TestTrustedKeysConfig(t *testing.T) {
	dir := t.TempDir()
	cli(t, "plugin", "keygen", "--out", filepath.Join(dir, "new"))
	_, out, _ := cli(t, "plugin", "keygen", "--out", filepath.Join(dir, "old"))
	var inline string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "inline:"); ok {
			inline = strings.TrimSpace(v)
		}
	}
	good := writeFile(t, "keys.yaml", "plugins:\n  require_signature: true\n  trusted_keys:\n"+
		"    - {file: "+filepath.Join(dir, "new.pub")+"}\n    - {key: \""+inline+"\", revoked: true}\n")
	cfg, err := loadConfig(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cfg.build()
	if err != nil || b.signatures == nil || !b.signatures.Required() {
		t.Fatalf("build: %v %v", err, b)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"plugins: {trusted_keys: [{key: \"ed25519:AAAA\"}]}", "plugins.trusted_keys[0]: key:"},
		{"plugins: {trusted_keys: [{key: \"" + inline + "\", file: x.pub}]}", "plugins.trusted_keys[0]: set exactly one"},
		{"plugins: {trusted_keys: [{file: " + filepath.Join(dir, "missing.pub") + "}]}", "plugins.trusted_keys[0]: file:"},
		{"plugins: {require_signature: true}", "plugins.trusted_keys: signatures are required"},
		{"plugins: {require_signature: true, trusted_keys: [{key: \"" + inline + "\", revoked: true}]}", "plugins.trusted_keys: signatures are required"},
	} {
		cfg, err := loadConfig(writeFile(t, "bad.yaml", tc.yaml), nil)
		if err == nil {
			_, err = cfg.build()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
