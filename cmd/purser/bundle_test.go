package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func bundleFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	wasm, err := os.ReadFile("../../testplugins/estimator.wasm")
	if err != nil {
		t.Fatal(err)
	}
	manifest := `{"format": "purser-bundle-v1", "revision": "r1", "plugins": [{"path": "est.wasm", "order": 1}]}`
	for name, b := range map[string][]byte{"bundle.json": []byte(manifest), "est.wasm": wasm} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestBundleBuildInspect(t *testing.T) {
	dir := bundleFolder(t)
	keyPrefix := filepath.Join(t.TempDir(), "team")
	if code, out := runCLI(t, "plugin", "keygen", "--out", keyPrefix); code != exitOK {
		t.Fatalf("keygen: %d %s", code, out)
	}
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	code, out := runCLI(t, "bundle", "build", dir, "-o", archive, "--key", keyPrefix+".key", "--revision", "r2")
	if code != exitOK || !strings.Contains(out, `revision "r2", 1 plugin(s)`) || !strings.Contains(out, "signed by key id") {
		t.Fatalf("build: %d %s", code, out)
	}
	code, out = runCLI(t, "bundle", "inspect", archive, "--pub", keyPrefix+".pub", "--require-signature")
	if code != exitOK || !strings.Contains(out, "ok: bundle") || !strings.Contains(out, "est.wasm") {
		t.Fatalf("inspect: %d %s", code, out)
	}
	// The folder itself has no files list: inspect refuses it, naming est.wasm.
	code, out = runCLI(t, "bundle", "inspect", dir)
	if code != exitDeny || !strings.Contains(out, `"est.wasm"`) {
		t.Fatalf("inspect of an unbuilt folder: %d %s", code, out)
	}
	// Another key: refused, naming the signing key id.
	other := filepath.Join(t.TempDir(), "other")
	runCLI(t, "plugin", "keygen", "--out", other)
	code, out = runCLI(t, "bundle", "inspect", "--pub", other+".pub", archive)
	if code != exitDeny || !strings.Contains(out, "unknown key") {
		t.Fatalf("inspect with an untrusted key: %d %s", code, out)
	}
	if code, _ := runCLI(t, "bundle", "build", dir); code != exitUsage {
		t.Fatalf("build without -o: exit %d, want %d", code, exitUsage)
	}
}
