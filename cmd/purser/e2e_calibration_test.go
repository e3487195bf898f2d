package main

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/purser-dev/purser/server"
)

// End-to-end proof of issue 13 item 3: what LLM holds learned from settled
// spend survives a restart of `purser serve` (SQLite, PostgreSQL) and is
// shared by every host on one PostgreSQL, through the real binary over HTTP.

// calibTaught is how many usage-priced commits each test teaches.
const calibTaught = 6

// calibConfig is a server on store (a YAML flow mapping) whose agent
// token estimates and reserves for team-a, merging calibration every sync.
func calibConfig(store, sync string) string {
	return fmt.Sprintf(`store: %s
plugins: {entries: [], watch: false}
decision_log: {enabled: false}
calibration: {sync_interval: %s}
accounts:
  - {id: team-a, limit_usd: "100"}
auth:
  tokens:
    - {name: bot-a, role: agent, sha256: %s, accounts: ["team-a", "team-a/*"]}
`, store, sync, server.HashToken(e2eAgentToken))
}

// calibCall is the LLM call every test reserves and estimates: gpt-4o with
// a prompt of about 1000 tokens.
var calibCall = map[string]any{"tool": "LLM", "params": map[string]any{"model": "gpt-4o", "prompt": strings.Repeat("x", 4000)}}

// teachCalibration reserves n LLM calls on team-a and commits each with a
// usage far below the prior's hold, so calibration has something to learn.
func teachCalibration(p *serverProc, prefix string, n int) {
	p.t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		res := p.call(e2eAgentToken, "POST", "/v1/reservations",
			map[string]any{"id": id, "account": "team-a", "tool": calibCall["tool"], "params": calibCall["params"]}, 200)
		if res["decision"] != "allow" {
			p.t.Fatalf("reserve %s: %v", id, res)
		}
		usage := map[string]any{"model": "gpt-4o", "input_tokens": 1000, "output_tokens": 40 + 10*i}
		if done := p.call(e2eAgentToken, "POST", "/v1/reservations/"+id+"/commit", map[string]any{"usage": usage}, 200); done["cost_source"] != "actual" {
			p.t.Fatalf("commit %s: %v", id, done)
		}
	}
}

// calibEstimate is the server's estimate of calibCall for team-a.
func calibEstimate(p *serverProc) (source string, nanos int64) {
	p.t.Helper()
	out := p.call(e2eAgentToken, "POST", "/v1/estimate", calibCall, 200)
	n, _ := out["estimate_nanos"].(float64)
	return fmt.Sprint(out["source"]), int64(n)
}

var calibSamplesRE = regexp.MustCompile(`^llm\+calib\(p\d+ x[0-9.]+, n=(\d+)\)$`)

// learnedSamples is the sample count an estimate's source names, or -1
// when it is not a learned calibration (the prior, say).
func learnedSamples(source string) int {
	m := calibSamplesRE.FindStringSubmatch(source)
	if m == nil {
		return -1
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// stop sends SIGTERM (a clean stop: serve syncs calibration on the way
// out) and waits for the process to exit.
func (p *serverProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for kill, which then sees the exit and does nothing
		if err != nil {
			p.t.Fatalf("purser serve did not exit cleanly on SIGTERM: %v\n%s", err, p.logs)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("purser serve did not stop in 30s after SIGTERM\n%s", p.logs)
	}
}

// hardKill is kill -9: nothing runs on the way out.
func (p *serverProc) hardKill() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	p.done <- <-p.done
}

// waitLearned polls p's estimate until it names want samples (bounded by a
// generous deadline, for a loaded machine) and returns its source.
func waitLearned(t *testing.T, p *serverProc, want int, deadline time.Duration) string {
	t.Helper()
	var src string
	for end := time.Now().Add(deadline); ; time.Sleep(100 * time.Millisecond) {
		if src, _ = calibEstimate(p); learnedSamples(src) == want {
			return src
		}
		if time.Now().After(end) {
			t.Fatalf("after %s the estimate is %q; want one learned from n=%d\n%s", deadline, src, want, p.logs)
		}
	}
}

// priorEstimate is what a fresh database answers for calibCall: the prior.
func priorEstimate(t *testing.T) (string, int64) {
	t.Helper()
	src, nanos := calibEstimate(startServer(t, t.TempDir(), calibConfig("{kind: sqlite}", "1s")))
	if !strings.Contains(src, "prior") {
		t.Fatalf("a fresh database's estimate is %q; want the prior", src)
	}
	return src, nanos
}

func TestServeCalibrationSurvivesCleanRestartSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server")
	}
	priorSrc, priorNanos := priorEstimate(t)
	dir := t.TempDir()
	// A sync interval far longer than the test: what the restarted server
	// knows came from the sync on SIGTERM and the load at start, not from
	// a periodic merge.
	cfg := calibConfig("{kind: sqlite}", "1h")
	a := startServer(t, dir, cfg)
	teachCalibration(a, "r", calibTaught)
	before, _ := calibEstimate(a)
	if learnedSamples(before) != calibTaught {
		t.Fatalf("after %d commits the estimate is %q; want n=%d", calibTaught, before, calibTaught)
	}
	a.stop()

	b := startServer(t, dir, cfg) // same data dir: same SQLite file
	src, nanos := calibEstimate(b)
	if learnedSamples(src) != calibTaught || src != before {
		t.Fatalf("first estimate after a clean restart is %q; want %q (n=%d), not the prior %q", src, before, calibTaught, priorSrc)
	}
	if nanos == priorNanos {
		t.Errorf("the restarted server holds %d, the same as the prior", nanos)
	}
}

func TestServeCalibrationSurvivesKill9AfterOneSyncSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server")
	}
	dir := t.TempDir()
	cfg := calibConfig("{kind: sqlite}", "1s")
	a := startServer(t, dir, cfg)
	teachCalibration(a, "k", calibTaught)
	// kill -9 runs nothing on the way out: only periodic syncs saved the
	// learning. Three intervals leave room for a late tick on a busy host.
	time.Sleep(3 * time.Second)
	a.hardKill()

	b := startServer(t, dir, cfg)
	if src, _ := calibEstimate(b); learnedSamples(src) != calibTaught {
		t.Fatalf("first estimate after kill -9 is %q; want n=%d", src, calibTaught)
	}
}

// Two hosts on one PostgreSQL share calibration through periodic merges.
// Staleness bound: a sample learned on A reaches the database at A's next
// sync (at most one sync_interval) and B adopts it at B's next sync (at most
// one more): B's estimates are at most two intervals (2s here) stale, plus
// the merges' own latency. The deadline below is generous for a busy host.
func TestPostgresCalibrationSharedAcrossHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two real servers")
	}
	dsn := pgTestDatabase(t)
	cfg := calibConfig(fmt.Sprintf("{kind: postgres, dsn: %q}", dsn), "1s")
	ps := startPGServers(t, 2, cfg)
	a, b := ps[0], ps[1]
	if src, _ := calibEstimate(b); !strings.Contains(src, "prior") {
		t.Fatalf("B before any learning: %q; want the prior", src)
	}
	teachCalibration(a, "a", calibTaught)
	waitLearned(t, b, calibTaught, 10*time.Second)

	// What B learns reaches A too: the merge adds, it does not overwrite.
	teachCalibration(b, "b", calibTaught)
	waitLearned(t, a, 2*calibTaught, 10*time.Second)

	// And it survives a restart of both hosts on the same database.
	a.stop()
	b.stop()
	c := startServer(t, t.TempDir(), calibConfig(fmt.Sprintf("{kind: postgres, dsn: %q}", dsn), "1h"))
	if src, _ := calibEstimate(c); learnedSamples(src) != 2*calibTaught {
		t.Fatalf("first estimate of a new host on the database: %q; want n=%d", src, 2*calibTaught)
	}
}
