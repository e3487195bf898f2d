package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// durationKeys lists the key path of every time.Duration in Config, found
// by reflection so a new duration key is covered without editing a table.
func durationKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		path := prefix + f.Tag.Get("koanf")
		switch ft := f.Type; {
		case ft == reflect.TypeFor[time.Duration]():
			out = append(out, path)
		case ft.Kind() == reflect.Struct:
			out = append(out, durationKeys(ft, path+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, durationKeys(ft.Elem(), path+"[0].")...)
		}
	}
	return out
}

// yamlAt writes value at a key path as flow-style YAML:
// "a.b[0].c" -> {a: {b: [{c: value}]}}.
func yamlAt(path, value string) string {
	head, rest, nested := strings.Cut(path, ".")
	inner := value
	if nested {
		inner = yamlAt(rest, value)
	}
	if name, ok := strings.CutSuffix(head, "[0]"); ok {
		return "{" + name + ": [" + inner + "]}"
	}
	return "{" + head + ": " + inner + "}"
}

func TestBareNumberDurationsAreRefusedNamingTheKey(t *testing.T) {
	keys := durationKeys(reflect.TypeFor[Config](), "")
	for _, must := range []string{"reservations.ttl", "approvals.ttl", "server.shutdown_timeout", "notifier.webhook.timeout",
		"plugins.entries[0].limits.call_timeout"} {
		if !contains(keys, must) {
			t.Fatalf("reflection missed %s (found %v)", must, keys)
		}
	}
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			file := writeFile(t, "d.yaml", yamlAt(key, "300")+"\n")
			_, err := loadConfig(file, nil)
			if err == nil || !strings.Contains(err.Error(), key+": ") || !strings.Contains(err.Error(), `"300s"`) {
				t.Errorf("YAML %s: 300 gave %v; want a problem at %s suggesting \"300s\"", key, err, key)
			}
			if strings.Contains(key, "[") {
				return // environment variables cannot address list items
			}
			t.Setenv("PURSER_"+strings.ToUpper(strings.ReplaceAll(key, ".", "__")), "300")
			_, err = loadConfig("", nil)
			if err == nil || !strings.Contains(err.Error(), key+": ") || !strings.Contains(err.Error(), `"300s"`) {
				t.Errorf("env %s=300 gave %v; want a problem at %s suggesting \"300s\"", key, err, key)
			}
		})
	}
}

func TestDurationsWithUnitsAndBareZeroAreAccepted(t *testing.T) {
	file := writeFile(t, "d.yaml", "reservations: {ttl: 300s, ttl_max: 2h}\napprovals: {ttl: 1m30s}\nplugins: {limits: {call_timeout: 0}}\n")
	t.Setenv("PURSER_SERVER__SHUTDOWN_TIMEOUT", "20s")
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Reservation.TTL != 300*time.Second || cfg.Reservation.TTLMax != 2*time.Hour || cfg.Approvals.TTL != 90*time.Second ||
		cfg.Plugins.Limits.CallTimeout != 0 || cfg.Server.ShutdownTimeout != 20*time.Second {
		t.Errorf("decoded %+v %+v %+v %+v", cfg.Reservation, cfg.Approvals, cfg.Plugins.Limits, cfg.Server)
	}
	if _, err := loadConfig(writeFile(t, "bad.yaml", "reservations: {ttl: soon}\n"), nil); err == nil ||
		!strings.Contains(err.Error(), "reservations.ttl: ") {
		t.Errorf("a non-duration must name its key: %v", err)
	}
}
