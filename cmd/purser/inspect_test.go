package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// A plugin whose purser_init needs config is described, not called
// INVALID: manifest, config schema and what is missing, exit 0. Given a
// --config it refuses, it is invalid (exit 1) and still described.
func TestPluginInspectNeedsConfig(t *testing.T) {
	const file = "plugins/policies/max-cost-per-call/max-cost-per-call.wasm"
	code, out, _ := cli(t, "plugin", "inspect", file)
	for _, want := range []string{"name:     max-cost-per-call", `"required":["limit_usd"]`, "missing:  limit_usd", "--config JSON"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect without config: no %q in\n%s", want, out)
		}
	}
	if code != exitOK || strings.Contains(out, "INVALID") {
		t.Errorf("inspect without config: exit %d, want 0 and no INVALID:\n%s", code, out)
	}

	code, out, _ = cli(t, "plugin", "inspect", file, "--json")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK {
		t.Fatalf("inspect --json: exit %d, %v: %s", code, err, out)
	}
	if got["status"] != "needs_config" || got["valid"] != false || got["name"] != "max-cost-per-call" ||
		got["manifest"] == nil || !strings.Contains(got["config_error"].(string), "limit_usd") {
		t.Errorf("inspect --json without config: %s", out)
	}
	if missing, _ := got["config_missing"].([]any); len(missing) != 1 || missing[0] != "limit_usd" {
		t.Errorf("config_missing: %v", got["config_missing"])
	}

	code, out, _ = cli(t, "plugin", "inspect", file, "--config", `{"limit":"0.10"}`)
	if code != exitDeny || !strings.Contains(out, "INVALID") || !strings.Contains(out, "name:     max-cost-per-call") || !strings.Contains(out, "missing:  limit_usd") {
		t.Errorf("inspect with a refused config: exit %d:\n%s", code, out)
	}
}
