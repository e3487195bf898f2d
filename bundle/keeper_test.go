package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// server serves whatever archive it holds, with its ETag, honouring
// If-None-Match.
type server struct {
	mu      sync.Mutex
	body    []byte
	etag    string
	got304  int
	fetches int
}

func (s *server) set(body []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag = body, etag
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches++
	if r.Header.Get("If-None-Match") == s.etag {
		s.got304++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", s.etag)
	_, _ = w.Write(s.body)
}

func fixedClock() time.Time { return time.Unix(1_700_000_000, 0) }

// tamper rewrites one file of an archive, keeping the manifest: its
// digest no longer matches.
func tamper(t *testing.T, b *Bundle, name string) []byte {
	t.Helper()
	bad := &Bundle{Files: Files{}}
	for k, v := range b.Files {
		bad.Files[k] = v
	}
	bad.Files[name] = append([]byte(nil), "\x00asm-evil"...)
	return tarGz(t, bad)
}

func TestKeeperGoodBadGood(t *testing.T) {
	good1 := build(t, BuildOptions{Revision: "1"})
	good2 := build(t, BuildOptions{Revision: "2"})
	srv := &server{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var applied []string
	k := NewKeeper(HTTPSource{URL: ts.URL}, Options{}, func(_ context.Context, b *Bundle) error {
		applied = append(applied, b.Manifest.Revision)
		return nil
	}, fixedClock)
	ctx := context.Background()

	srv.set(tarGz(t, good1), `"one"`)
	if changed, err := k.Update(ctx); !changed || err != nil {
		t.Fatalf("first good bundle: changed %v, %v", changed, err)
	}
	if changed, err := k.Update(ctx); changed || err != nil || srv.got304 != 1 {
		t.Fatalf("unchanged bundle: changed %v, %v, 304s %d (want a conditional GET answered 304)", changed, err, srv.got304)
	}

	srv.set(tamper(t, good1, "est.wasm"), `"bad"`)
	changed, err := k.Update(ctx)
	if changed || !errors.Is(err, ErrDigest) || !strings.Contains(err.Error(), `"est.wasm"`) {
		t.Fatalf("bad bundle: changed %v, %v; want ErrDigest naming est.wasm", changed, err)
	}
	st := k.Status()
	if st.Revision != "1" || st.Digest != good1.Digest || !strings.Contains(st.LastError, "est.wasm") {
		t.Fatalf("after the bad bundle the status is %+v; want revision 1 serving and the error", st)
	}

	srv.set(tarGz(t, good2), `"two"`)
	if changed, err := k.Update(ctx); !changed || err != nil {
		t.Fatalf("good again: changed %v, %v", changed, err)
	}
	if st := k.Status(); st.Revision != "2" || st.LastError != "" || k.Current().Digest != good2.Digest {
		t.Fatalf("status %+v, want revision 2 and no error", st)
	}
	if fmt.Sprint(applied) != "[1 2]" {
		t.Fatalf("applied %v, want [1 2] (never the bad one)", applied)
	}
}

func TestKeeperKeepsLastGoodWhenApplyFails(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "b.tar.gz")
	write := func(b *Bundle) {
		if err := os.WriteFile(archive, tarGz(t, b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	loadErr := errors.New("plugin est.wasm failed to load")
	k := NewKeeper(PathSource{Path: archive}, Options{}, func(_ context.Context, b *Bundle) error {
		if b.Manifest.Revision == "broken" {
			return loadErr
		}
		return nil
	}, fixedClock)
	write(build(t, BuildOptions{Revision: "ok"}))
	if _, err := k.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	write(build(t, BuildOptions{Revision: "broken"}))
	if changed, err := k.Update(context.Background()); changed || !errors.Is(err, loadErr) {
		t.Fatalf("failing bundle: changed %v, %v", changed, err)
	}
	if k.Current().Manifest.Revision != "ok" {
		t.Fatalf("serving %q, want the last good %q", k.Current().Manifest.Revision, "ok")
	}
	if err := os.WriteFile(archive, []byte("not gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Update(context.Background()); err == nil || k.Current().Manifest.Revision != "ok" {
		t.Fatalf("garbage file: %v, serving %q", err, k.Current().Manifest.Revision)
	}
}

func TestHTTPSourceBounds(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte("z"), 4096))
	}))
	defer ts.Close()
	_, _, _, err := HTTPSource{URL: ts.URL, Limits: Limits{ArchiveBytesMax: 1024}}.Fetch(context.Background(), "")
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("oversized download: %v, want ErrLimit", err)
	}
	_, _, _, err = HTTPSource{URL: ts.URL + "/missing"}.Fetch(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
}
