// Package bundle reads, verifies, builds and fetches plugin bundles
// (docs/bundles.md): a directory or .tar.gz holding plugins, their config
// and their signatures under one manifest, bundle.json, which lists the
// sha256 of every other file. The manifest's digest (sha256 of its
// canonical JSON) names the bundle and is what an optional detached
// signature, bundle.json.sig, covers. Everything is bounded (Limits), and a
// bundle that fails any check is refused whole.
package bundle

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/purser-dev/purser/signing"
)

// Format is the manifest format this package reads and writes.
const Format = "purser-bundle-v1"

// File names inside a bundle.
const (
	ManifestFile  = "bundle.json"
	SignatureFile = ManifestFile + signing.SigSuffix
)

// Refusals; errors wrap one of them and name the file or field.
var (
	ErrManifest = errors.New("bad bundle manifest")
	ErrDigest   = errors.New("bundle file digest does not match")
	ErrMissing  = errors.New("bundle file missing")
	ErrUnlisted = errors.New("bundle file not in the manifest")
	ErrUnsafe   = errors.New("unsafe bundle entry")
	ErrLimit    = errors.New("bundle over a limit")
	ErrPinned   = errors.New("bundle digest is not the pinned one")
)

// Manifest is bundle.json.
type Manifest struct {
	Format   string  `json:"format"`
	Revision string  `json:"revision"`
	Plugins  []Entry `json:"plugins"`
	// Files maps every file of the bundle but the manifest and its
	// signature to its sha256 (64 lowercase hex digits).
	Files map[string]string `json:"files"`
}

// Entry configures one plugin of the bundle, like plugins.entries.
type Entry struct {
	Path      string          `json:"path"` // a .wasm file of the bundle
	Config    json.RawMessage `json:"config,omitempty"`
	Order     int             `json:"order,omitempty"`
	FailMode  string          `json:"fail_mode,omitempty"` // closed (default) or open
	Isolation string          `json:"isolation,omitempty"` // tenant (default) or shared
}

// ParseManifest decodes bundle.json strictly (unknown fields are refused)
// and checks it; it does not look at the files.
func ParseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrManifest, ManifestFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: %s: data after the JSON object", ErrManifest, ManifestFile)
	}
	return &m, m.validate()
}

func (m *Manifest) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s %s", ErrManifest, ManifestFile, field, fmt.Sprintf(format, args...))
	}
	if m.Format != Format {
		return bad("format", "must be %q, got %q", Format, m.Format)
	}
	if len(m.Revision) > 128 {
		return bad("revision", "is over 128 bytes")
	}
	for name, sum := range m.Files {
		if err := checkName(name); err != nil {
			return bad("files", "%v", err)
		}
		if name == ManifestFile || name == SignatureFile {
			return bad("files", "must not list %s", name)
		}
		if !isHex64(sum) {
			return bad(fmt.Sprintf("files[%q]", name), "must be 64 lowercase hex digits, got %q", sum)
		}
	}
	seen := map[string]bool{}
	for i, e := range m.Plugins {
		field := fmt.Sprintf("plugins[%d]", i)
		switch {
		case !strings.HasSuffix(e.Path, ".wasm"):
			return bad(field+".path", "must name a .wasm file, got %q", e.Path)
		case m.Files[e.Path] == "":
			return bad(field+".path", "%q is not listed in files", e.Path)
		case seen[e.Path]:
			return bad(field+".path", "%q is listed twice", e.Path)
		case e.FailMode != "" && e.FailMode != "closed" && e.FailMode != "open":
			return bad(field+".fail_mode", "must be closed or open, got %q", e.FailMode)
		case e.Isolation != "" && e.Isolation != "tenant" && e.Isolation != "shared":
			return bad(field+".isolation", "must be tenant or shared, got %q", e.Isolation)
		}
		if len(e.Config) > 0 && !bytes.HasPrefix(bytes.TrimSpace(e.Config), []byte("{")) {
			return bad(field+".config", "must be a JSON object")
		}
		seen[e.Path] = true
	}
	return nil
}

// Digest is the bundle's identity: the hex sha256 of bundle.json in
// canonical JSON (sorted keys, no insignificant space), as signing uses
// for plugin manifests, so re-indenting the file does not change it.
func Digest(manifestJSON []byte) (string, error) {
	d, err := signing.ManifestDigest(manifestJSON)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrManifest, ManifestFile, err)
	}
	return hex.EncodeToString(d[:]), nil
}

// checkName refuses names that could escape the folder a bundle is
// written to: absolute, "..", backslashes, empty or unclean paths.
func checkName(name string) error {
	switch {
	case name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") || strings.Contains(name, ":"):
		return fmt.Errorf("%w: %q is not a relative path", ErrUnsafe, name)
	case path.Clean(name) != name || name == "." || name == ".." || strings.HasPrefix(name, "../"):
		return fmt.Errorf("%w: %q is not a clean path inside the bundle", ErrUnsafe, name)
	}
	return nil
}

func isHex64(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
