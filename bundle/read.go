package bundle

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Limits bound what reading a bundle may cost. Zero fields take the
// defaults (DefaultLimits).
type Limits struct {
	FilesMax      int   // files in the bundle, manifest included
	FileBytesMax  int64 // one file, after decompression
	TotalBytesMax int64 // all files together, after decompression
	// ArchiveBytesMax caps the .tar.gz as read or downloaded.
	ArchiveBytesMax  int64
	ManifestBytesMax int64
}

// DefaultLimits fit a few dozen Go-guest plugins (about 4 MB each).
func DefaultLimits() Limits {
	return Limits{FilesMax: 256, FileBytesMax: 32 << 20, TotalBytesMax: 256 << 20,
		ArchiveBytesMax: 128 << 20, ManifestBytesMax: 1 << 20}
}

func (l Limits) or(d Limits) Limits {
	if l.FilesMax <= 0 {
		l.FilesMax = d.FilesMax
	}
	if l.FileBytesMax <= 0 {
		l.FileBytesMax = d.FileBytesMax
	}
	if l.TotalBytesMax <= 0 {
		l.TotalBytesMax = d.TotalBytesMax
	}
	if l.ArchiveBytesMax <= 0 {
		l.ArchiveBytesMax = d.ArchiveBytesMax
	}
	if l.ManifestBytesMax <= 0 {
		l.ManifestBytesMax = d.ManifestBytesMax
	}
	return l
}

// Files are a bundle's raw contents by slash-separated relative path.
type Files map[string][]byte

// collector enforces the limits while files are added.
type collector struct {
	lim   Limits
	files Files
	total int64
}

func newCollector(lim Limits) *collector {
	return &collector{lim: lim.or(DefaultLimits()), files: Files{}}
}

func (c *collector) add(name string, size int64, r io.Reader) error {
	if err := checkName(name); err != nil {
		return err
	}
	if _, dup := c.files[name]; dup {
		return fmt.Errorf("%w: %q appears twice", ErrUnsafe, name)
	}
	if len(c.files) >= c.lim.FilesMax {
		return fmt.Errorf("%w: more than %d files (at %q)", ErrLimit, c.lim.FilesMax, name)
	}
	max := c.lim.FileBytesMax
	if name == ManifestFile {
		max = c.lim.ManifestBytesMax
	}
	if size > max {
		return fmt.Errorf("%w: %q is %d bytes, over the %d-byte limit", ErrLimit, name, size, max)
	}
	// The declared size may lie (tar): read at most one byte past the limit.
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return fmt.Errorf("reading %q: %w", name, err)
	}
	if int64(len(b)) > max {
		return fmt.Errorf("%w: %q is over the %d-byte limit", ErrLimit, name, max)
	}
	c.total += int64(len(b))
	if c.total > c.lim.TotalBytesMax {
		return fmt.Errorf("%w: files total over %d bytes (at %q)", ErrLimit, c.lim.TotalBytesMax, name)
	}
	c.files[name] = b
	return nil
}

// Read reads a bundle from a directory or a .tar.gz file.
func Read(p string, lim Limits) (Files, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if st.IsDir() {
		return ReadDir(p, lim)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	return ReadTarGz(f, lim)
}

// ReadDir reads every regular file under dir. Symbolic links and other
// special files are refused, not followed.
func ReadDir(dir string, lim Limits) (Files, error) {
	c := newCollector(lim)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%w: %q is not a regular file (%s)", ErrUnsafe, rel, d.Type())
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return c.add(rel, info.Size(), f)
	})
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	return c.files, nil
}

// ReadTarGz reads a gzip-compressed tar. Only regular files and
// directories are accepted; links, devices, absolute paths and ".." are
// refused, and the archive itself is bounded by ArchiveBytesMax.
func ReadTarGz(r io.Reader, lim Limits) (Files, error) {
	c := newCollector(lim)
	lr := &io.LimitedReader{R: r, N: c.lim.ArchiveBytesMax + 1}
	zr, err := gzip.NewReader(lr)
	if err != nil {
		return nil, fmt.Errorf("bundle: not a .tar.gz: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, tarErr(lr, c.lim, err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch h.Typeflag {
		case tar.TypeDir:
			if err := checkName(strings.TrimSuffix(name, "/")); err != nil && name != "" {
				return nil, fmt.Errorf("bundle: %w", err)
			}
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("bundle: %w: %q is not a regular file (tar type %q)", ErrUnsafe, h.Name, h.Typeflag)
		}
		if err := c.add(name, h.Size, tr); err != nil {
			return nil, fmt.Errorf("bundle: %w", tarErr(lr, c.lim, err))
		}
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("bundle: %w: archive over %d bytes", ErrLimit, c.lim.ArchiveBytesMax)
	}
	return c.files, nil
}

func tarErr(lr *io.LimitedReader, lim Limits, err error) error {
	if lr.N <= 0 {
		return fmt.Errorf("%w: archive over %d bytes", ErrLimit, lim.ArchiveBytesMax)
	}
	return err
}
