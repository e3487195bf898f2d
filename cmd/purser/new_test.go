package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fromNothing proves the README's promise: in an empty folder, with the
// real binary and no purser checkout, three commands go from nothing to a
// passing `purser plugin test`.
func fromNothing(t *testing.T, lang, kind string) {
	t.Helper()
	bin := purserBinary(t)
	dir := t.TempDir()
	name := "my-" + kind
	steps := [][]string{
		{bin, "plugin", "new", "--lang", lang, "--kind", kind, name},
		{"./" + name + "/build.sh"},
		{bin, "plugin", "test", name + "/" + name + ".wasm", "--cases", name + "/cases.yaml"},
	}
	var out []byte
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Dir = dir
		var err error
		if out, err = cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Errorf("plugin test: %s", out)
	}
}

func TestPluginNewFromNothingGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two Go plugins")
	}
	for _, kind := range []string{"estimator", "policy"} {
		t.Run(kind, func(t *testing.T) { fromNothing(t, "go", kind) })
	}
}

func TestPluginNewRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "busy")
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := cli(t, "plugin", "new", "--dir", target, "busy")
	if code != exitUsage || !strings.Contains(errOut, "not empty") || !strings.Contains(errOut, "--force") {
		t.Errorf("non-empty folder: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(target, "go.mod")); err == nil {
		t.Error("a refused scaffold wrote files")
	}
	if code, out, errOut := cli(t, "plugin", "new", "--force", "--dir", target, "busy"); code != 0 {
		t.Errorf("--force: exit %d, %q %q", code, out, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(target, "notes.txt")); err != nil || string(b) != "mine" {
		t.Errorf("--force lost an unrelated file: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(target, "purser-sdk", "sdk", "go", "purser", "plugin.go")); err != nil {
		t.Errorf("--force wrote no SDK copy: %v", err)
	}
	code, _, errOut = cli(t, "plugin", "new", "--lang", "cobol", "--dir", filepath.Join(dir, "c"), "c")
	if code != exitUsage || !strings.Contains(errOut, "go, rust, assemblyscript") {
		t.Errorf("unknown --lang: exit %d, %q", code, errOut)
	}
	for _, name := range []string{"", "Upper", "1st", "a_b", strings.Repeat("a", 64)} {
		if code, _, errOut := cli(t, "plugin", "new", "--dir", filepath.Join(dir, "n"), name); code != exitUsage || !strings.Contains(errOut, "plugin name") {
			t.Errorf("name %q: exit %d, %q", name, code, errOut)
		}
	}
	if code, _, errOut := cli(t, "plugin", "new", "--kind", "router", "--dir", filepath.Join(dir, "k"), "k"); code != exitUsage || !strings.Contains(errOut, "estimator, policy") {
		t.Errorf("unknown --kind: exit %d, %q", code, errOut)
	}
}

// TestPluginNewFromNothingRust needs Debian's rustc with the wasm32 std
// (the machine and CI's Rust step have them).
func TestPluginNewFromNothingRust(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two Rust plugins")
	}
	if _, err := os.Stat("/usr/bin/rustc"); err != nil {
		t.Skip("no /usr/bin/rustc (apt: rustc libstd-rust-dev-wasm32 lld-14)")
	}
	if libs, _ := filepath.Glob("/usr/lib/rustlib/wasm32-unknown-unknown/lib/*"); len(libs) == 0 {
		t.Skip("no wasm32 std for /usr/bin/rustc (apt: libstd-rust-dev-wasm32)")
	}
	for _, kind := range []string{"estimator", "policy"} {
		t.Run(kind, func(t *testing.T) { fromNothing(t, "rust", kind) })
	}
}

// TestPluginNewFromNothingAssemblyScript installs the pinned asc from the
// npm registry (build.sh's npm ci), so it runs only when PURSER_TEST_NPM=1:
// .ci/run sets it in its AssemblyScript step, where npm is known to work.
func TestPluginNewFromNothingAssemblyScript(t *testing.T) {
	if testing.Short() {
		t.Skip("installs asc and builds two AssemblyScript plugins")
	}
	if os.Getenv("PURSER_TEST_NPM") != "1" {
		t.Skip("set PURSER_TEST_NPM=1 to let the test run npm ci (it fetches assemblyscript from the registry)")
	}
	for _, tool := range []string{"node", "npm", "npx"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("PURSER_TEST_NPM=1 but %s is missing: %v", tool, err)
		}
	}
	for _, kind := range []string{"estimator", "policy"} {
		t.Run(kind, func(t *testing.T) { fromNothing(t, "assemblyscript", kind) })
	}
}
