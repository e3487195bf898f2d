package host

// These tests load guests that fail every call (loop, trap) or count
// every log line, so they skip the load's smoke call (which would refuse
// the failing ones, rightly, and spend the log budget).

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/purser-dev/purser/abi"
)

// fakeClock is a settable clock for health back-off and log rates.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withClock(h *Host) *fakeClock {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.now = c.now
	return c
}

func TestSafeTextEscapesAndBounds(t *testing.T) {
	cases := []struct {
		in    string
		limit int
		want  string
	}{
		{"plain text", 100, "plain text"},
		{"x\npurser stopped", 100, `x\npurser stopped`},
		{"\x1b[31mred\x00nul\r\t", 100, `\x1b[31mred\x00nul\r\t`},
		{"bad \xff\xfe utf8", 100, "bad \uFFFD\uFFFD utf8"},
		{"line\u2028sep \u202eevil \u0085", 100, `line\u2028sep \u202eevil \u0085`},
		{"héllo wörld", 100, "héllo wörld"},
		{"abcdefghij", 10, "abcdefghij"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"ééééé", 9, "ééé…"},
		{"\n\n\n\n", 6, `\n…`},
	}
	for _, c := range cases {
		got := safeText([]byte(c.in), c.limit)
		if got != c.want || len(got) > c.limit || !utf8.ValidString(got) {
			t.Errorf("safeText(%q, %d) = %q, want %q", c.in, c.limit, got, c.want)
		}
	}
}

// iso-forge logs "x\npurser stopped", ANSI escapes, NUL and invalid UTF-8
// through purser.log and stdout, and denies with the same bytes and 8 KiB
// of padding: no log line and no reason may carry them raw.
func TestGuestCannotForgeLogLinesOrReasons(t *testing.T) {
	h, logs := newTestHost(t, Config{noSmokeCalls: true})
	p := load(t, h, "iso-forge", Spec{})
	defer p.Close()
	res, _, err := p.Admit(context.Background(), abi.AdmitRequest{Call: estReq("x").Call})
	if err != nil {
		t.Fatal(err)
	}
	bound := p.Limits().ReasonBytesMax
	if len(res.Reason) > bound || strings.ContainsAny(res.Reason, "\n\r\x1b\x00") || !utf8.ValidString(res.Reason) ||
		!strings.HasPrefix(res.Reason, `x\npurser stopped\n\x1b[31mtoken`) {
		t.Fatalf("reason not made safe (%d bytes, bound %d): %q", len(res.Reason), bound, res.Reason)
	}
	out := logs.String()
	if strings.ContainsAny(out, "\x1b\x00\r") || !utf8.ValidString(out) {
		t.Fatalf("raw control bytes or invalid UTF-8 in the log: %q", out)
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.Contains(line, "[") || strings.HasPrefix(line, "purser stopped") || strings.HasPrefix(line, "token accepted") {
			t.Fatalf("forged log line %q in:\n%s", line, out)
		}
	}
	if !strings.Contains(out, `x\npurser stopped`) {
		t.Fatalf("the guest's message is missing (escaped) from the log:\n%s", out)
	}
}

// A plugin's log lines go through one token bucket (all its instances);
// the lines over the rate are dropped, counted, and reported once the
// bucket refills.
func TestGuestLogLinesRateLimitedPerPlugin(t *testing.T) {
	h, logs := newTestHost(t, Config{Limits: Limits{Containment: Containment{LogLinesPerSecond: 2}}, noSmokeCalls: true})
	clock := withClock(h)
	p := load(t, h, "iso-forge", Spec{})
	defer p.Close()
	admit := func() {
		t.Helper()
		if _, _, err := p.Admit(context.Background(), abi.AdmitRequest{Call: estReq("x").Call}); err != nil {
			t.Fatal(err)
		}
	}
	// Each call logs 4 lines: one through purser.log, three on stdout.
	for i := 0; i < 3; i++ {
		admit()
	}
	if got := p.Stats().LogLinesDropped; got != 10 {
		t.Fatalf("dropped %d lines, want 10 (12 logged, burst 2, clock stopped)", got)
	}
	if n := strings.Count(logs.String(), "purser.host.iso-forge: "); n != 2 {
		t.Fatalf("%d guest lines got through, want 2:\n%s", n, logs.String())
	}
	clock.add(time.Second)
	admit()
	if !strings.Contains(logs.String(), "dropped=10") {
		t.Fatalf("the drop was not reported once the bucket refilled:\n%s", logs.String())
	}
}

func estimateErr(p *Plugin) (CallInfo, error) {
	_, info, err := p.Estimate(context.Background(), estReq("x"))
	return info, err
}

// Callers queued for the only instance of a plugin that gets quarantined
// meanwhile do not run it once they obtain the instance: health is checked
// again after the wait, not only before it.
func TestQueuedCallersDoNotRunAQuarantinedPlugin(t *testing.T) {
	h, _ := newTestHost(t, Config{noSmokeCalls: true})
	checkNoLeaks(t, h)
	p := load(t, h, "loop", Spec{Limits: Limits{InstancesMax: 1, FailuresBeforeUnhealthy: 1, CallTimeout: time.Second,
		FuelPerCallMax: 1 << 50, UnhealthyRetryAfter: time.Hour, Containment: Containment{PoolWaitMax: time.Minute}}})
	defer p.Close()
	v := p.cur.Load()
	const queued = 5
	errs := make(chan error, queued+1)
	ran := make(chan bool, queued+1)
	call := func() {
		info, err := estimateErr(p)
		ran <- info.Fuel > 0
		errs <- err
	}
	go call()
	eventually(t, "the first call to hold the instance", func() bool { return v.pool.busy() == 1 })
	for i := 0; i < queued; i++ {
		go call()
	}
	eventually(t, "the callers to queue", func() bool { return v.pool.nwait.Load() == queued })
	runs, unhealthy := 0, 0
	for i := 0; i < queued+1; i++ {
		if <-ran {
			runs++
		}
		if errors.Is(<-errs, ErrUnhealthy) {
			unhealthy++
		}
	}
	if runs != 1 || unhealthy != queued {
		t.Fatalf("%d calls ran the guest and %d failed as unhealthy; want 1 and %d", runs, unhealthy, queued)
	}
}

// A wait for an instance has its own bound: past PoolWaitMax the call
// fails with ErrPoolWait (the caller falls back), which is load, not a
// failure of the plugin.
func TestPoolWaitIsBounded(t *testing.T) {
	h, _ := newTestHost(t, Config{noSmokeCalls: true})
	checkNoLeaks(t, h)
	p := load(t, h, "loop", Spec{Limits: Limits{InstancesMax: 1, CallTimeout: 2 * time.Second, FuelPerCallMax: 1 << 50,
		Containment: Containment{PoolWaitMax: 10 * time.Millisecond}}})
	defer p.Close()
	v := p.cur.Load()
	first := make(chan error, 1)
	go func() { _, err := estimateErr(p); first <- err }()
	eventually(t, "the first call to hold the instance", func() bool { return v.pool.busy() == 1 })
	info, err := estimateErr(p)
	if !errors.Is(err, ErrPoolWait) || info.Fuel != 0 || ErrorKind(err) != "pool_wait" {
		t.Fatalf("err = %v (fuel %d), want ErrPoolWait without running", err, info.Fuel)
	}
	if hl := p.Health(); hl.ConsecutiveFailures != 0 {
		t.Fatalf("a pool wait counted toward health: %+v", hl)
	}
	if err := <-first; !errors.Is(err, ErrTimeout) {
		t.Fatalf("first call: %v", err)
	}
}

// A quarantined plugin gets one trial call when due; each failed trial
// doubles the wait, up to QuarantineMax; a success ends the quarantine.
func TestQuarantineBackoffDoublesUpToMax(t *testing.T) {
	h, _ := newTestHost(t, Config{noSmokeCalls: true})
	clock := withClock(h)
	p := load(t, h, "trap", Spec{Limits: Limits{FailuresBeforeUnhealthy: 1, UnhealthyRetryAfter: time.Second,
		Containment: Containment{QuarantineMax: 4 * time.Second}}})
	defer p.Close()
	if _, err := estimateErr(p); !errors.Is(err, ErrTrap) {
		t.Fatal(err)
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		hl := p.Health()
		if hl.Healthy || hl.NextTrial.Sub(clock.now()) != want {
			t.Fatalf("health %+v: want the next trial in %v", hl, want)
		}
		clock.add(want - time.Millisecond)
		if info, err := estimateErr(p); !errors.Is(err, ErrUnhealthy) || info.Fuel != 0 {
			t.Fatalf("before the trial is due: %v (fuel %d)", err, info.Fuel)
		}
		clock.add(time.Millisecond)
		if _, err := estimateErr(p); !errors.Is(err, ErrTrap) {
			t.Fatalf("trial: %v", err)
		}
	}
}

// 100 concurrent requests hammer a plugin stuck at its limits while an
// unrelated plugin serves its calls: every unrelated call is answered, no
// caller of the stuck plugin runs it once it is quarantined, and the rest
// fail through the pool's wait bound or the health gate, never by waiting
// out another call.
func TestUnrelatedCallsAnsweredWhileAPluginIsAtItsLimits(t *testing.T) {
	h, _ := newTestHost(t, Config{noSmokeCalls: true})
	checkNoLeaks(t, h)
	const failuresMax, instances = 3, 2
	bad := load(t, h, "loop", Spec{Limits: Limits{InstancesMax: instances, FailuresBeforeUnhealthy: failuresMax,
		CallTimeout: 200 * time.Millisecond, FuelPerCallMax: 1 << 50, UnhealthyRetryAfter: time.Hour,
		Containment: Containment{PoolWaitMax: 20 * time.Millisecond}}})
	defer bad.Close()
	good := load(t, h, "estimator", Spec{})
	defer good.Close()
	type outcome struct {
		good bool
		ran  bool
		err  error
	}
	out := make(chan outcome, 100)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := bad
			if i%2 == 0 {
				p = good
			}
			info, err := estimateErr(p)
			out <- outcome{good: p == good, ran: info.Fuel > 0, err: err}
		}(i)
	}
	wg.Wait()
	close(out)
	runs := 0
	for o := range out {
		switch {
		case o.good && o.err != nil:
			t.Errorf("unrelated call failed: %v", o.err)
		case o.good:
		case o.ran:
			runs++
			if !errors.Is(o.err, ErrTimeout) {
				t.Errorf("a call that ran the stuck guest ended with %v", o.err)
			}
		case !errors.Is(o.err, ErrPoolWait) && !errors.Is(o.err, ErrUnhealthy):
			t.Errorf("a call that did not run ended with %v, want ErrPoolWait or ErrUnhealthy", o.err)
		}
	}
	if runs > failuresMax+instances-1 {
		t.Fatalf("%d calls ran the stuck guest; at most %d may before quarantine stops them", runs, failuresMax+instances-1)
	}
}

// A reason is cut at ReasonBytesMax, and a guest error message too.
func TestReasonNeverExceedsBound(t *testing.T) {
	h, _ := newTestHost(t, Config{Limits: Limits{Containment: Containment{ReasonBytesMax: 64}}, noSmokeCalls: true})
	p := load(t, h, "iso-forge", Spec{})
	defer p.Close()
	res, _, err := p.Admit(context.Background(), abi.AdmitRequest{Call: estReq("x").Call})
	if err != nil || len(res.Reason) > 64 || !bytes.HasSuffix([]byte(res.Reason), []byte("…")) {
		t.Fatalf("reason %q (%d bytes), err %v", res.Reason, len(res.Reason), err)
	}
}

// Hammer: callers of several tenants give up on the pool's wait bound and
// on their own contexts while others return and replace instances; every
// token and slot comes back (the pool ends idle and serves again).
func TestPoolTokensSurviveGivingUp(t *testing.T) {
	h, _ := newTestHost(t, Config{noSmokeCalls: true})
	checkNoLeaks(t, h)
	p := load(t, h, "estimator", Spec{Limits: Limits{InstancesMax: 2, Containment: Containment{PoolWaitMax: 50 * time.Microsecond, TenantInstancesMin: 3}}})
	defer p.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				if i%7 == 0 {
					cancel()
				}
				req := estReq("x")
				req.Account = []string{"a", "b", "c", "d"}[(g+i)%4]
				_, _, err := p.Estimate(ctx, req)
				cancel()
				if err != nil && !errors.Is(err, ErrPoolWait) && !errors.Is(err, context.Canceled) {
					t.Errorf("call: %v", err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	v := p.cur.Load()
	if v.pool.busy() != 0 || v.pool.nwait.Load() != 0 {
		t.Fatalf("tokens %d, waiters %d after every call ended", v.pool.busy(), v.pool.nwait.Load())
	}
	if _, err := estimateErr(p); err != nil {
		t.Fatal(err)
	}
}
