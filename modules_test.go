// Package purser_test runs the tests of the repository's nested modules
// (sdk/go and plugins have their own go.mod, so `go test ./...` at the root
// would otherwise stop at their borders). A go.work is not used: it changes
// the build info Go embeds in the plugins' .wasm, so the committed artifacts
// would no longer match wasm.sum.
package purser_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// nestedModules are the repository's other Go modules, relative to the root.
var nestedModules = []string{"sdk/go", "plugins"}

func TestNestedModulesPass(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the nested modules' tests are skipped")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH to run the nested modules: %v", err)
	}
	statTree(t, ".")
	for _, dir := range nestedModules {
		t.Run(dir, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), goBin, "test", "./...")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go test ./... in %s: %v\n%s", dir, err, out)
			}
			t.Logf("%s", out)
		})
	}
}

// statTree stats every file of the repository. go test caches a passing
// result against the files the test itself touched, and the go child's
// reads are invisible to it: without this, an edit in sdk/go or abi/ would
// be answered from the cache.
func statTree(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		_, err = os.Stat(path)
		return err
	})
	if err != nil {
		t.Fatalf("listing the repository for the test cache: %v", err)
	}
}
