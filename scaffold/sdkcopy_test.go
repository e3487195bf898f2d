package scaffold

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the SDK copies under _sdk from sdk/ and abi/")

// sdkSources maps each file of the embedded SDK copies (below _sdk) to the
// repository file it copies: the non-test sources of abi and the three SDKs.
func sdkSources(t *testing.T) map[string]string {
	t.Helper()
	want := map[string]string{
		"go/sdk/go/go.mod.in":                 "sdk/go/go.mod",
		"go/sdk/go/README.md":                 "sdk/go/README.md",
		"go/abi/ABI.md":                       "abi/ABI.md",
		"rust/purser.rs":                      "sdk/rust/src/purser.rs",
		"assemblyscript/pursertest.js":        "sdk/assemblyscript/pursertest.js",
		"assemblyscript/package-lock.json":    "sdk/assemblyscript/package-lock.json",
		"assemblyscript/asconfig.plugin.json": "sdk/assemblyscript/asconfig.plugin.json",
		"assemblyscript/README.md":            "sdk/assemblyscript/README.md",
	}
	glob := func(dst, srcDir, pattern string) {
		matches, err := filepath.Glob(filepath.Join("..", srcDir, pattern))
		if err != nil || len(matches) == 0 {
			t.Fatalf("%s/%s: no files (%v)", srcDir, pattern, err)
		}
		for _, m := range matches {
			if !strings.HasSuffix(m, "_test.go") {
				want[path.Join(dst, filepath.Base(m))] = path.Join(srcDir, filepath.Base(m))
			}
		}
	}
	glob("go/abi", "abi", "*.go")
	for _, pkg := range []string{"purser", "pursertest", "usd"} {
		glob("go/sdk/go/"+pkg, "sdk/go/"+pkg, "*.go")
	}
	glob("assemblyscript/assembly", "sdk/assemblyscript/assembly", "*.ts")
	return want
}

// TestSDKCopiesEqualSources fails when sdk/ or abi/ changed and the copies
// plugin new embeds did not: run `go test ./scaffold -run SDKCopies -update`.
func TestSDKCopiesEqualSources(t *testing.T) {
	want := sdkSources(t)
	if *update {
		for _, lang := range Languages {
			if err := os.RemoveAll(filepath.Join("_sdk", lang)); err != nil {
				t.Fatal(err)
			}
		}
		for dst, src := range want {
			b, err := os.ReadFile(filepath.Join("..", src))
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join("_sdk", filepath.FromSlash(dst))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var have []string
	err := fs.WalkDir(os.DirFS("_sdk"), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && p != "README.md" {
			have = append(have, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(have)
	for _, p := range have {
		src, ok := want[p]
		if !ok {
			t.Errorf("_sdk/%s copies nothing in the repository (stale? rerun with -update)", p)
			continue
		}
		delete(want, p)
		a, _ := os.ReadFile(filepath.Join("_sdk", filepath.FromSlash(p)))
		b, err := os.ReadFile(filepath.Join("..", src))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("_sdk/%s differs from %s (%v): run go test ./scaffold -run SDKCopies -update", p, src, err)
		}
	}
	for p, src := range want {
		t.Errorf("_sdk/%s missing (a copy of %s): run go test ./scaffold -run SDKCopies -update", p, src)
	}
}
