package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/purser-dev/purser/abi"
)

func copyPlugin(t *testing.T, name, dst string) {
	t.Helper()
	b, err := os.ReadFile(wasmPath(name))
	if err != nil {
		t.Fatal(err)
	}
	// Write then rename, as deploy tools do, so a reload never sees half a file.
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

func estimateNanos(t *testing.T, p *Plugin) int64 {
	t.Helper()
	res, _, err := p.Estimate(context.Background(), estReq("Read"))
	if err != nil {
		t.Fatal(err)
	}
	return res.Nanos
}

func TestRegistryReload(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	dir := t.TempDir()
	copyPlugin(t, "estimator", filepath.Join(dir, "est.wasm"))
	copyPlugin(t, "policy", filepath.Join(dir, "pol.wasm"))
	extra := filepath.Join(t.TempDir(), "second-policy.wasm")
	copyPlugin(t, "garbage_verdict", extra)
	r, err := h.NewRegistry(context.Background(), RegistryConfig{
		Dir:     dir,
		Plugins: []Spec{{File: extra, Order: -1, FailMode: FailOpen}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	est := r.Estimator("Anything")
	if est == nil || est.Name() != "estimator" || estimateNanos(t, est) != 1_000_000 {
		t.Fatalf("estimator: %v", est)
	}
	pols := r.Policies()
	if len(pols) != 2 || pols[0].Name() != "garbage-verdict" || pols[0].FailMode() != FailOpen || pols[1].Name() != "policy" {
		t.Fatalf("policies in order: %v", pols)
	}
	oldDigest := est.Digest()

	// Hold a call "in flight" on the old version across the swap.
	inflight := est.acquire()
	copyPlugin(t, "estimator_v2", filepath.Join(dir, "est.wasm"))
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Estimator("x") != est || estimateNanos(t, est) != 2_000_000 || est.Digest() == oldDigest || est.Manifest().Version != "2.0.0" {
		t.Fatalf("not swapped: %s %s", est.Digest(), est.Manifest().Version)
	}
	if inflight.live.Load() != 1 {
		t.Fatal("old version closed while a call was in flight")
	}
	inflight.unref()
	if inflight.live.Load() != 0 {
		t.Fatal("old version not closed once drained")
	}

	// A bad file never replaces a good one.
	if err := os.WriteFile(filepath.Join(dir, "est.wasm"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = r.Reload(context.Background())
	if !errors.Is(err, ErrInvalidModule) {
		t.Fatalf("reload of garbage: %v", err)
	}
	if estimateNanos(t, est) != 2_000_000 {
		t.Fatal("bad file replaced the good version")
	}
	st := statusOf(t, r, "est.wasm")
	if !st.Loaded || st.Digest != est.Digest() || !strings.Contains(st.LastError, "invalid") || st.LastReload.IsZero() {
		t.Fatalf("status %+v", st)
	}
	copyPlugin(t, "badversion", filepath.Join(dir, "est.wasm"))
	if err := r.Reload(context.Background()); !errors.Is(err, ErrABIVersion) || estimateNanos(t, est) != 2_000_000 {
		t.Fatalf("reload to a wrong ABI: %v", err)
	}

	// Removing a file unloads the plugin.
	if err := os.Remove(filepath.Join(dir, "pol.wasm")); err != nil {
		t.Fatal(err)
	}
	_ = r.Reload(context.Background())
	if r.Plugin("policy") != nil || len(r.Policies()) != 1 {
		t.Fatal("removed plugin still registered")
	}
}

func statusOf(t *testing.T, r *Registry, base string) PluginStatus {
	t.Helper()
	for _, s := range r.Status() {
		if filepath.Base(s.File) == base {
			return s
		}
	}
	t.Fatalf("no status for %s in %+v", base, r.Status())
	return PluginStatus{}
}

func TestRegistryPinAndBadStartup(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	dir := t.TempDir()
	copyPlugin(t, "estimator", filepath.Join(dir, "est.wasm"))
	copyPlugin(t, "unsupported", filepath.Join(dir, "unsupported.wasm"))
	copyPlugin(t, "unknownimport", filepath.Join(dir, "bad.wasm"))
	r, err := h.NewRegistry(context.Background(), RegistryConfig{
		Dir:     dir,
		Plugins: []Spec{{File: filepath.Join(dir, "est.wasm"), SHA256: strings.Repeat("0", 64)}},
	})
	if !errors.Is(err, ErrDigestMismatch) || !errors.Is(err, ErrUnknownImport) {
		t.Fatalf("startup errors: %v", err)
	}
	defer r.Close()
	if r.Plugin("estimator") != nil || r.Plugin("unsupported") == nil {
		t.Fatal("pinned mismatch loaded, or the good plugin not loaded")
	}
	if st := statusOf(t, r, "bad.wasm"); st.Loaded || !strings.Contains(st.LastError, "env.now") {
		t.Fatalf("status %+v", st)
	}
	// Estimator prefers an exact tool match over "*".
	if r.Estimator("x").Name() != "unsupported" {
		t.Fatal("wildcard estimator not found")
	}
}

func TestRegistryWatch(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	dir := t.TempDir()
	r, err := h.NewRegistry(context.Background(), RegistryConfig{Dir: dir, Watch: true, Debounce: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Estimator("x") != nil {
		t.Fatal("empty dir has an estimator")
	}
	copyPlugin(t, "estimator", filepath.Join(dir, "est.wasm"))
	eventually(t, "the watcher to load est.wasm", func() bool { return r.Estimator("x") != nil })
	p := r.Estimator("x")
	copyPlugin(t, "estimator_v2", filepath.Join(dir, "est.wasm"))
	eventually(t, "the watcher to reload est.wasm", func() bool { return p.Manifest().Version == "2.0.0" })
	if estimateNanos(t, p) != 2_000_000 {
		t.Fatal("reloaded version not serving")
	}
	if p.Kind() != abi.KindEstimator {
		t.Fatal(p.Kind())
	}
}

// TestReloadUnderLoad swaps versions while callers hammer the plugin:
// no call fails, every answer comes from one of the two versions, and the
// retired versions' instances are all closed once drained.
func TestReloadUnderLoad(t *testing.T) {
	// The property is that no call fails across swaps, not how fast a
	// free instance turns up: under -race on a loaded 2-core CI machine a
	// caller waited past the default 100 ms pool wait (seen in CI).
	cfg := Config{}
	cfg.Limits.PoolWaitMax = 10 * time.Second
	h, _ := newTestHost(t, cfg)
	checkNoLeaks(t, h)
	dir := t.TempDir()
	file := filepath.Join(dir, "est.wasm")
	copyPlugin(t, "estimator", file)
	r, err := h.NewRegistry(context.Background(), RegistryConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := r.Estimator("x")
	stop := make(chan struct{})
	errc := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				res, _, err := p.Estimate(context.Background(), estReq("x"))
				if err == nil && res.Nanos != 1_000_000 && res.Nanos != 2_000_000 {
					err = errors.New("unexpected answer")
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		copyPlugin(t, []string{"estimator_v2", "estimator"}[i%2], file)
		if err := r.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	for g := 0; g < 4; g++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if live := h.Instances(); live != p.Stats().Instances {
		t.Fatalf("%d instances live, current version has %d: retired versions leaked", live, p.Stats().Instances)
	}
}

// TestReloadRefusesAManifestChange: a new file under the same path that
// changes the plugin's kind (or name, or tools) is refused and the running
// version stays, unless the registry allows manifest changes.
func TestReloadRefusesAManifestChange(t *testing.T) {
	o := newRecObserver()
	h, _ := newTestHost(t, Config{Observer: o})
	checkNoLeaks(t, h)
	for _, allowed := range []bool{false, true} {
		dir := t.TempDir()
		file := filepath.Join(dir, "est.wasm")
		copyPlugin(t, "estimator", file)
		r, err := h.NewRegistry(context.Background(), RegistryConfig{Dir: dir, ManifestChangeAllowed: allowed})
		if err != nil {
			t.Fatal(err)
		}
		est := r.Estimator("Read")
		copyPlugin(t, "limit-kindswap", file)
		err = r.Reload(context.Background())
		if allowed {
			if err != nil || est.Kind() != abi.KindPolicy || len(r.Policies()) != 1 {
				t.Fatalf("allowed change not applied: %v, kind %s", err, est.Kind())
			}
		} else {
			if !errors.Is(err, ErrManifestChanged) || !strings.Contains(err.Error(), `kind "estimator" would become "policy"`) ||
				!strings.Contains(err.Error(), "reload_manifest_change_allowed") {
				t.Fatalf("reload err = %v, want ErrManifestChanged naming the change and the key", err)
			}
			if est.Kind() != abi.KindEstimator || estimateNanos(t, est) != 1_000_000 || len(r.Policies()) != 0 {
				t.Fatal("the refused version replaced the running one")
			}
			o.mu.Lock()
			failed := o.reloads["estimator/"+ErrorKind(err)]
			o.mu.Unlock()
			if failed != 1 {
				t.Fatalf("the refused reload was not observed as a failure: %v", o.reloads)
			}
		}
		r.Close()
	}
	a := abi.Manifest{Name: "x", Kind: abi.KindPolicy, Tools: []string{"Bash", "Read"}}
	for b, want := range map[*abi.Manifest]string{
		{Name: "x", Kind: abi.KindPolicy, Tools: []string{"Read", "Bash"}}: "",
		{Name: "x", Kind: abi.KindPolicy, Tools: []string{"*"}}:            `tools ["Bash" "Read"] would become ["*"]`,
		{Name: "y", Kind: abi.KindPolicy, Tools: []string{"Bash", "Read"}}: `name "x" would become "y"`,
	} {
		if got := manifestChange(a, *b); got != want {
			t.Errorf("manifestChange(%v) = %q, want %q", b.Tools, got, want)
		}
	}
}
