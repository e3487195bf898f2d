package host

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWasmSum checks, without any wasm toolchain, that every committed
// .wasm and the sources it was built from still match wasm.sum (written by
// scripts/wasm-build.sh), and that no artifact or source is missing from
// it. A source edited without a rebuild fails here; scripts/wasm-check.sh
// additionally rebuilds and compares bytes.
func TestWasmSum(t *testing.T) {
	root := filepath.Join("..")
	f, err := os.Open(filepath.Join(root, "wasm.sum"))
	if err != nil {
		t.Fatalf("%v: run scripts/wasm-build.sh", err)
	}
	defer f.Close()
	outs := map[string]bool{} // artifacts listed
	srcs := map[string]bool{} // sources listed
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 4 || (fields[0] != "src" && fields[0] != "out") {
			t.Fatalf("wasm.sum:%d: malformed line %q", line, text)
		}
		kind, art, want, path := fields[0], fields[1], fields[2], fields[3]
		got, err := fileSHA256(filepath.Join(root, path))
		switch {
		case err != nil:
			t.Errorf("wasm.sum:%d: %s of %s: %v (run scripts/wasm-build.sh)", line, kind, art, err)
		case got != want && kind == "src":
			t.Errorf("%s changed since %s was built: run scripts/wasm-build.sh and commit the .wasm and wasm.sum", path, art)
		case got != want:
			t.Errorf("%s is not the artifact recorded in wasm.sum: run scripts/wasm-build.sh and commit", art)
		}
		if kind == "out" {
			outs[art] = true
		} else {
			srcs[path] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, tree := range []string{"testplugins", "plugins", "sdk"} {
		checkTreeListed(t, root, tree, outs, srcs)
	}
}

// checkTreeListed finds artifacts and sources wasm.sum does not know.
func checkTreeListed(t *testing.T, root, tree string, outs, srcs map[string]bool) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(root, tree), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return fs.SkipDir
			}
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		dir := filepath.ToSlash(filepath.Dir(rel))
		switch {
		case d.IsDir() && (d.Name() == "node_modules" || d.Name() == "target"):
			return fs.SkipDir
		case d.IsDir():
			return nil
		case strings.HasSuffix(rel, ".wat") && !outs[strings.TrimSuffix(rel, ".wat")+".wasm"]:
			t.Errorf("%s has no artifact in wasm.sum: run scripts/wasm-build.sh", rel)
		case d.Name() == "wasm.build" && !outs[dir+"/"+filepath.Base(dir)+".wasm"]:
			t.Errorf("%s has no artifact in wasm.sum: run scripts/wasm-build.sh", dir)
		case strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") && isWasmBuildDir(root, dir) &&
			buildsForWasip1(p) && !srcs[rel]:
			t.Errorf("%s is not among the sources wasm.sum recorded: run scripts/wasm-build.sh", rel)
		case strings.HasSuffix(rel, ".wasm") && !outs[rel]:
			t.Errorf("%s is not listed in wasm.sum (stray or unbuilt artifact)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func isWasmBuildDir(root, dir string) bool {
	_, err := os.Stat(filepath.Join(root, dir, "wasm.build"))
	return err == nil
}

// buildsForWasip1 is a cheap reading of build constraints: a file without
// one, or whose constraint names wasip1 positively, is part of the guest.
func buildsForWasip1(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "package ") {
			break
		}
		if c, ok := strings.CutPrefix(line, "//go:build "); ok {
			return strings.Contains(c, "wasip1") && !strings.Contains(c, "!wasip1")
		}
	}
	return true
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:]), nil
}
