package pricing

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// The embedded LiteLLM snapshot (see litellm/ORIGIN.md). embed.FS is
// read-only, so this is not mutable state.
//
//go:embed litellm/model_prices_2026-08-01.json
var snapshotFS embed.FS

// SnapshotDate is the date of the embedded LiteLLM table.
const (
	SnapshotDate   = "2026-08-01"
	snapshotFile   = "litellm/model_prices_2026-08-01.json"
	snapshotSHA256 = "f3586896abe7b20218409b88d8f9b9afe85b85c0de386e8ec7a0f14ac7f790ba"
)

// Snapshot returns the embedded price file's bytes.
func Snapshot() []byte {
	b, err := snapshotFS.ReadFile(snapshotFile)
	if err != nil {
		panic(err) // the file is compiled in; missing means a broken build
	}
	return b
}

// Embedded builds the table from the embedded snapshot.
func Embedded(opt Options) (*Table, error) {
	return build(Snapshot(), Origin{Source: "embedded LiteLLM snapshot " + SnapshotDate, SnapshotDate: SnapshotDate}, opt)
}

// LoadFile builds the table from a LiteLLM price file: it replaces the
// snapshot entirely.
func LoadFile(path string, opt Options) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("price file: %w", err)
	}
	return build(data, Origin{Source: path, File: path}, opt)
}

// Load is Embedded when path is empty, else LoadFile.
func Load(path string, opt Options) (*Table, error) {
	if path == "" {
		return Embedded(opt)
	}
	return LoadFile(path, opt)
}

func build(data []byte, origin Origin, opt Options) (*Table, error) {
	start := time.Now()
	name := origin.File
	if name == "" {
		name = snapshotFile
	}
	entries, skipped, err := Parse(data, name)
	if err != nil {
		return nil, err
	}
	origin.SHA256, origin.Skipped, origin.LoadTime = sha256Hex(data), skipped, time.Since(start)
	t, err := New(entries, origin, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", origin.Source, err)
	}
	return t, nil
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
