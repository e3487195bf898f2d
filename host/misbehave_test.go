package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purser-dev/purser/abi"
)

func TestLoadRefusals(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	estBytes, err := os.ReadFile(wasmPath("estimator"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		spec   Spec
		want   error
		reason []string // substrings of the message
	}{
		{"badversion", Spec{}, ErrABIVersion, []string{"declares ABI 2.0", "supports 1.0"}},
		{"missingexport", Spec{}, ErrMissingExport, []string{"purser_alloc"}},
		{"badsig", Spec{}, ErrBadSignature, []string{"purser_estimate", "(i32, i32) -> (i32)", "want (i32, i32) -> (i64)"}},
		{"unknownimport", Spec{}, ErrUnknownImport, []string{"env.now"}},
		{"wrongkind", Spec{}, ErrMissingExport, []string{`kind "policy" requires export purser_admit`}},
		{"badinit", Spec{}, ErrInit, []string{"bad_config", "missing price table"}},
		{"membomb_static", Spec{}, ErrInvalidModule, []string{"memory"}},
		{"estimator", Spec{SHA256: strings.Repeat("ab", 32)}, ErrDigestMismatch, []string{"pins abab"}},
		{"nofile", Spec{File: filepath.Join(t.TempDir(), "nofile.wasm")}, ErrRead, []string{"no such file"}},
		{"garbage", Spec{File: "garbage.wasm", Bytes: []byte("not wasm at all")}, ErrInvalidModule, nil},
		{"truncated", Spec{File: "truncated.wasm", Bytes: estBytes[:len(estBytes)/2]}, ErrInvalidModule, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			if spec.File == "" {
				spec.File = wasmPath(c.name)
			}
			p, err := h.Load(context.Background(), spec)
			if err == nil {
				p.Close()
				t.Fatal("loaded")
			}
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, c.want) {
				t.Fatalf("err = %v (%T), want a *LoadError wrapping %v", err, err, c.want)
			}
			if le.Plugin == "" || le.File != spec.File || !strings.Contains(err.Error(), le.Plugin) || !strings.Contains(err.Error(), spec.File) {
				t.Fatalf("error does not name plugin and file: %+v", le)
			}
			if c.name == "badinit" {
				var ce *CallError
				if !errors.As(err, &ce) || abi.Code(ce.Code) != abi.CodeBadConfig || ce.Message != "missing price table" {
					t.Fatalf("init refusal does not carry the guest's code and message: %+v", ce)
				}
			}
			for _, s := range c.reason {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if n := h.Instances(); n != 0 {
				t.Fatalf("%d instances left after a refused load", n)
			}
		})
	}
}

func TestMisbehavingCalls(t *testing.T) {
	h, logs := newTestHost(t, Config{Limits: Limits{CallTimeout: 200 * time.Millisecond, InstancesMax: 1}, noSmokeCalls: true})
	checkNoLeaks(t, h)
	good := load(t, h, "estimator", Spec{Limits: Limits{CallTimeout: 10 * time.Second}})
	defer good.Close()
	cases := []struct {
		name     string
		tool     string
		want     error
		code     uint32
		replaced bool // the instance must be discarded
		msg      string
		log      string        // expected in the plugin's log
		timeout  time.Duration // per-plugin CallTimeout override
		fuel     int64         // per-plugin FuelPerCallMax override
	}{
		// Fuel ends runaway guests; the deadline is only the backstop,
		// seen here with a budget too large to run out first.
		{"loop", "x", ErrFuelExhausted, 0, true, "20041600-unit budget", "", 0, 0},
		{"loop", "x", ErrTimeout, 0, true, "deadline", "", 0, 1 << 50},
		{"trap", "x", ErrTrap, 0, true, "unreachable", "", 0, 0},
		// wazero's stack ceiling ends deep recursion before the fuel does.
		{"recursion", "x", ErrTrap, 0, true, "stack overflow", "", 30 * time.Second, 0},
		{"hugeoutput", "x", ErrOutputTooLarge, 0, true, "1048576 bytes", "", 0, 0},
		{"garbage_range", "x", ErrBadOutput, 0, true, "outside", "", 0, 0},
		{"garbage_record", "x", ErrBadOutput, 0, true, "text_len", "", 0, 0},
		{"guesterror", "x", ErrInvalidParams, 5, false, "no price for this tool", "", 0, 0},
		{"gobad", "panic", ErrTrap, 0, true, "unreachable", "panic: gobad: asked to panic", 0, 0},
		{"gobad", "loop", ErrFuelExhausted, 0, true, "budget", "", 0, 0},
		// A memory bomb hits the memory limit, or the fuel on a tight budget.
		{"gobad", "alloc", ErrTrap, 0, true, "", "out of memory", 30 * time.Second, 0},
		{"gobad", "alloc", ErrFuelExhausted, 0, true, "budget", "", 0, 5_000_000},
		{"gobad", "open", ErrGuestError, 1000, false, "open /etc/passwd", "", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+c.tool, func(t *testing.T) {
			timeout := c.timeout
			if timeout == 0 && c.want != ErrTimeout {
				timeout = 10 * time.Second // only timeout cases use the host's 200 ms
			}
			p := load(t, h, c.name, Spec{Limits: Limits{CallTimeout: timeout, FuelPerCallMax: c.fuel}})
			defer p.Close()
			stopGC := gcWhileCalling(t, good)
			_, _, err := p.Estimate(context.Background(), estReq(c.tool))
			stopGC()
			var ce *CallError
			if !errors.As(err, &ce) || !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want a *CallError wrapping %v", err, c.want)
			}
			if ce.Plugin != p.Name() || ce.Digest != p.Digest() || ce.Code != c.code || !strings.Contains(ce.Message, c.msg) {
				t.Fatalf("CallError = %+v", ce)
			}
			if !strings.Contains(err.Error(), p.Name()) {
				t.Fatalf("error %q does not name the plugin", err)
			}
			if c.log != "" && !strings.Contains(logs.String(), c.log) {
				t.Fatalf("log lacks %q:\n%.3000s", c.log, logs.String())
			}
			st := p.Stats()
			if c.replaced && st.Instances != 0 {
				t.Fatalf("misbehaving instance kept: %+v", st)
			}
			if !c.replaced && st.Instances != 1 {
				t.Fatalf("instance discarded after a guest error: %+v", st)
			}
			// The next call runs on a fresh instance (or the kept one).
			_, _, _ = p.Estimate(context.Background(), estReq(c.tool))
			want := uint64(1)
			if c.replaced {
				want = 2
			}
			if got := p.Stats().InstancesCreated; got != want {
				t.Fatalf("InstancesCreated = %d, want %d", got, want)
			}
			if st := p.Stats(); st.Errors[ErrorKind(c.want)] != 2 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
	// The good plugin answered throughout and is healthy.
	if res, _, err := good.Estimate(context.Background(), estReq("Read")); err != nil || res.Nanos != 1_000_000 {
		t.Fatalf("good plugin: %+v %v", res, err)
	}
}

// gcWhileCalling runs runtime.GC and calls to another plugin in a loop
// until stopped; stop fails the test if either got stuck or failed. It
// proves a misbehaving guest neither blocks the GC nor other plugins.
func gcWhileCalling(t *testing.T, other *Plugin) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	var gcs, calls atomic.Int64
	var callErr atomic.Value
	wg.Add(2)
	go func() {
		defer wg.Done()
		for !done.Load() {
			runtime.GC()
			gcs.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		for !done.Load() {
			if _, _, err := other.Estimate(context.Background(), estReq("Read")); err != nil {
				callErr.Store(err)
			}
			calls.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	return func() {
		t.Helper()
		// While the misbehaving call ran, both loops must have made progress;
		// give them a bounded chance after it too (fast failures finish
		// before the goroutines are scheduled).
		eventually(t, "runtime.GC and other plugin calls to progress", func() bool { return gcs.Load() > 0 && calls.Load() > 0 })
		done.Store(true)
		wg.Wait()
		if err, _ := callErr.Load().(error); err != nil {
			t.Fatalf("other plugin failed meanwhile: %v", err)
		}
	}
}

// TestGCCompletesWhileGuestLoops pins the strongest claim: a GC started
// while a guest spins finishes before the guest is stopped.
func TestGCCompletesWhileGuestLoops(t *testing.T) {
	h, _ := newTestHost(t, Config{Limits: Limits{CallTimeout: time.Hour}, noSmokeCalls: true})
	checkNoLeaks(t, h)
	for _, name := range []string{"loop", "gobad"} {
		p := load(t, h, name, Spec{Limits: Limits{FuelPerCallMax: 1 << 50}})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, _, err := p.Estimate(ctx, estReq("loop"))
			errc <- err
		}()
		eventually(t, "the guest to start looping", func() bool { return p.Stats().Instances == 1 && p.cur.Load().pool.busy() == 1 })
		time.Sleep(20 * time.Millisecond) // let it enter the loop; not an assertion
		gcDone := make(chan struct{})
		go func() { runtime.GC(); close(gcDone) }()
		select {
		case <-gcDone:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: runtime.GC blocked by a looping guest", name)
		}
		select {
		case err := <-errc:
			t.Fatalf("%s: call returned before cancel: %v", name, err)
		default:
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: err = %v, want context.Canceled", name, err)
		}
		if p.Health().ConsecutiveFailures != 0 {
			t.Fatalf("%s: caller cancellation counted against health", name)
		}
		p.Close()
	}
}

// TestStartFunctionLoopIsStopped: a wasm start section that never returns
// is stopped: by the init fuel when metered (the start function runs in
// boot), at the init deadline on wazero's mechanism.
func TestStartFunctionLoopIsStopped(t *testing.T) {
	for _, k := range []stopKind{stopWatchdog, stopWatchdogNoFuel} {
		h, _ := newTestHost(t, Config{Limits: Limits{InitTimeout: 300 * time.Millisecond}, stop: k})
		_, err := h.Load(context.Background(), Spec{File: wasmPath("startloop")})
		if !errors.Is(err, ErrInit) {
			t.Fatalf("stop kind %d: err = %v", k, err)
		}
		if h.Instances() != 0 {
			t.Fatalf("stop kind %d: %d instances leaked", k, h.Instances())
		}
	}
}

func TestMemoryBombIsCapped(t *testing.T) {
	h, _ := newTestHost(t, Config{Limits: Limits{MemoryPagesMax: 64, CallTimeout: 30 * time.Second}})
	checkNoLeaks(t, h)
	p := load(t, h, "membomb", Spec{})
	defer p.Close()
	res, _, err := p.Estimate(context.Background(), estReq("x"))
	if err != nil || res.Nanos != 64 {
		t.Fatalf("membomb reached %d pages (err %v), want the 64-page limit", res.Nanos, err)
	}
	// A per-plugin override gets its own limit.
	q := load(t, h, "membomb", Spec{Limits: Limits{MemoryPagesMax: 16}})
	defer q.Close()
	if res, _, err = q.Estimate(context.Background(), estReq("x")); err != nil || res.Nanos != 16 {
		t.Fatalf("override: %d pages, %v", res.Nanos, err)
	}
}

func TestWASIHasNoFilesystem(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	p := load(t, h, "wasiopen", Spec{})
	defer p.Close()
	res, _, err := p.Estimate(context.Background(), estReq("x"))
	const errnoBadf = 8
	if err != nil || res.Nanos != errnoBadf {
		t.Fatalf("path_open errno = %d (err %v), want EBADF: no preopened directory", res.Nanos, err)
	}
}

func TestPolicyGarbageVerdict(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	p := load(t, h, "garbage_verdict", Spec{})
	defer p.Close()
	_, _, err := p.Admit(context.Background(), abi.AdmitRequest{Call: estReq("x").Call})
	if !errors.Is(err, ErrBadOutput) || !strings.Contains(err.Error(), "verdict 9") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnhealthyAfterConsecutiveFailures(t *testing.T) {
	h, logs := newTestHost(t, Config{Limits: Limits{FailuresBeforeUnhealthy: 3, UnhealthyRetryAfter: time.Hour}, noSmokeCalls: true})
	p := load(t, h, "trap", Spec{})
	defer p.Close()
	for i := 0; i < 3; i++ {
		if _, _, err := p.Estimate(context.Background(), estReq("x")); !errors.Is(err, ErrTrap) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if hl := p.Health(); hl.Healthy || hl.ConsecutiveFailures != 3 || !strings.Contains(hl.LastError, "trapped") {
		t.Fatalf("health = %+v", hl)
	}
	created := p.Stats().InstancesCreated
	_, _, err := p.Estimate(context.Background(), estReq("x"))
	// The last failure is named by kind only: its text may be another tenant's.
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "last: trap") || strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("unhealthy call: %v", err)
	}
	if p.Stats().InstancesCreated != created {
		t.Fatal("an unhealthy plugin was called")
	}
	if !strings.Contains(logs.String(), "plugin marked unhealthy") {
		t.Fatal("no log line for unhealthy")
	}
	// A trial call is let through after UnhealthyRetryAfter; a success heals.
	h.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	p.cur.Load().limits.FailuresBeforeUnhealthy = 3
	if _, _, err := p.Estimate(context.Background(), estReq("x")); !errors.Is(err, ErrTrap) {
		t.Fatalf("trial call: %v", err)
	}
	q := load(t, h, "estimator", Spec{Limits: Limits{FailuresBeforeUnhealthy: 1, UnhealthyRetryAfter: time.Nanosecond}})
	defer q.Close()
	q.fail(q.cur.Load(), opEstimate, ErrTrap, 0, "synthetic")
	if q.Health().Healthy {
		t.Fatal("not unhealthy after 1 failure")
	}
	time.Sleep(time.Millisecond)
	if _, _, err := q.Estimate(context.Background(), estReq("x")); err != nil {
		t.Fatalf("trial: %v", err)
	}
	if hl := q.Health(); !hl.Healthy || hl.ConsecutiveFailures != 0 {
		t.Fatalf("success did not heal: %+v", hl)
	}
}

func TestGuestUnsupportedDoesNotCount(t *testing.T) {
	if !countsAsFailure(guestErrorKind(abi.CodeInternal)) || !countsAsFailure(guestErrorKind(1000)) ||
		countsAsFailure(guestErrorKind(abi.CodeUnsupported)) || countsAsFailure(guestErrorKind(abi.CodeBadParams)) {
		t.Fatal("unsupported and bad_params must not count, other guest errors must")
	}
}

func TestInputTooLarge(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	p := load(t, h, "estimator", Spec{Limits: Limits{InputBytesMax: 200}})
	defer p.Close()
	req := estReq("x")
	req.Params = []byte(`"` + strings.Repeat("a", 300) + `"`)
	_, _, err := p.Estimate(context.Background(), req)
	if !errors.Is(err, ErrInputTooLarge) || p.Health().ConsecutiveFailures != 0 {
		t.Fatalf("err = %v, health %+v", err, p.Health())
	}
	// A request the guest's purser_alloc refuses is bad output.
	q := load(t, h, "estimator", Spec{})
	defer q.Close()
	req.Params = []byte(`"` + strings.Repeat("a", 70000) + `"`)
	if _, _, err = q.Estimate(context.Background(), req); !errors.Is(err, ErrBadOutput) || !strings.Contains(err.Error(), "purser_alloc") {
		t.Fatalf("err = %v", err)
	}
}

func TestLogsGoToPluginLoggerTruncated(t *testing.T) {
	h, logs := newTestHost(t, Config{Limits: Limits{LogBytesPerCallMax: 2500}, noSmokeCalls: true}) // counts one call's lines
	p := load(t, h, "logspam", Spec{})
	defer p.Close()
	if _, _, err := p.Estimate(context.Background(), estReq("x")); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if n := strings.Count(out, strings.Repeat("x", 100)); n == 0 || strings.Count(out, "x") > 2500+200 {
		t.Fatalf("log budget not applied: %d x's", strings.Count(out, "x"))
	}
	if !strings.Contains(out, "purser.host.logspam") || strings.Count(out, "log output truncated") != 1 {
		t.Fatalf("logs:\n%.2000s", out)
	}
	g := load(t, h, "gobad", Spec{})
	defer g.Close()
	if _, _, err := g.Estimate(context.Background(), estReq("log")); err != nil {
		t.Fatal(err)
	}
	out = logs.String()
	if !strings.Contains(out, "[INFO]  purser.host.gobad: hello from stdout") || !strings.Contains(out, "[WARN]  purser.host.gobad: hello from stderr") {
		t.Fatalf("stdout/stderr not logged:\n%s", out)
	}
}

func TestCallerDeadlineWhileWaitingForInstance(t *testing.T) {
	h, _ := newTestHost(t, Config{Limits: Limits{InstancesMax: 1, CallTimeout: time.Hour, FuelPerCallMax: 1 << 50}, noSmokeCalls: true})
	checkNoLeaks(t, h)
	p := load(t, h, "loop", Spec{})
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, _, err := p.Estimate(ctx, estReq("x")); errc <- err }()
	eventually(t, "the first call to hold the instance", func() bool { return p.cur.Load().pool.busy() == 1 })
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if _, _, err := p.Estimate(short, estReq("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting call: %v", err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("looping call: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	h, _ := newTestHost(t, Config{Limits: Limits{InstancesMax: 3}})
	checkNoLeaks(t, h)
	est := load(t, h, "estimator", Spec{})
	g := load(t, h, "gobad", Spec{})
	defer est.Close()
	defer g.Close()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				req := estReq("x")
				req.PromptChars = int64(j)
				res, _, err := g.Estimate(context.Background(), req)
				if err != nil || res.Nanos != int64(len(req.Params))*1000+int64(j) {
					t.Errorf("gobad: %+v %v", res, err)
					return
				}
				if _, _, err := est.Estimate(context.Background(), req); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := g.Stats().Instances; n < 1 || n > 3 {
		t.Fatalf("%d instances, limit 3", n)
	}
}

// TestDiscardHandsSlotToWaiter: with one instance and many callers, a
// trapping instance's slot goes to a waiting caller, which creates the
// replacement; nobody waits forever and nothing leaks.
func TestDiscardHandsSlotToWaiter(t *testing.T) {
	h, _ := newTestHost(t, Config{Limits: Limits{InstancesMax: 1, FailuresBeforeUnhealthy: 1000}, noSmokeCalls: true})
	checkNoLeaks(t, h)
	p := load(t, h, "trap", Spec{})
	defer p.Close()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				if _, _, err := p.Estimate(context.Background(), estReq("x")); !errors.Is(err, ErrTrap) {
					t.Errorf("err = %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if st := p.Stats(); st.InstancesCreated != 60 || st.Instances != 0 {
		t.Fatalf("stats %+v, want 60 instances created (1 at load + 59 replacements), none live", st)
	}
}
