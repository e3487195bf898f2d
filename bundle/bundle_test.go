package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purser-dev/purser/signing"
)

const authorManifest = `{"format": "purser-bundle-v1", "revision": "r1",
 "plugins": [{"path": "est.wasm", "config": {"usd": "0.01"}, "order": 2, "fail_mode": "open"}]}`

// writeFolder lays out a bundle source folder.
func writeFolder(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func build(t *testing.T, opt BuildOptions) *Bundle {
	t.Helper()
	dir := writeFolder(t, map[string]string{ManifestFile: authorManifest, "est.wasm": "\x00asm-one",
		"est.wasm.sig": "{}", "conf/notes.txt": "hello"})
	b, err := Build(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tarGz(t *testing.T, b *Bundle) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.WriteTarGz(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBuildRoundTrip(t *testing.T) {
	b := build(t, BuildOptions{Revision: "r7"})
	raw := tarGz(t, b)
	if again := tarGz(t, b); !bytes.Equal(raw, again) {
		t.Fatal("the same bundle made different archives")
	}
	files, err := ReadTarGz(bytes.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(files, Options{Digest: b.Digest})
	if err != nil {
		t.Fatal(err)
	}
	m := got.Manifest
	if m.Revision != "r7" || len(m.Files) != 3 || m.Plugins[0].FailMode != "open" || m.Plugins[0].Order != 2 ||
		compact(t, m.Plugins[0].Config) != `{"usd":"0.01"}` {
		t.Fatalf("manifest after the round trip: %+v", m)
	}
	if got.Digest != b.Digest || got.SignedBy != "" {
		t.Fatalf("digest %s signed %q, want %s unsigned", got.Digest, got.SignedBy, b.Digest)
	}
	out := t.TempDir()
	if err := got.WriteDir(out); err != nil {
		t.Fatal(err)
	}
	if fromDir, err := Read(out, Limits{}); err != nil || len(fromDir) != 4 {
		t.Fatalf("reading the written folder: %d files, %v", len(fromDir), err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	b := build(t, BuildOptions{})
	cases := []struct {
		name   string
		edit   func(Files)
		opt    Options
		want   error
		naming string
	}{
		{"tampered plugin", func(f Files) { f["est.wasm"] = []byte("\x00asm-two") }, Options{}, ErrDigest, `"est.wasm"`},
		{"missing file", func(f Files) { delete(f, "conf/notes.txt") }, Options{}, ErrMissing, `"conf/notes.txt"`},
		{"unlisted file", func(f Files) { f["extra.wasm"] = []byte("x") }, Options{}, ErrUnlisted, `"extra.wasm"`},
		{"no manifest", func(f Files) { delete(f, ManifestFile) }, Options{}, ErrMissing, ManifestFile},
		{"other pinned digest", func(Files) {}, Options{Digest: strings.Repeat("0", 64)}, ErrPinned, ManifestFile},
		{"unsigned but required", func(Files) {}, Options{RequireSignature: true}, signing.ErrUnsigned, SignatureFile},
		{"bad fail mode", func(f Files) {
			f[ManifestFile] = bytes.Replace(f[ManifestFile], []byte(`"open"`), []byte(`"ajar"`), 1)
		}, Options{}, ErrManifest, "plugins[0].fail_mode"},
		{"unknown field", func(f Files) {
			f[ManifestFile] = bytes.Replace(f[ManifestFile], []byte(`"revision"`), []byte(`"revison"`), 1)
		}, Options{}, ErrManifest, "revison"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := Files{}
			for k, v := range b.Files {
				files[k] = v
			}
			c.edit(files)
			_, err := Verify(files, c.opt)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.naming) {
				t.Fatalf("got %v, want %v naming %s", err, c.want, c.naming)
			}
		})
	}
}

func TestSignature(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	id := signing.KeyID(pub)
	b := build(t, BuildOptions{Key: priv})
	if b.SignedBy != id {
		t.Fatalf("signed by %q, want %s", b.SignedBy, id)
	}
	trusted := []signing.TrustedKey{{Public: otherPub}, {Public: pub}}
	if got, err := Verify(b.Files, Options{TrustedKeys: trusted, RequireSignature: true}); err != nil || got.SignedBy != id {
		t.Fatalf("rotation (two trusted keys): %v", err)
	}
	resigned := func(edit func(Files)) Files {
		f := Files{}
		for k, v := range b.Files {
			f[k] = v
		}
		edit(f)
		return f
	}
	for _, c := range []struct {
		name  string
		files Files
		keys  []signing.TrustedKey
		want  error
	}{
		{"unknown key", b.Files, []signing.TrustedKey{{Public: otherPub}}, signing.ErrUnknownKey},
		{"revoked key", b.Files, []signing.TrustedKey{{Public: pub, Revoked: true}}, signing.ErrRevokedKey},
		{"manifest edited after signing", resigned(func(f Files) {
			f[ManifestFile] = bytes.Replace(f[ManifestFile], []byte(`"r1"`), []byte(`"r2"`), 1)
		}), trusted, signing.ErrDigestMismatch},
		{"signature edited", resigned(func(f Files) {
			f[SignatureFile] = bytes.Replace(f[SignatureFile], []byte(`"signature": "`), []byte(`"signature": "AA`), 1)
		}), trusted, signing.ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(c.files, Options{TrustedKeys: c.keys})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), id) {
				t.Fatalf("got %v, want %v naming key id %s", err, c.want, id)
			}
		})
	}
}

type tarEntry struct {
	name, link string
	typ        byte
	data       string
	size       int64 // declared; 0 means len(data)
}

func rawTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTarRefusals(t *testing.T) {
	big := strings.Repeat("a", 2000)
	many := make([]tarEntry, 5)
	for i := range many {
		many[i] = tarEntry{name: string(rune('a'+i)) + ".wasm", data: "x"}
	}
	for _, c := range []struct {
		name    string
		archive []byte
		lim     Limits
		want    error
		naming  string
	}{
		{"dot-dot", rawTar(t, tarEntry{name: "../evil.wasm", data: "x"}), Limits{}, ErrUnsafe, "../evil.wasm"},
		{"inner dot-dot", rawTar(t, tarEntry{name: "a/../../evil", data: "x"}), Limits{}, ErrUnsafe, "a/../../evil"},
		{"absolute", rawTar(t, tarEntry{name: "/etc/passwd", data: "x"}), Limits{}, ErrUnsafe, "/etc/passwd"},
		{"symlink", rawTar(t, tarEntry{name: "est.wasm", typ: tar.TypeSymlink, link: "/etc/passwd"}), Limits{}, ErrUnsafe, "est.wasm"},
		{"hard link", rawTar(t, tarEntry{name: "est.wasm", typ: tar.TypeLink, link: "x"}), Limits{}, ErrUnsafe, "est.wasm"},
		{"duplicate", rawTar(t, tarEntry{name: "a", data: "1"}, tarEntry{name: "./a", data: "2"}), Limits{}, ErrUnsafe, `"a"`},
		{"too many files", rawTar(t, many...), Limits{FilesMax: 4}, ErrLimit, "4 files"},
		{"file too large", rawTar(t, tarEntry{name: "big.wasm", data: big}), Limits{FileBytesMax: 1000}, ErrLimit, "big.wasm"},
		{"total too large", rawTar(t, tarEntry{name: "a", data: big}, tarEntry{name: "b", data: big}), Limits{TotalBytesMax: 3000}, ErrLimit, "total"},
		{"manifest too large", rawTar(t, tarEntry{name: ManifestFile, data: big}), Limits{ManifestBytesMax: 100}, ErrLimit, ManifestFile},
		{"archive too large", rawTar(t, tarEntry{name: "a", data: big}), Limits{ArchiveBytesMax: 50}, ErrLimit, "archive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadTarGz(bytes.NewReader(c.archive), c.lim)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.naming) {
				t.Fatalf("got %v, want %v naming %s", err, c.want, c.naming)
			}
		})
	}
}

func TestDirRefusesSymlink(t *testing.T) {
	dir := writeFolder(t, map[string]string{ManifestFile: authorManifest, "est.wasm": "x"})
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link.wasm")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if _, err := ReadDir(dir, Limits{}); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "link.wasm") {
		t.Fatalf("got %v, want ErrUnsafe naming link.wasm", err)
	}
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestBuildRefusesUnknownField(t *testing.T) {
	dir := writeFolder(t, map[string]string{ManifestFile: `{"plugin": [{"path": "est.wasm"}]}`, "est.wasm": "x"})
	if _, err := Build(dir, BuildOptions{}); !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), `"plugin"`) {
		t.Fatalf("got %v, want ErrManifest naming \"plugin\"", err)
	}
}
