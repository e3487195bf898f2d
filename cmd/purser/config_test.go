package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purser-dev/purser/enforcer"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsBuild(t *testing.T) {
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cfg.build()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Addr != "127.0.0.1:8181" || cfg.Store.Kind != "sqlite" || cfg.Store.Path != filepath.Join("purser-data", "ledger.db") {
		t.Errorf("defaults: %+v", cfg)
	}
	if u, _ := b.enforcer.Unknown.Estimate(); u != enforcer.MustParseUSD("0.012") || b.enforcer.Tiers["HIGH"] != enforcer.USD(20, 0) {
		t.Errorf("unknown rule %s, tiers %v", u, b.enforcer.Tiers)
	}
}

func TestLayering(t *testing.T) {
	file := writeFile(t, "purser.yaml", `
server: {addr: "127.0.0.1:9000"}
store: {kind: memory}
pricing:
  table: {Read: "0.002", Custom: "0.5"}
  llm:
    aliases: [chat]
    models: {tiny: {input_usd_per_token: "1e-08", output_usd_per_token: "2e-08"}}
accounts:
  - {id: team, limit_usd: "10"}
  - {id: team/a, parent: team, percent_of_parent: 25}
`)
	t.Setenv("PURSER_SERVER__ADDR", "127.0.0.1:9001")
	t.Setenv("PURSER_LOG__LEVEL", "debug")
	cfg, err := loadConfig(file, map[string]any{"data_dir": "/tmp/x"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cfg.build()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Addr != "127.0.0.1:9001" || cfg.Log.Level != "debug" || cfg.DataDir != "/tmp/x" || cfg.Store.Kind != "memory" {
		t.Errorf("env and flags must override the file: %+v", cfg)
	}
	ec := b.enforcer
	if ec.Table["Read"] != enforcer.MustParseUSD("0.002") || ec.Table["Custom"] != enforcer.MustParseUSD("0.5") || ec.Table["Bash"] != enforcer.MustParseUSD("0.01") {
		t.Errorf("table overrides: %v", ec.Table)
	}
	if !ec.LLM.IsLLMTool("chat") || ec.LLM.Prices.PriceOf("tiny").Price.Input != 10_000_000 || ec.LLM.Prices.PriceOf("gpt-4o").Fallback {
		t.Errorf("llm rule: %+v", ec.LLM)
	}
	if len(b.accounts) != 2 || b.accounts[1].PercentOfParent != 25 || *b.accounts[0].Limit != enforcer.USD(10, 0) {
		t.Errorf("accounts: %+v", b.accounts)
	}
}

func TestValidationReportsEveryProblemWithItsPath(t *testing.T) {
	file := writeFile(t, "bad.yaml", `
server: {addr: "nonsense"}
store: {kind: cassandra}
pricing:
  table: {Read: "-1"}
  unknown: {base_usd: "0", buffer: "0.9"}
  llm: {models: {m: {output_usd_per_token: "abc"}}}
accounts:
  - {id: a, limit_usd: "NaN"}
  - {id: b, parent: ghost, tier: GOLD}
auth:
  tokens: [{name: x, sha256: "short", role: root}]
plugins:
  entries: [{path: p.wasm, fail_mode: sometimes}]
thresholds_pct: [0]
`)
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.build()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v; want *ConfigError", err)
	}
	msg := err.Error()
	for _, path := range []string{"server.addr", "store.kind", "pricing.table.Read", "pricing.unknown.base_usd", "pricing.unknown.buffer",
		"pricing.llm.models.m.input_usd_per_token", "pricing.llm.models.m.output_usd_per_token", "accounts[0].limit_usd",
		"accounts[1].parent", "accounts[1].tier", "auth.tokens[0].role", "auth.tokens[0].sha256", "plugins.entries[0].fail_mode", "thresholds_pct[0]"} {
		if !strings.Contains(msg, path+":") {
			t.Errorf("no problem reported at %s in:\n%s", path, msg)
		}
	}
}

func TestUnknownKeysAndBadFiles(t *testing.T) {
	file := writeFile(t, "typo.yaml", "sever: {addr: x}\n")
	if _, err := loadConfig(file, nil); err == nil || !strings.Contains(err.Error(), "sever") {
		t.Errorf("typo not reported: %v", err)
	}
	file = writeFile(t, "broken.yaml", "server: [unclosed\n")
	if _, err := loadConfig(file, nil); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("broken YAML error must name the file: %v", err)
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// The documented example must stay loadable and valid.
func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := loadConfig("../../examples/purser.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.build(); err != nil {
		t.Fatal(err)
	}
}

func TestNestedTyposAndForeignEnvVars(t *testing.T) {
	file := writeFile(t, "typo.yaml", "pricing:\n  unknown:\n    strcit: true\n")
	if _, err := loadConfig(file, nil); err == nil || !strings.Contains(err.Error(), "strcit") {
		t.Errorf("nested typo not reported: %v", err)
	}
	t.Setenv("PURSER_TOKEN", "client-secret")
	t.Setenv("PURSER_TEST_POSTGRES_DSN", "postgres://x")
	if _, err := loadConfig("", nil); err != nil {
		t.Errorf("PURSER_ variables that are not config broke loading: %v", err)
	}
}

func TestServerConnectionLimitsAreValidatedWithKeyPaths(t *testing.T) {
	file := writeFile(t, "limits.yaml", `
server: {read_header_timeout: 0s, read_timeout: -1s, write_timeout: 0s, idle_timeout: 0s, connections_max: 0, body_bytes_max: 0}
`)
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.build()
	for _, path := range []string{"server.read_header_timeout", "server.read_timeout", "server.write_timeout", "server.idle_timeout",
		"server.connections_max", "server.body_bytes_max"} {
		if err == nil || !strings.Contains(err.Error(), path+":") {
			t.Errorf("no problem reported at %s in: %v", path, err)
		}
	}
}

func TestWebhookConfigNeedsASecretAndValidatesWithKeyPaths(t *testing.T) {
	file := writeFile(t, "hook.yaml", `
notifier:
  webhook: {url: "hooks.example.com/x", secret: short, timeout: 0s, attempts_max: 0, queue_max: 0, backoff: 1m, backoff_max: 1s}
`)
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.build()
	for _, path := range []string{"url", "secret", "timeout", "attempts_max", "queue_max", "backoff"} {
		if err == nil || !strings.Contains(err.Error(), "notifier.webhook."+path+":") {
			t.Errorf("no problem reported at notifier.webhook.%s in: %v", path, err)
		}
	}
	file = writeFile(t, "ok.yaml", "notifier: {webhook: {url: \"https://hooks.example.com/x\"}}\n")
	t.Setenv("PURSER_NOTIFIER__WEBHOOK__SECRET", "0123456789abcdef0123")
	if cfg, err = loadConfig(file, nil); err == nil {
		_, err = cfg.build()
	}
	if err != nil || cfg.Notifier.Webhook.Secret != "0123456789abcdef0123" || cfg.Notifier.Webhook.AttemptsMax != 5 {
		t.Errorf("a URL with a secret from the environment: %v %+v", err, cfg.Notifier.Webhook)
	}
}

// A declared account whose name claims a parent it does not have is a
// config problem at its key path, not a failure inside the ledger at start.
func TestConfigAccountNameMustMatchItsParent(t *testing.T) {
	file := writeFile(t, "names.yaml", `
accounts:
  - {id: org, limit_usd: "10"}
  - {id: team-a, parent: org}
  - {id: team-a/free}
`)
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.build()
	if err == nil || !strings.Contains(err.Error(), "accounts[2].parent:") || !strings.Contains(err.Error(), `"team-a"`) {
		t.Fatalf("err = %v; want a problem at accounts[2].parent naming team-a", err)
	}
}
