package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestEstimateExplain(t *testing.T) {
	code, out, _ := cli(t, "estimate", "--tool", "LLM", "--no-plugins", "--explain", "--params", `{"prompt":"`+strings.Repeat("x", 70_000)+`"}`)
	for _, want := range []string{"$0.00875  (source: llm)", "70000 characters / 4 = 17500 tokens", "not calibrated: estimate = base = $0.00875"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("seed rule --explain: exit %d, want %q in:\n%s", code, want, out)
		}
	}
	code, out, _ = cli(t, "estimate", "--tool", "LLM", "--no-plugins", "--explain", "--json",
		"--params", `{"prompt":"`+strings.Repeat("x", 40_000)+`","model":"gpt-4o","cache_read_tokens":4000}`)
	var got struct {
		Source  string   `json:"source"`
		Explain []string `json:"explain"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("exit %d, %q", code, out)
	}
	all := strings.Join(got.Explain, "\n")
	for _, want := range []string{"cache reads: 4000 tokens (params.cache_read_tokens)", "prior x2.00", "model gpt-4o"} {
		if !strings.Contains(all, want) {
			t.Errorf("--explain --json: want %q in %q", want, got.Explain)
		}
	}
	if got.Source != "llm+calib(prior x2.00, n=0)" {
		t.Errorf("source %q; want the prior named", got.Source)
	}
}

func TestCalibrationConfig(t *testing.T) {
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cfg.build()
	if err != nil {
		t.Fatal(err)
	}
	if q := b.enforcer.Calibration.Quantile; q != 0.95 || cfg.Calibration.SyncInterval != 30*time.Second {
		t.Errorf("defaults: quantile %v, sync %s; want 0.95 and 30s", q, cfg.Calibration.SyncInterval)
	}
	cfg.Calibration.Quantile, cfg.Calibration.SyncInterval = 1.5, 0
	_, err = cfg.build()
	for _, want := range []string{"calibration.quantile", "calibration.sync_interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad calibration config: %v; want %q named", err, want)
		}
	}
}
