package bundle

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Any name checkName accepts, joined to a folder, stays inside it: no
// archive entry can make WriteDir write elsewhere.
func TestAcceptedNamesStayInside(t *testing.T) {
	part := rapid.SampledFrom([]string{"a", "b.wasm", "..", ".", "", "/", "\\", "c:", "...", "d..", "x/"})
	rapid.Check(t, func(t *rapid.T) {
		name := strings.Join(rapid.SliceOfN(part, 1, 6).Draw(t, "parts"), "")
		if checkName(name) != nil {
			return
		}
		root := "/srv/bundle"
		p := filepath.Join(root, filepath.FromSlash(name))
		if !strings.HasPrefix(p, root+"/") {
			t.Fatalf("accepted %q, which lands at %s", name, p)
		}
	})
}

type failingSource struct{}

func (failingSource) Fetch(context.Context, string) (Files, string, bool, error) {
	return nil, "", false, errors.New("unreachable")
}
func (failingSource) String() string { return "nowhere" }

func TestRunReportsEachTickAndStops(t *testing.T) {
	k := NewKeeper(failingSource{}, Options{}, nil, fixedClock)
	ctx, cancel := context.WithCancel(context.Background())
	ticks, errs, done := make(chan time.Time), make(chan error, 2), make(chan struct{})
	go func() {
		defer close(done)
		k.Run(ctx, ticks, func(err error) { errs <- err })
	}()
	ticks <- time.Time{}
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("tick reported %v", err)
	}
	cancel()
	<-done
	if st := k.Status(); st.LastError == "" || st.Source != "nowhere" || !st.CheckedAt.Equal(fixedClock()) {
		t.Fatalf("status %+v", st)
	}
}
