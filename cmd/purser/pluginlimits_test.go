package main

import (
	"strings"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

// TestPluginLoadLimitKeys: the plugins.limits load-limit keys, the reload
// and quote keys reach the host and bridge settings, per plugin too, and
// bad values are problems naming the key.
func TestPluginLoadLimitKeys(t *testing.T) {
	file := writeFile(t, "purser.yaml", `
plugins:
  reload_manifest_change_allowed: true
  estimate_per_call_max_usd: "25.50"
  limits: {table_elements_max: 100, globals_max: 7, block_nesting_depth_max: 64, code_bytes_max: 4096, locals_total_max: 99}
  entries:
    - {path: x.wasm, limits: {function_body_bytes_max: 512, element_entries_total_max: 9}}
`)
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cfg.build()
	if err != nil {
		t.Fatal(err)
	}
	m := b.limits.ModuleLimits
	if m.TableElementsMax != 100 || m.GlobalsMax != 7 || m.BlockNestingDepthMax != 64 || m.CodeBytesMax != 4096 || m.LocalsTotalMax != 99 {
		t.Errorf("host limits: %+v", m)
	}
	if pm := b.plugins[0].Limits.ModuleLimits; pm.FunctionBodyBytesMax != 512 || pm.ElementEntriesTotalMax != 9 {
		t.Errorf("per-plugin limits: %+v", pm)
	}
	if !cfg.Plugins.ReloadManifestChangeAllowed || b.estimatePerCallMax != enforcer.MustParseUSD("25.50") {
		t.Errorf("reload %v, estimate max %s", cfg.Plugins.ReloadManifestChangeAllowed, b.estimatePerCallMax)
	}

	file = writeFile(t, "bad.yaml", `
plugins:
  estimate_per_call_max_usd: "-1"
  limits: {globals_max: -1}
`)
	if cfg, err = loadConfig(file, nil); err != nil {
		t.Fatal(err)
	}
	_, err = cfg.build()
	for _, key := range []string{"plugins.limits.globals_max", "plugins.estimate_per_call_max_usd"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("bad %s not reported: %v", key, err)
		}
	}
}

// TestInspectSuggestsConfigOnlyWhenInitRefusedIt: the --config hint used
// to follow every refusal (a wrong ABI version, a load limit...).
func TestInspectSuggestsConfigOnlyWhenInitRefusedIt(t *testing.T) {
	for file, hint := range map[string]bool{
		"testplugins/badinit.wasm":       true,
		"testplugins/badversion.wasm":    false,
		"testplugins/limit-globals.wasm": false,
		"testplugins/unknownimport.wasm": false,
	} {
		code, out, _ := cli(t, "plugin", "inspect", file)
		if code == 0 || !strings.Contains(out, "INVALID") || strings.Contains(out, "--config") != hint {
			t.Errorf("%s: exit %d, hint expected %v:\n%s", file, code, hint, out)
		}
	}
}
