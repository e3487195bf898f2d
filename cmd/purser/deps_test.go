package main

import (
	"runtime/debug"
	"testing"
)

// Config is read with koanf v2 and its split provider/parser modules only:
// koanf v1 (one module holding every provider) must not creep back in
// beside v2, where the two would load YAML with different yaml libraries.
func TestConfigUsesOnlyKoanfV2Modules(t *testing.T) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build info in this test binary")
	}
	want := map[string]bool{
		"github.com/knadh/koanf/v2":                false,
		"github.com/knadh/koanf/parsers/yaml":      false,
		"github.com/knadh/koanf/providers/file":    false,
		"github.com/knadh/koanf/providers/confmap": false,
		"github.com/knadh/koanf/providers/env/v2":  false,
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/knadh/koanf" {
			t.Errorf("koanf v1 (%s %s) is linked; use koanf/v2 and its split modules", dep.Path, dep.Version)
		}
		if _, ok := want[dep.Path]; ok {
			want[dep.Path] = true
		}
	}
	for path, seen := range want {
		if !seen {
			t.Errorf("%s is not linked; config loading should use it", path)
		}
	}
}
