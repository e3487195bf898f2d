package pricing

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"

	"github.com/purser-dev/purser/enforcer"
)

// Logger is what Live reports reloads to (hclog.Logger satisfies it).
type Logger interface {
	Info(msg string, args ...any)
	Error(msg string, args ...any)
}

// Live is a Pricer over a price file that is re-read when it changes and
// swapped in atomically: calls in flight keep the table they started
// with. A file that fails to load leaves the current table in place and
// the error is logged with its position. Close stops watching.
type Live struct {
	cur     atomic.Pointer[Table]
	path    string
	opt     Options
	log     Logger
	reload  sync.Mutex // one reload at a time
	watcher *fsnotify.Watcher
	done    chan struct{}
	wg      sync.WaitGroup
	closed  sync.Once
}

// Watch loads path (an error if it does not load) and watches it.
func Watch(path string, opt Options, log Logger) (*Live, error) {
	t, err := LoadFile(path, opt)
	if err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching price file %s: %w", path, err)
	}
	// The folder, not the file: editors and config maps replace a file by
	// renaming another over it, which ends a watch on the file itself.
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, fmt.Errorf("watching price file %s: %w", path, err)
	}
	l := &Live{path: path, opt: opt, log: log, watcher: w, done: make(chan struct{})}
	l.cur.Store(t)
	l.wg.Add(1)
	go l.watch()
	return l, nil
}

// PriceOf prices with the current table.
func (l *Live) PriceOf(model string) enforcer.PriceQuote { return l.cur.Load().PriceOf(model) }

// Table is the current table.
func (l *Live) Table() *Table { return l.cur.Load() }

// Reload re-reads the file now. On error the current table stays and the
// error is returned; an unchanged file (same SHA-256) is not re-indexed.
func (l *Live) Reload() error {
	l.reload.Lock()
	defer l.reload.Unlock()
	data, err := os.ReadFile(l.path)
	if err != nil {
		return fmt.Errorf("price file: %w", err)
	}
	if sha := sha256Hex(data); sha == l.cur.Load().origin.SHA256 {
		return nil
	}
	t, err := build(data, Origin{Source: l.path, File: l.path}, l.opt)
	if err != nil {
		return err
	}
	l.cur.Store(t)
	return nil
}

func (l *Live) watch() {
	defer l.wg.Done()
	base := filepath.Base(l.path)
	for {
		select {
		case <-l.done:
			return
		case ev, ok := <-l.watcher.Events:
			if !ok {
				return
			}
			name := filepath.Base(ev.Name)
			// "..data" is how Kubernetes swaps a mounted config map.
			if name != base && !strings.HasPrefix(name, "..") || ev.Op == fsnotify.Chmod {
				continue
			}
			l.reloadAndLog()
		case err, ok := <-l.watcher.Errors:
			if !ok {
				return
			}
			l.log.Error("price file watch", "path", l.path, "error", err)
		}
	}
}

func (l *Live) reloadAndLog() {
	before := l.cur.Load()
	if err := l.Reload(); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return // removed to be replaced: the create event reloads
		}
		l.log.Error("price file not reloaded; the previous prices stay in use", "path", l.path, "error", err)
		return
	}
	if t := l.cur.Load(); t != before {
		l.log.Info("price file reloaded", "path", l.path, "entries", t.Len(), "sha256", t.origin.SHA256[:12],
			"load_time", t.origin.LoadTime)
	}
}

// Close stops watching; the last table keeps answering PriceOf.
func (l *Live) Close() error {
	var err error
	l.closed.Do(func() {
		close(l.done)
		err = l.watcher.Close()
		l.wg.Wait()
	})
	return err
}
