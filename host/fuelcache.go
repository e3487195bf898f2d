package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// The instrumented-module cache. Instrumenting a 3 MB Go guest takes tens
// of milliseconds; with a CompilationCacheDir the result is kept on disk
// beside wazero's compiled code, keyed by the original module's digest,
// the instrumenter version and the cost table, so restarts and reloads
// neither instrument nor compile twice. (wazero's own cache is keyed by
// the bytes it compiles: the instrumented ones.) Each file ends with the
// sha256 of its content, so a torn or corrupted file is detected and
// rebuilt rather than run.

const fuelCacheDir = "purser-fuel"

// instrumented returns bin rewritten for fuel, from the disk cache when
// the host has one.
func (h *Host) instrumented(digest [32]byte, bin []byte) ([]byte, error) {
	path := h.fuelCachePath(digest)
	if path != "" {
		if out, ok := readChecked(path); ok {
			return out, nil
		}
	}
	out, err := instrument(bin, h.cfg.FuelCosts)
	if err != nil {
		return nil, err
	}
	if path != "" {
		if err := writeChecked(path, out); err != nil {
			// A cache that cannot be written costs time, not correctness.
			h.cfg.Logger.Named("purser.host").Warn("cannot cache an instrumented module", "path", path, "error", err)
		}
	}
	return out, nil
}

func (h *Host) fuelCachePath(digest [32]byte) string {
	if h.cfg.CompilationCacheDir == "" {
		return ""
	}
	name := hex.EncodeToString(digest[:]) + "-" + h.cfg.FuelCosts.key() + ".wasm"
	return filepath.Join(h.cfg.CompilationCacheDir, fuelCacheDir, name)
}

func readChecked(path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < sha256.Size {
		return nil, false
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	got := sha256.Sum256(body)
	return body, bytes.Equal(got[:], sum)
}

// writeChecked writes atomically: a temporary file renamed into place.
func writeChecked(path string, body []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	_, werr := f.Write(append(body[:len(body):len(body)], sum[:]...))
	cerr := f.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("writing %s: %v %v", f.Name(), werr, cerr)
	}
	return os.Rename(f.Name(), path)
}
