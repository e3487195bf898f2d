package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ascAbortModule is the smallest meterable module with AssemblyScript's
// default import, env.abort(message, fileName, line, column).
var ascAbortModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x08, 0x01, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x00, // type 0: (i32 i32 i32 i32) -> ()
	0x02, 0x0d, 0x01, 0x03, 'e', 'n', 'v', 0x05, 'a', 'b', 'o', 'r', 't', 0x00, 0x00, // import env.abort, type 0
	0x05, 0x03, 0x01, 0x00, 0x01, // one memory of 1 page, no maximum
	0x07, 0x0a, 0x01, 0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00, // export it as memory
}

// ABI.md section 10 quotes the error an AssemblyScript module built with
// asc's defaults gets; the host must say exactly that.
func TestDocAssemblyScriptAbortImportError(t *testing.T) {
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "abi", "ABI.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(doc, []byte("<!-- assemblyscript-abort-error:"))
	if !ok {
		t.Fatal("ABI.md: assemblyscript-abort-error marker not found")
	}
	block := strings.Split(string(after), "```")
	if len(block) < 2 {
		t.Fatal("ABI.md: no code block after the assemblyscript-abort-error marker")
	}
	want := strings.TrimSpace(strings.TrimPrefix(block[1], "text"))

	t.Chdir(t.TempDir())
	if err := os.MkdirAll("build", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("build/release.wasm", ascAbortModule, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"plugin", "inspect", "build/release.wasm"}, &out, &errOut)
	if !strings.Contains(out.String()+errOut.String(), want) {
		t.Errorf("plugin inspect: exit %d, output does not contain the documented error %q:\n%s%s", code, want, out.String(), errOut.String())
	}
}
