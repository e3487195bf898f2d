package host

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/abi"
)

// sharedCacheDir is a compilation (and instrumentation) cache shared by
// the package's hosts, so each Go guest is compiled once per test run
// rather than once per host: under -race a compile takes seconds.
var sharedCacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "purser-host-test-cache-")
	if err != nil {
		panic(err)
	}
	sharedCacheDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// wasmPath is a committed test plugin.
func wasmPath(name string) string {
	if name == "gobad" {
		return filepath.Join("..", "testplugins", "go", "gobad", "gobad.wasm")
	}
	return filepath.Join("..", "testplugins", name+".wasm")
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestHost builds a host whose logs go to the returned buffer and which
// is closed, and checked for leaked instances, when the test ends.
func newTestHost(t testing.TB, cfg Config) (*Host, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Limits.CallTimeout == 0 {
		// Generous: a loaded 2-core CI machine shows 50-130 ms stalls even
		// for trivial calls; tests that want timeouts set their own.
		cfg.Limits.CallTimeout = 10 * time.Second
	}
	if cfg.CompilationCacheDir == "" {
		cfg.CompilationCacheDir = sharedCacheDir
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "test", Output: logs, Level: hclog.Trace})
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h, logs
}

func load(t testing.TB, h *Host, name string, spec Spec) *Plugin {
	t.Helper()
	if spec.File == "" && spec.Bytes == nil {
		spec.File = wasmPath(name)
	}
	p, err := h.Load(context.Background(), spec)
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return p
}

func estReq(tool string) abi.EstimateRequest {
	return abi.EstimateRequest{Call: abi.Call{Tool: tool, Account: "acct", Budget: abi.Unlimited(0, 0), MaxTokens: -1,
		Params: []byte(`{"a":1}`)}}
}

// eventually polls cond for up to 10 s (a bound, not a timing assertion).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkNoLeaks records goroutines now and, at cleanup, waits for the count
// to come back and for the host to have no instances.
func checkNoLeaks(t *testing.T, h *Host) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		eventually(t, "instances to be closed", func() bool { return h.Instances() == 0 })
		eventually(t, "goroutines to finish", func() bool { return runtime.NumGoroutine() <= before })
	})
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
