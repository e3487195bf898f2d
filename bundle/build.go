package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/purser-dev/purser/signing"
)

// BuildOptions say how Build completes a bundle folder.
type BuildOptions struct {
	Revision string             // overrides bundle.json's revision when set
	Key      ed25519.PrivateKey // signs the manifest when set
	Limits   Limits
}

// Build reads dir (which holds bundle.json with its plugins; files need
// not be listed), fills the manifest's files with every other file's
// sha256, signs it when asked, verifies the result and returns it. The
// folder is not changed.
func Build(dir string, opt BuildOptions) (*Bundle, error) {
	files, err := ReadDir(dir, opt.Limits)
	if err != nil {
		return nil, err
	}
	raw, ok := files[ManifestFile]
	if !ok {
		return nil, fmt.Errorf("%w: %s in %s (it lists the plugins)", ErrMissing, ManifestFile, dir)
	}
	delete(files, SignatureFile) // a stale signature is replaced, or dropped
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields() // a misspelt "plugins" must not build an empty bundle
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrManifest, ManifestFile, err)
	}
	if m.Format == "" {
		m.Format = Format
	}
	if opt.Revision != "" {
		m.Revision = opt.Revision
	}
	m.Files = FileDigests(files)
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	files[ManifestFile] = append(out, '\n')
	if opt.Key != nil {
		digest, err := Digest(files[ManifestFile])
		if err != nil {
			return nil, err
		}
		if files[SignatureFile], err = Sign(opt.Key, digest); err != nil {
			return nil, err
		}
	}
	return Verify(files, Options{Limits: opt.Limits, TrustedKeys: trustOwn(opt.Key)})
}

func trustOwn(k ed25519.PrivateKey) []signing.TrustedKey {
	if k == nil {
		return nil
	}
	pub, _ := k.Public().(ed25519.PublicKey)
	return []signing.TrustedKey{{Public: pub}}
}

// WriteTarGz writes the bundle's files as a .tar.gz, sorted, with fixed
// times and modes, so the same bundle always makes the same bytes.
func (b *Bundle) WriteTarGz(w io.Writer) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, name := range sortedNames(b.Files) {
		data := b.Files[name]
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg,
			ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, bytes.NewReader(data)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
