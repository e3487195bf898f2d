package pricing

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Info(msg string, args ...any)  { r.add("INFO "+msg, args) }
func (r *logRecorder) Error(msg string, args ...any) { r.add("ERROR "+msg, args) }
func (r *logRecorder) add(msg string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprint(msg, args))
}

func (r *logRecorder) find(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or a generous deadline passes (file
// events are asynchronous; this waits for them, it does not time them).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	// Written beside and renamed over, as editors and deploy tools do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestLiveReloadsAndKeepsTheOldTableOnABadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	writeFile(t, path, `{"m": {"input_cost_per_token": 1e-06, "mode": "chat", "litellm_provider": "x"}}`)
	log := &logRecorder{}
	live, err := Watch(path, Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if q := live.PriceOf("m"); q.Price.Input != 1_000_000_000 || q.Source != "litellm:m" {
		t.Fatalf("initial: %+v", q)
	}
	writeFile(t, path, `{"m": {"input_cost_per_token": 3e-06, "mode": "chat", "litellm_provider": "x"}}`)
	waitFor(t, "the new price", func() bool { return live.PriceOf("m").Price.Input == 3_000_000_000 })

	writeFile(t, path, "{\"m\": {\"input_cost_per_token\": 9e-06},\n \"m2\": {\"input_cost_per_token\": \"x\"}}")
	waitFor(t, "the error to be logged", func() bool { return log.find("prices.json:2:2: model \"m2\" field \"input_cost_per_token\"") })
	if q := live.PriceOf("m"); q.Price.Input != 3_000_000_000 {
		t.Errorf("a bad file replaced the table: %+v", q)
	}
	if err := live.Reload(); err == nil {
		t.Error("Reload of a bad file succeeded")
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if err := live.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if q := live.PriceOf("m"); q.Price.Input != 3_000_000_000 {
		t.Errorf("after Close: %+v", q)
	}
}

func TestWatchRefusesABadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	writeFile(t, path, `{"m": `)
	if _, err := Watch(path, Options{}, &logRecorder{}); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v; want one naming %s", err, path)
	}
	if _, err := Watch(filepath.Join(t.TempDir(), "missing.json"), Options{}, &logRecorder{}); err == nil {
		t.Error("missing file accepted")
	}
}

// TestLiveConcurrentReload prices while the table is swapped (-race).
func TestLiveConcurrentReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	writeFile(t, path, `{"m": {"input_cost_per_token": 1e-06, "mode": "chat", "litellm_provider": "x"}}`)
	live, err := Watch(path, Options{}, &logRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5000 {
				if in := live.PriceOf("m").Price.Input; in != 1_000_000_000 && in != 2_000_000_000 {
					t.Errorf("torn price %d", in)
					return
				}
			}
		})
	}
	for i := range 20 {
		writeFile(t, path, fmt.Sprintf(`{"m": {"input_cost_per_token": %de-06, "mode": "chat", "litellm_provider": "x"}}`, 1+i%2))
		if err := live.Reload(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}
