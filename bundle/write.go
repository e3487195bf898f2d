package bundle

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteDir writes the bundle's files under dir (created if needed), each
// through a temporary file and a rename, so a reader never sees half a
// module. Names were checked when the bundle was read.
func (b *Bundle) WriteDir(dir string) error {
	for _, name := range sortedNames(b.Files) {
		if err := checkName(name); err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, b.Files[name], 0o644); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	return nil
}
