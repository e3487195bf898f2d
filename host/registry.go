package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/signing"
)

// RegistryConfig says where plugins come from.
type RegistryConfig struct {
	// Dir holds plugins: every *.wasm directly in it is loaded with
	// DirDefaults. Optional.
	Dir         string
	DirDefaults Spec // File and Bytes are ignored
	// Plugins are explicit entries. An entry whose File is in Dir overrides
	// the Dir defaults for that file.
	Plugins []Spec
	// Watch reloads on file changes (fsnotify on Dir and the entries' folders).
	Watch bool
	// Debounce groups bursts of file events into one reload. Default 250ms.
	Debounce time.Duration
	// ManifestChangeAllowed lets a reload change a plugin's manifest name,
	// kind or tools. By default such a reload is refused (ErrManifestChanged)
	// and the running version stays: swapping a file must not silently turn
	// an estimator into a policy or widen what it judges.
	ManifestChangeAllowed bool
}

// ErrManifestChanged: a reload would change the plugin's manifest name,
// kind or tools, and RegistryConfig.ManifestChangeAllowed is off.
var ErrManifestChanged = errors.New("reload changes the manifest's name, kind or tools")

// Registry is the set of loaded plugins, reloadable as a whole.
type Registry struct {
	h      *Host
	cfg    RegistryConfig
	logger hclog.Logger

	reloadMu sync.Mutex // one reload at a time
	mu       sync.RWMutex
	slots    map[string]*slot // by absolute file path
	order    []*Plugin        // cached views, rebuilt on change
	policies []*Plugin

	watcher *fsnotify.Watcher
	stop    chan struct{}
	done    chan struct{}
}

// slot is one plugin file and what became of its last load.
type slot struct {
	spec       Spec
	plugin     *Plugin // nil until a load succeeded
	digest     string  // loaded digest
	lastErr    error
	lastReload time.Time
}

// PluginStatus reports one plugin file.
type PluginStatus struct {
	Name       string // manifest name ("" if never loaded)
	File       string
	Kind       abi.Kind
	Version    string
	Digest     string // sha256 of the version serving calls
	SignedBy   string // key id of its verified signature ("" when unsigned or unchecked)
	Loaded     bool
	LastError  string // last failed load or reload ("" after a success)
	LastReload time.Time
	Health     Health
	FailMode   FailMode
	Order      int
	Stats      Stats
}

// NewRegistry loads every configured plugin. A plugin that fails to load
// is reported in Status and in the returned error (errors.Join of
// *LoadError); the registry is usable either way. A nil registry is
// returned only for configuration errors.
func (h *Host) NewRegistry(ctx context.Context, cfg RegistryConfig) (*Registry, error) {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 250 * time.Millisecond
	}
	r := &Registry{h: h, cfg: cfg, logger: h.cfg.Logger.ResetNamed("purser.host.registry"), slots: map[string]*slot{}}
	if cfg.Watch {
		if err := r.startWatch(); err != nil {
			return nil, err
		}
	}
	return r, r.Reload(ctx)
}

// specs lists the wanted plugin files: the explicit entries plus every
// *.wasm in Dir not covered by one.
func (r *Registry) specs() (map[string]Spec, error) {
	out := map[string]Spec{}
	for _, s := range r.cfg.Plugins {
		if s.File == "" {
			return nil, errors.New("host: registry entry without File")
		}
		abs, err := filepath.Abs(s.File)
		if err != nil {
			return nil, fmt.Errorf("host: plugin path %q: %w", s.File, err)
		}
		s.File, s.Bytes = abs, nil
		out[abs] = s
	}
	if r.cfg.Dir == "" {
		return out, nil
	}
	files, err := filepath.Glob(filepath.Join(r.cfg.Dir, "*.wasm"))
	if err != nil {
		return nil, fmt.Errorf("host: plugin dir %q: %w", r.cfg.Dir, err)
	}
	if _, err := os.Stat(r.cfg.Dir); err != nil {
		return nil, fmt.Errorf("host: plugin dir: %w", err)
	}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("host: plugin path %q: %w", f, err)
		}
		if _, ok := out[abs]; !ok {
			s := r.cfg.DirDefaults
			s.File, s.Bytes = abs, nil
			out[abs] = s
		}
	}
	return out, nil
}

// Reload rescans the plugins: new files are loaded, changed files are
// compiled, validated and smoke-tested before they replace the running
// version, removed files are unloaded. A file that fails keeps its previous
// version in service. The error joins every failure.
func (r *Registry) Reload(ctx context.Context) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	specs, err := r.specs()
	if err != nil {
		return err
	}
	var errs []error
	for path, spec := range specs {
		if err := r.reloadOne(ctx, path, spec); err != nil {
			errs = append(errs, err)
		}
	}
	r.mu.Lock()
	for path, s := range r.slots {
		if _, ok := specs[path]; !ok {
			delete(r.slots, path)
			if s.plugin != nil {
				r.logger.Info("plugin removed", "plugin", s.plugin.Name(), "file", path)
				s.plugin.Close()
			}
		}
	}
	r.rebuildLocked()
	r.mu.Unlock()
	return errors.Join(errs...)
}

func (r *Registry) reloadOne(ctx context.Context, path string, spec Spec) error {
	r.mu.RLock()
	s := r.slots[path]
	r.mu.RUnlock()
	// Hash the file rather than trusting mtime: kernel timestamps are
	// coarse and deploys often keep the size.
	bin, readErr := os.ReadFile(path)
	if s != nil && s.plugin != nil && readErr == nil && s.lastErr == nil &&
		Digest(bin) == s.digest && sameSpec(s.spec, spec) {
		return nil
	}
	if s == nil {
		s = &slot{spec: spec}
	}
	loadSpec := spec
	loadSpec.Bytes = bin // nil on a read error: loadVersion reports it
	v, err := r.h.loadVersion(ctx, &loadSpec)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slots[path] = s
	s.lastReload = now
	name := spec.provisionalName()
	if v != nil {
		name = v.name
	}
	if err != nil {
		s.lastErr = err
		if s.plugin != nil {
			r.logger.Error("plugin reload failed; previous version stays in service", "file", path, "serving", s.digest, "error", err)
		} else {
			r.logger.Error("plugin load failed", "file", path, "error", err)
		}
	}
	if err == nil {
		err = r.publishLocked(s, path, spec, v)
	}
	// Observed after the registry's own checks: a refused swap is a failure.
	r.h.cfg.Observer.ObserveReload(name, err)
	return err
}

// publishLocked swaps v in for the slot unless the registry refuses it
// (a changed manifest, a name another file uses). A refusal leaves the
// running version in service and is recorded in the slot.
func (r *Registry) publishLocked(s *slot, path string, spec Spec, v *version) error {
	s.lastErr = nil
	if s.digest == v.hexDigest && s.plugin != nil && sameSpec(s.spec, spec) {
		v.unref() // same bytes and settings (touched file): keep the running version
		return nil
	}
	if s.plugin != nil && !r.cfg.ManifestChangeAllowed {
		if what := manifestChange(s.plugin.Manifest(), v.manifest); what != "" {
			v.unref()
			s.lastErr = &LoadError{Plugin: v.name, File: path, Err: ErrManifestChanged,
				Reason: what + "; the running version stays (set plugins.reload_manifest_change_allowed to allow it)"}
			r.logger.Error("plugin reload refused; previous version stays in service", "file", path, "serving", s.digest, "error", s.lastErr)
			return s.lastErr
		}
	}
	if other := r.byNameLocked(v.name); other != nil && other != s.plugin {
		v.unref()
		s.lastErr = &LoadError{Plugin: v.name, File: path, Reason: "another loaded plugin has this name (" + other.File() + ")", Err: ErrBadManifest}
		return s.lastErr
	}
	s.spec, s.digest = spec, v.hexDigest
	if s.plugin == nil {
		s.plugin = &Plugin{h: r.h, spec: spec}
	} else {
		s.plugin.spec = spec
	}
	s.plugin.swap(v)
	r.logger.Info("plugin loaded", "plugin", v.name, "version", v.manifest.Version, "kind", v.manifest.Kind, "sha256", v.hexDigest, "file", path)
	return nil
}

func (r *Registry) byNameLocked(name string) *Plugin {
	for _, s := range r.slots {
		if s.plugin != nil && s.plugin.Name() == name {
			return s.plugin
		}
	}
	return nil
}

func (r *Registry) rebuildLocked() {
	r.order, r.policies = r.order[:0], nil
	for _, s := range r.slots {
		if s.plugin != nil {
			r.order = append(r.order, s.plugin)
		}
	}
	sort.Slice(r.order, func(i, j int) bool {
		a, b := r.order[i], r.order[j]
		if a.Order() != b.Order() {
			return a.Order() < b.Order()
		}
		return a.Name() < b.Name()
	})
	for _, p := range r.order {
		if p.Kind() == abi.KindPolicy {
			r.policies = append(r.policies, p)
		}
	}
}

// Plugins returns the loaded plugins sorted by order, then name.
func (r *Registry) Plugins() []*Plugin {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]*Plugin(nil), r.order...)
}

// Policies returns the policy plugins in evaluation order.
func (r *Registry) Policies() []*Plugin {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]*Plugin(nil), r.policies...)
}

// Estimator returns the estimator for tool: one listing the tool by name
// wins over one listing "*"; ties go to the lower order, then the name.
func (r *Registry) Estimator(tool string) *Plugin {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var wildcard *Plugin
	for _, p := range r.order {
		if p.Kind() != abi.KindEstimator {
			continue
		}
		for _, t := range p.Manifest().Tools {
			if t == tool {
				return p
			}
			if t == abi.ToolAny && wildcard == nil {
				wildcard = p
			}
		}
	}
	return wildcard
}

// Plugin returns a loaded plugin by manifest name.
func (r *Registry) Plugin(name string) *Plugin {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byNameLocked(name)
}

// Status reports every configured plugin file, loaded or not.
func (r *Registry) Status() []PluginStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]PluginStatus, 0, len(r.slots))
	for path, s := range r.slots {
		st := PluginStatus{File: path, LastReload: s.lastReload, FailMode: s.spec.FailMode, Order: s.spec.Order}
		if s.lastErr != nil {
			st.LastError = s.lastErr.Error()
		}
		if p := s.plugin; p != nil {
			m := p.Manifest()
			st.Name, st.Kind, st.Version, st.Digest, st.Loaded = m.Name, m.Kind, m.Version, p.Digest(), true
			st.Health, st.Stats, st.SignedBy = p.Health(), p.Stats(), p.SignedBy()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}

// Close stops watching and closes every plugin (in-flight calls finish).
func (r *Registry) Close() error {
	var err error
	if r.watcher != nil {
		close(r.stop)
		err = r.watcher.Close()
		<-r.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.slots {
		if s.plugin != nil {
			s.plugin.Close()
		}
	}
	r.slots, r.order, r.policies = map[string]*slot{}, nil, nil
	return err
}

func (r *Registry) startWatch() error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("host: watching plugins: %w", err)
	}
	dirs := map[string]bool{}
	if r.cfg.Dir != "" {
		dirs[r.cfg.Dir] = true
	}
	for _, s := range r.cfg.Plugins {
		dirs[filepath.Dir(s.File)] = true
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			_ = w.Close()
			return fmt.Errorf("host: watching %q: %w", d, err)
		}
	}
	r.watcher, r.stop, r.done = w, make(chan struct{}), make(chan struct{})
	go r.watch()
	return nil
}

// watch debounces file events into Reload calls. Writers often create,
// truncate and write in steps; the debounce waits for quiet.
func (r *Registry) watch() {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-r.stop:
			return
		case ev, ok := <-r.watcher.Events:
			if !ok {
				return
			}
			// A signature may land after its module: re-check then too.
			if filepath.Ext(ev.Name) == ".wasm" || strings.HasSuffix(ev.Name, ".wasm"+signing.SigSuffix) {
				timer.Reset(r.cfg.Debounce)
			}
		case err, ok := <-r.watcher.Errors:
			if !ok {
				return
			}
			r.logger.Warn("plugin watcher error", "error", err)
		case <-timer.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := r.Reload(ctx); err != nil {
				r.logger.Warn("plugin reload had failures", "error", err)
			}
			cancel()
		}
	}
}

// manifestChange says how b's name, kind or tools differ from a's ("" when
// they do not); the order of tools does not matter.
func manifestChange(a, b abi.Manifest) string {
	switch {
	case a.Name != b.Name:
		return fmt.Sprintf("name %q would become %q", a.Name, b.Name)
	case a.Kind != b.Kind:
		return fmt.Sprintf("kind %q would become %q", a.Kind, b.Kind)
	}
	at, bt := sortedTools(a.Tools), sortedTools(b.Tools)
	if strings.Join(at, "\x00") != strings.Join(bt, "\x00") {
		return fmt.Sprintf("tools %q would become %q", at, bt)
	}
	return ""
}

func sortedTools(t []string) []string {
	out := append([]string(nil), t...)
	sort.Strings(out)
	return out
}

func sameSpec(a, b Spec) bool {
	return string(a.Config) == string(b.Config) && a.Limits == b.Limits && a.FailMode == b.FailMode &&
		a.Order == b.Order && a.SHA256 == b.SHA256 && a.Isolation == b.Isolation
}
