package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests run the real purser binary on a loopback port.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func purserBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "purser-e2e-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "purser")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type serverProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var servingRE = regexp.MustCompile(`purser serving: addr=(\S+)`)

// startServer runs `purser serve` with cfg (YAML) from dir and waits for
// the "serving" log line and /readyz.
func startServer(t *testing.T, dir, cfg string) *serverProc {
	t.Helper()
	cfgPath := filepath.Join(dir, "purser.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(purserBinary(t), "serve", "--config", cfgPath, "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	cmd.Dir = repoRoot(t)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{t: t, cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			if m := servingRE.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case a := <-addr:
		p.base = "http://" + a
	case err := <-p.done:
		t.Fatalf("purser serve exited before serving: %v\n%s", err, p.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("purser serve did not start in 60s\n%s", p.logs)
	}
	if st, _ := p.do("GET", "/readyz", nil); st != 200 {
		t.Fatalf("readyz %d\n%s", st, p.logs)
	}
	return p
}

func (p *serverProc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	}
}

func (p *serverProc) do(method, path string, body any) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (p *serverProc) must(method, path string, body any, status int) map[string]any {
	p.t.Helper()
	st, out := p.do(method, path, body)
	if st != status {
		p.t.Fatalf("%s %s: %d %v; want %d", method, path, st, out, status)
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), from))
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil { // atomic, like a deploy
		t.Fatal(err)
	}
}

func TestServeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server")
	}
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "testplugins/estimator.wasm", filepath.Join(pluginDir, "fixed.wasm")) // $0.001 for every tool
	p := startServer(t, dir, fmt.Sprintf(`
store: {kind: memory}
plugins:
  dir: %s
  watch: false
  entries:
    - path: plugins/policies/tool-rules/tool-rules.wasm
      config: {mode: default}
accounts:
  - {id: pool, limit_usd: "0.05"}
`, pluginDir))

	t.Run("concurrent reservations never overspend", func(t *testing.T) {
		var mu sync.Mutex
		allowed := 0
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 { // 80 attempts at $0.001 against $0.05
					_, out := p.do("POST", "/v1/reservations", map[string]any{"id": fmt.Sprintf("c-%d-%d", w, i), "account": "pool", "tool": "Read"})
					if out["decision"] == "allow" {
						mu.Lock()
						allowed++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		pool := p.must("GET", "/v1/accounts/pool", nil, 200)
		if allowed != 50 || pool["pending_nanos"] != float64(50_000_000) {
			t.Errorf("allowed %d, pool %v; want exactly 50 holds of $0.001", allowed, pool)
		}
	})

	t.Run("ask approved over the API is re-checked", func(t *testing.T) {
		p.must("PUT", "/v1/accounts/dev", map[string]any{"limit_usd": "1"}, 201)
		out := p.must("POST", "/v1/reservations", map[string]any{"account": "dev", "tool": "Bash"}, 200)
		aid, _ := out["approval_id"].(string)
		if out["decision"] != "ask" || aid == "" {
			t.Fatalf("Bash under tool-rules default mode: %v", out)
		}
		p.must("POST", "/v1/approvals/"+aid+"/approve", nil, 200)
		p.must("PUT", "/v1/accounts/dev", map[string]any{"limit_usd": "0.0001"}, 200)
		if out := p.must("POST", "/v1/reservations", map[string]any{"account": "dev", "tool": "Bash", "approval_id": aid}, 200); out["decision"] != "deny" {
			t.Fatalf("approved, but the budget shrank meanwhile: %v; want deny", out)
		}
		p.must("PUT", "/v1/accounts/dev", map[string]any{"limit_usd": "1"}, 200)
		if out := p.must("POST", "/v1/reservations", map[string]any{"account": "dev", "tool": "Bash", "approval_id": aid}, 200); out["decision"] != "allow" {
			t.Fatalf("approved with room: %v", out)
		}
	})

	t.Run("plugin reload over the API", func(t *testing.T) {
		est := func() map[string]any { return p.must("POST", "/v1/estimate", map[string]any{"tool": "Read"}, 200) }
		if e := est(); e["estimate_nanos"] != float64(1_000_000) || !strings.HasPrefix(e["source"].(string), "plugin:estimator@") {
			t.Fatalf("before reload: %v", e)
		}
		copyFile(t, "testplugins/estimator_v2.wasm", filepath.Join(pluginDir, "fixed.wasm"))
		p.must("POST", "/v1/plugins/reload", nil, 200)
		v2 := est()
		if v2["estimate_nanos"] != float64(2_000_000) {
			t.Fatalf("after reload: %v", v2)
		}
		if err := os.WriteFile(filepath.Join(pluginDir, "fixed.wasm"), []byte("not wasm"), 0o644); err != nil {
			t.Fatal(err)
		}
		st, out := p.do("POST", "/v1/plugins/reload", nil)
		if st != 422 || !strings.Contains(fmt.Sprint(out["error"]), "fixed.wasm") {
			t.Errorf("bad file reload: %d %v; want 422 naming the file", st, out)
		}
		if e := est(); e["estimate_nanos"] != float64(2_000_000) || e["source"] != v2["source"] {
			t.Errorf("a bad file replaced a good one: %v", e)
		}
	})

	t.Run("SIGTERM drains and exits cleanly", func(t *testing.T) {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-p.done:
			p.done <- err
			if err != nil {
				t.Errorf("exit after SIGTERM: %v\n%s", err, p.logs)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no exit 30s after SIGTERM")
		}
		if !strings.Contains(p.logs.String(), "purser stopped") {
			t.Errorf("no shutdown log:\n%s", p.logs)
		}
	})
}

func TestKill9KeepsEveryCommittedCharge(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server twice")
	}
	dir := t.TempDir()
	cfg := "store: {kind: sqlite}\nplugins: {entries: [], watch: false}\naccounts: [{id: team, limit_usd: \"1000\"}]\n"
	p := startServer(t, dir, cfg)
	var mu sync.Mutex
	acked := map[string]bool{} // commits the server confirmed
	tried := []string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("k-%d-%d", w, i)
				mu.Lock()
				tried = append(tried, id)
				mu.Unlock()
				if !post(client, p.base+"/v1/reservations", fmt.Sprintf(`{"id":%q,"account":"team","tool":"Bash","ttl_ms":1000}`, id)) {
					return
				}
				if !post(client, p.base+"/v1/reservations/"+id+"/commit", `{"actual_nanos":1000}`) {
					return
				}
				mu.Lock()
				acked[id] = true
				n := len(acked)
				mu.Unlock()
				if n == 150 {
					_ = p.cmd.Process.Kill() // kill -9 mid-load
				}
			}
		}()
	}
	<-p.done
	p.done <- nil
	close(stop)
	wg.Wait()
	if len(acked) < 150 {
		t.Fatalf("only %d commits acknowledged before the kill\n%s", len(acked), p.logs)
	}

	p2 := startServer(t, dir, cfg)
	committed, pending := int64(0), 0
	for _, id := range tried {
		st, r := p2.do("GET", "/v1/reservations/"+id, nil)
		switch {
		case acked[id] && (st != 200 || r["state"] != "committed" || r["charged_nanos"] != float64(1000)):
			t.Errorf("acknowledged commit %s lost after kill -9: %d %v", id, st, r)
		case st == 200 && r["state"] == "committed":
			committed += 1000
		case st == 200 && r["state"] == "pending":
			pending++
		}
	}
	team := p2.must("GET", "/v1/accounts/team", nil, 200)
	if team["committed_nanos"] != float64(committed) {
		t.Errorf("team committed %v; the reservations add up to %d", team["committed_nanos"], committed)
	}
	// Holds left pending by the kill expire (ttl 1s) and stop counting.
	deadline := time.Now().Add(20 * time.Second)
	for {
		team = p2.must("GET", "/v1/accounts/team", nil, 200)
		if team["pending_nanos"] == float64(0) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending holds never expired: %v (had %d pending)", team, pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func post(c *http.Client, url, body string) bool {
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == 200
}
