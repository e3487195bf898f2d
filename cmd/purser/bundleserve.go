package main

import (
	"context"
	"fmt"
	"io/fs"
	neturl "net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/purser-dev/purser/bundle"
	"github.com/purser-dev/purser/host"
	"github.com/purser-dev/purser/signing"
)

// BundleConfig is plugins.bundle: plugins from one bundle (a folder, a
// .tar.gz, or an HTTP URL polled with ETag), on top of plugins.entries
// (docs/bundles.md).
type BundleConfig struct {
	Path         string        `koanf:"path"`
	URL          string        `koanf:"url"`
	PollInterval time.Duration `koanf:"poll_interval"` // 0: read once at start
	Timeout      time.Duration `koanf:"timeout"`       // one download; default 30s
	// RequireSignature refuses a bundle without bundle.json.sig by one of
	// plugins.trusted_keys.
	RequireSignature bool   `koanf:"require_signature"`
	SHA256           string `koanf:"sha256"` // pins the manifest digest
	FilesMax         int    `koanf:"files_max"`
	FileBytesMax     int64  `koanf:"file_bytes_max"`
	ArchiveBytesMax  int64  `koanf:"archive_bytes_max"`
	TotalBytesMax    int64  `koanf:"total_bytes_max"`
}

// bundleSetup is a valid plugins.bundle.
type bundleSetup struct {
	source bundle.Source
	opt    bundle.Options
	poll   time.Duration
}

// build checks plugins.bundle; nil when no bundle is configured.
func (c BundleConfig) build(p *problems, keys []TrustedKeyConfig) *bundleSetup {
	const path = "plugins.bundle."
	if c.Path == "" && c.URL == "" {
		return nil
	}
	lim := bundle.Limits{FilesMax: c.FilesMax, FileBytesMax: c.FileBytesMax, ArchiveBytesMax: c.ArchiveBytesMax, TotalBytesMax: c.TotalBytesMax}
	for key, v := range map[string]int64{"files_max": int64(c.FilesMax), "file_bytes_max": c.FileBytesMax,
		"archive_bytes_max": c.ArchiveBytesMax, "total_bytes_max": c.TotalBytesMax, "timeout": int64(c.Timeout), "poll_interval": int64(c.PollInterval)} {
		if v < 0 {
			p.add(path+key, "must be >= 0 (0 = default), got %d", v)
		}
	}
	s := &bundleSetup{poll: c.PollInterval, opt: bundle.Options{Limits: lim, RequireSignature: c.RequireSignature, Digest: c.SHA256}}
	switch {
	case c.Path != "" && c.URL != "":
		p.add(path+"url", "set path or url, not both")
	case c.URL != "":
		if u, err := neturl.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add(path+"url", "must be an absolute http:// or https:// URL, got %q", c.URL)
		}
		s.source = bundle.HTTPSource{URL: c.URL, Timeout: c.Timeout, Limits: lim}
	default:
		s.source = bundle.PathSource{Path: c.Path, Limits: lim}
	}
	if c.PollInterval != 0 && c.PollInterval < time.Second {
		p.add(path+"poll_interval", "must be 0 (read once) or at least 1s, got %s", c.PollInterval)
	}
	if c.SHA256 != "" && len(c.SHA256) != 64 {
		p.add(path+"sha256", "must be the 64-hex digest purser bundle inspect prints")
	}
	for _, k := range keys {
		if pub, err := k.public(); err == nil { // errors are reported at plugins.trusted_keys
			s.opt.TrustedKeys = append(s.opt.TrustedKeys, signing.TrustedKey{Public: pub, Revoked: k.Revoked})
		}
	}
	if c.RequireSignature && len(s.opt.TrustedKeys) == 0 {
		p.add(path+"require_signature", "needs at least one plugins.trusted_keys entry")
	}
	return s
}

// bundleLoader puts bundles into service: a new bundle is written to a
// staging folder, each of its plugins is loaded there once (signature,
// compile, smoke calls), and only then copied over the live folder and
// handed to the registry. A bundle that fails anywhere leaves the live
// folder and the registry as they were.
type bundleLoader struct {
	h    *host.Host
	dir  string      // <data_dir>/bundle
	base []host.Spec // plugins.entries, always loaded beside the bundle

	mu    sync.Mutex
	reg   *host.Registry // nil until the registry exists
	specs []host.Spec    // of the serving bundle
}

func (l *bundleLoader) apply(ctx context.Context, b *bundle.Bundle) error {
	stage := filepath.Join(l.dir, "stage")
	_ = os.RemoveAll(stage)
	defer os.RemoveAll(stage)
	if err := b.WriteDir(stage); err != nil {
		return err
	}
	for _, s := range bundleSpecs(b, stage) {
		p, err := l.h.Load(ctx, s)
		if err != nil {
			return fmt.Errorf("plugin %s: %w", filepath.Base(s.File), err)
		}
		p.Close()
	}
	live := filepath.Join(l.dir, "live")
	if err := b.WriteDir(live); err != nil {
		return err
	}
	pruneLive(live, b.Files)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.specs = bundleSpecs(b, live)
	if l.reg == nil {
		return nil
	}
	return l.reg.SetPlugins(ctx, append(append([]host.Spec(nil), l.base...), l.specs...))
}

func (l *bundleLoader) attach(reg *host.Registry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reg = reg
}

// bundleSpecs turns the bundle's entries into host specs under dir; the
// manifest was validated, so the values parse.
func bundleSpecs(b *bundle.Bundle, dir string) []host.Spec {
	var out []host.Spec
	for _, e := range b.Manifest.Plugins {
		s := host.Spec{File: filepath.Join(dir, filepath.FromSlash(e.Path)), Config: e.Config, Order: e.Order,
			SHA256: b.Manifest.Files[e.Path]}
		if e.FailMode == "open" {
			s.FailMode = host.FailOpen
		}
		s.Isolation, _ = host.ParseIsolation(e.Isolation)
		out = append(out, s)
	}
	return out
}

// startBundle reads the bundle once before the registry starts and
// returns its plugins; finish attaches the registry and starts polling.
func (eng *engine) startBundle(ctx context.Context, h *host.Host, base []host.Spec) (specs []host.Spec, finish func(*host.Registry)) {
	s := eng.built.bundle
	if s == nil {
		return nil, func(*host.Registry) {}
	}
	l := &bundleLoader{h: h, dir: filepath.Join(eng.cfg.DataDir, "bundle"), base: base}
	k := bundle.NewKeeper(s.source, s.opt, l.apply, time.Now)
	log := eng.logger.Named("bundle")
	if _, err := k.Update(ctx); err != nil {
		log.Error("plugin bundle not loaded; its plugins are not served", "source", s.source.String(), "error", err)
	} else {
		st := k.Status()
		log.Info("plugin bundle loaded", "source", st.Source, "revision", st.Revision, "digest", st.Digest, "signed_by", st.SignedBy)
	}
	return l.specs, func(reg *host.Registry) {
		l.attach(reg)
		if s.poll <= 0 {
			return
		}
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		t := time.NewTicker(s.poll)
		done := make(chan struct{})
		go func() {
			defer close(done)
			k.Run(pctx, t.C, func(err error) { log.Error("plugin bundle update refused", "error", err) })
		}()
		eng.closers = append(eng.closers, func() error { cancel(); t.Stop(); <-done; return nil })
	}
}

// pruneLive removes files an earlier bundle left in the live folder (the
// registry unloads their plugins; the files would only accumulate).
func pruneLive(live string, keep bundle.Files) {
	_ = filepath.WalkDir(live, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(live, p)
		if _, ok := keep[filepath.ToSlash(rel)]; err == nil && !ok {
			_ = os.Remove(p)
		}
		return nil
	})
}
