package host

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
)

// addressSpaceLimitBytes is the address-space limit (ulimit -v) every
// guest in testplugins/ must leave the host alive under (issue 12).
const addressSpaceLimitBytes = 2 << 30

// ulimitChildEnv marks the re-executed test binary running under the limit.
const ulimitChildEnv = "PURSER_TEST_UNDER_ULIMIT"

// gobadTools are the Go guest's misbehaviours (testplugins/README.md).
var gobadTools = []string{"panic", "open", "loop", "alloc", "log", "x"}

// TestHostSurvivesEveryGuestUnderAddressSpaceLimit re-executes this test
// binary under a 2 GiB address-space limit (prlimit --as, or bash's
// ulimit -v), where it loads every .wasm under testplugins/ and calls each
// one that loads several times, on the host's default limits. A guest that
// makes the host allocate past its budget kills the child with Go's
// unrecoverable "fatal error: out of memory" (fuel-tablegrow did, before
// table.grow was charged per element), which fails this test.
func TestHostSurvivesEveryGuestUnderAddressSpaceLimit(t *testing.T) {
	if os.Getenv(ulimitChildEnv) == "1" {
		callEveryGuest(t)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary under a 2 GiB address-space limit; not in -short (.ci/run runs it as its own step)")
	}
	args := []string{"-test.run", "^TestHostSurvivesEveryGuestUnderAddressSpaceLimit$", "-test.count", "1", "-test.v"}
	var cmd *exec.Cmd
	if prlimit, err := exec.LookPath("prlimit"); err == nil {
		cmd = exec.Command(prlimit, append([]string{"--as=" + itoa(addressSpaceLimitBytes), "--", os.Args[0]}, args...)...)
	} else if bash, err := exec.LookPath("bash"); err == nil {
		script := `ulimit -v "$1" && shift && exec "$@"`
		cmd = exec.Command(bash, append([]string{"-c", script, "ulimit", itoa(addressSpaceLimitBytes >> 10), os.Args[0]}, args...)...)
	} else {
		t.Skip("neither prlimit (util-linux) nor bash is available to set an address-space limit")
	}
	cmd.Env = append(os.Environ(), ulimitChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	for _, line := range bytes.Split(out, []byte("\n")) {
		if bytes.Contains(line, []byte("ulimit_test.go")) || bytes.Contains(line, []byte("fatal error")) {
			t.Log(strings.TrimSpace(string(line)))
		}
	}
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestHostSurvivesEveryGuestUnderAddressSpaceLimit")) {
		t.Fatalf("under a %d-byte address-space limit the host did not survive (%v):\n%s", addressSpaceLimitBytes, err, tail(out, 60))
	}
}

// callEveryGuest is the child: load and call every committed guest.
func callEveryGuest(t *testing.T) {
	t.Logf("at start: %s", memStatus())
	h, _ := newTestHost(t, Config{Limits: Limits{CallTimeout: DefaultLimits().CallTimeout}})
	t.Logf("with a host: %s", memStatus())
	var files []string
	err := filepath.WalkDir(filepath.Join("..", "testplugins"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".wasm") {
			files = append(files, path)
		}
		return err
	})
	if err != nil || len(files) < 30 {
		t.Fatalf("found %d guests under testplugins/ (%v)", len(files), err)
	}
	ctx := context.Background()
	for _, file := range files {
		p, err := h.Load(ctx, Spec{File: file})
		if err != nil {
			t.Logf("%s: refused at load: %v", filepath.Base(file), firstLine(err.Error()))
			continue
		}
		outcomes := map[string]int{}
		for round := range 3 {
			for _, tool := range gobadTools {
				var err error
				if p.Kind() == abi.KindPolicy {
					_, _, err = p.Admit(ctx, abi.AdmitRequest{Call: estReq(tool).Call, EstimateNanos: int64(round)})
				} else {
					_, _, err = p.Estimate(ctx, estReq(tool))
				}
				outcomes[outcome(err)]++
			}
		}
		p.Close()
		t.Logf("%s: %v; %s", filepath.Base(file), outcomes, memStatus())
	}
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	if errors.Is(err, ErrFuelExhausted) {
		return "fuel_exhausted"
	}
	if k := ErrorKind(err); k != "" {
		return k
	}
	return "other"
}

// memStatus is the process's peak address space and resident set.
func memStatus() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "no /proc"
	}
	defer f.Close()
	var parts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := s.Text(); strings.HasPrefix(l, "VmPeak:") || strings.HasPrefix(l, "VmHWM:") {
			parts = append(parts, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(parts, ", ")
}

func tail(b []byte, lines int) string {
	l := bytes.Split(b, []byte("\n"))
	return string(bytes.Join(l[max(0, len(l)-lines):], []byte("\n")))
}
