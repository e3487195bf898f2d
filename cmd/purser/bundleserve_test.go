package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/bundle"
	"github.com/purser-dev/purser/host"
)

// bundleServer serves one archive at a time with its ETag.
type bundleServer struct {
	mu   sync.Mutex
	body []byte
	etag string
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Header.Get("If-None-Match") == s.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", s.etag)
	_, _ = w.Write(s.body)
}

func (s *bundleServer) serve(body []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag = body, etag
}

// archive builds a bundle of one testplugins module at the given order.
func archive(t *testing.T, module string, order int, edit func(bundle.Files)) []byte {
	t.Helper()
	dir := t.TempDir()
	wasm, err := os.ReadFile(filepath.Join("../../testplugins", module))
	if err != nil {
		t.Fatal(err)
	}
	m := `{"format": "purser-bundle-v1", "revision": "o` + string(rune('0'+order)) + `", "plugins": [{"path": "est.wasm", "order": ` +
		string(rune('0'+order)) + `}]}`
	if err := os.WriteFile(filepath.Join(dir, "bundle.json"), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "est.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Build(dir, bundle.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(b.Files)
	}
	var buf bytes.Buffer
	if err := b.WriteTarGz(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func servingOrder(t *testing.T, reg *host.Registry) int {
	t.Helper()
	ps := reg.Plugins()
	if len(ps) != 1 {
		t.Fatalf("%d plugins serving, want 1", len(ps))
	}
	return ps[0].Order()
}

// The last good bundle keeps serving through a bad digest and a plugin
// that fails to load, and a good bundle after them replaces it.
func TestBundleLoaderKeepsLastGood(t *testing.T) {
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	srv := &bundleServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	l := &bundleLoader{h: h, dir: t.TempDir()}
	k := bundle.NewKeeper(bundle.HTTPSource{URL: ts.URL}, bundle.Options{}, l.apply, time.Now)

	srv.serve(archive(t, "estimator.wasm", 1, nil), `"1"`)
	if _, err := k.Update(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := h.NewRegistry(ctx, host.RegistryConfig{Plugins: l.specs})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	l.attach(reg)
	if got := servingOrder(t, reg); got != 1 {
		t.Fatalf("order %d, want 1", got)
	}

	srv.serve(archive(t, "estimator.wasm", 2, func(f bundle.Files) { f["est.wasm"] = append(f["est.wasm"], 0) }), `"bad-digest"`)
	if _, err := k.Update(ctx); !errors.Is(err, bundle.ErrDigest) || !strings.Contains(err.Error(), `"est.wasm"`) {
		t.Fatalf("tampered bundle: %v, want ErrDigest naming est.wasm", err)
	}
	srv.serve(archive(t, "badinit.wasm", 3, nil), `"bad-plugin"`)
	if _, err := k.Update(ctx); !errors.Is(err, host.ErrInit) {
		t.Fatalf("bundle with a plugin that fails to load: %v, want host.ErrInit", err)
	}
	if got := servingOrder(t, reg); got != 1 {
		t.Fatalf("after two bad bundles order %d is serving, want the last good (1)", got)
	}
	if res, _, err := reg.Plugins()[0].Estimate(ctx, abi.EstimateRequest{Call: abi.Call{Tool: "t", Account: "a"}}); err != nil || res.Nanos != 1_000_000 {
		t.Fatalf("the last good plugin answers %+v, %v; want 1,000,000 nanos", res, err)
	}

	srv.serve(archive(t, "estimator_v2.wasm", 4, nil), `"4"`)
	if changed, err := k.Update(ctx); !changed || err != nil {
		t.Fatalf("good bundle again: changed %v, %v", changed, err)
	}
	if got := servingOrder(t, reg); got != 4 || reg.Plugins()[0].Manifest().Version != "2.0.0" {
		t.Fatalf("order %d version %s, want 4 and 2.0.0", got, reg.Plugins()[0].Manifest().Version)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "live", "est.wasm")); err != nil {
		t.Fatalf("the live plugin file: %v", err)
	}
}

func TestBundleConfigProblems(t *testing.T) {
	file := writeFile(t, "purser.yaml", `plugins:
  bundle:
    path: b.tar.gz
    url: ftp://example.com/b.tar.gz
    poll_interval: 10ms
    require_signature: true
    sha256: abc
    files_max: -1
`)
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.build()
	for _, want := range []string{"plugins.bundle.url: set path or url", "plugins.bundle.poll_interval: must be 0",
		"plugins.bundle.require_signature: needs", "plugins.bundle.sha256:", "plugins.bundle.files_max: must be >= 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want a problem %q in %v", want, err)
		}
	}
}

// plugins.bundle.path is read at start and its plugin serves beside
// plugins.entries; a bundle that is refused at start leaves none.
func TestServeLoadsBundleFromPath(t *testing.T) {
	ctx := context.Background()
	good := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := os.WriteFile(good, archive(t, "estimator.wasm", 7, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.tar.gz")
	if err := os.WriteFile(bad, archive(t, "estimator.wasm", 7, func(f bundle.Files) { f["est.wasm"] = []byte("x") }), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path    string
		plugins int
	}{{good, 1}, {bad, 0}} {
		cfg, err := loadConfig("", map[string]any{"store.kind": "memory", "log.level": "error", "data_dir": t.TempDir(),
			"plugins.entries": []any{}, "plugins.bundle.path": c.path})
		if err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		eng, err := buildEngine(ctx, cfg, engineOptions{plugins: true, logOutput: logs})
		if err != nil {
			t.Fatal(err)
		}
		ps := eng.registry.Plugins()
		eng.Close()
		if len(ps) != c.plugins || (c.plugins == 1 && ps[0].Order() != 7) {
			t.Fatalf("bundle %s: %d plugins serving, want %d; log: %s", filepath.Base(c.path), len(ps), c.plugins, logs.String())
		}
		if c.plugins == 0 && !strings.Contains(logs.String(), `\"est.wasm\"`) && !strings.Contains(logs.String(), `"est.wasm"`) {
			t.Fatalf("the refusal does not name est.wasm: %s", logs.String())
		}
	}
}
