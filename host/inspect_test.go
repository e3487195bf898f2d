package host

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

// TestInspectPluginThatNeedsConfig: the shipped max-cost-per-call refuses
// {} in purser_init; Inspect still reports its manifest and schema, the
// guest's reason, and the required key the config lacks.
func TestInspectPluginThatNeedsConfig(t *testing.T) {
	file := filepath.Join("..", "plugins", "policies", "max-cost-per-call", "max-cost-per-call.wasm")
	h, _ := newTestHost(t, Config{})
	for _, c := range []struct {
		config  string
		missing []string
	}{{"", []string{"limit_usd"}}, {`{"limit":"0.10"}`, []string{"limit_usd"}}, {`{"limit_usd":"ten"}`, nil}} {
		in, err := h.Inspect(context.Background(), Spec{File: file, Config: []byte(c.config)})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(in.LoadError, ErrInit) || in.ConfigRefused == "" {
			t.Fatalf("config %q: want an init refusal, got %v (%q)", c.config, in.LoadError, in.ConfigRefused)
		}
		if in.Manifest == nil || in.Manifest.Name != "max-cost-per-call" || len(in.Manifest.ConfigSchema) == 0 {
			t.Fatalf("config %q: manifest %+v", c.config, in.Manifest)
		}
		if !slices.Equal(in.ConfigMissing, c.missing) {
			t.Errorf("config %q: missing %q, want %q", c.config, in.ConfigMissing, c.missing)
		}
	}
}

func TestMissingKeys(t *testing.T) {
	schema := []byte(`{"type":"object","required":["a","b"]}`)
	for _, c := range []struct {
		schema, config string
		want           []string
	}{
		{string(schema), "", []string{"a", "b"}},
		{string(schema), `{"b":null}`, []string{"a"}},
		{string(schema), `{"a":1,"b":2,"c":3}`, nil},
		{string(schema), `[1]`, nil},   // not an object: the guest says why
		{`{"type":"object"}`, "", nil}, // nothing required
		{`"not a schema"`, `{}`, nil},  // unreadable schema
	} {
		if got := missingKeys([]byte(c.schema), []byte(c.config)); !slices.Equal(got, c.want) {
			t.Errorf("schema %s config %q: got %q, want %q", c.schema, c.config, got, c.want)
		}
	}
}
