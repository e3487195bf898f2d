package bundle

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Applier puts a verified bundle into service (the host loads its
// plugins). An error leaves the bundle unused.
type Applier func(ctx context.Context, b *Bundle) error

// Keeper keeps the last good bundle serving: a new one replaces it only
// after it was fetched, verified and applied without error.
type Keeper struct {
	src   Source
	opt   Options
	apply Applier
	now   func() time.Time

	updateMu sync.Mutex // one update at a time
	mu       sync.RWMutex
	cur      *Bundle
	etag     string // of cur
	lastErr  error
	checked  time.Time
}

// Status reports the keeper's state.
type Status struct {
	Source    string
	Revision  string // of the serving bundle ("" when none)
	Digest    string
	SignedBy  string
	LastError string // of the last update ("" after a success or no change)
	CheckedAt time.Time
}

// NewKeeper makes a keeper; nothing is fetched until Update. now is the
// clock (time.Now in real use).
func NewKeeper(src Source, opt Options, apply Applier, now func() time.Time) *Keeper {
	return &Keeper{src: src, opt: opt, apply: apply, now: now}
}

// Update fetches the source and, if it holds a new good bundle, applies
// it. It reports whether the serving bundle changed; on an error the
// previous bundle keeps serving.
func (k *Keeper) Update(ctx context.Context) (bool, error) {
	k.updateMu.Lock()
	defer k.updateMu.Unlock()
	cur, etag := k.serving()
	changed, b, newETag, err := k.next(ctx, cur, etag)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastErr, k.checked = err, k.now()
	if changed {
		k.cur, k.etag = b, newETag
	}
	return changed, err
}

func (k *Keeper) next(ctx context.Context, cur *Bundle, etag string) (bool, *Bundle, string, error) {
	files, newETag, notModified, err := k.src.Fetch(ctx, etag)
	if err != nil || notModified {
		return false, nil, "", err
	}
	b, err := Verify(files, k.opt)
	if err != nil {
		return false, nil, "", fmt.Errorf("bundle from %s refused, the previous one keeps serving: %w", k.src, err)
	}
	if cur != nil && cur.Digest == b.Digest {
		return false, nil, "", nil
	}
	if err := k.apply(ctx, b); err != nil {
		return false, nil, "", fmt.Errorf("bundle %s (revision %q) from %s failed to load, the previous one keeps serving: %w",
			b.Digest, b.Manifest.Revision, k.src, err)
	}
	return true, b, newETag, nil
}

func (k *Keeper) serving() (*Bundle, string) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.cur, k.etag
}

// Current is the serving bundle, nil before the first good one.
func (k *Keeper) Current() *Bundle {
	b, _ := k.serving()
	return b
}

// Status reports the serving bundle and the last update's outcome.
func (k *Keeper) Status() Status {
	k.mu.RLock()
	defer k.mu.RUnlock()
	s := Status{Source: k.src.String(), CheckedAt: k.checked}
	if k.cur != nil {
		s.Revision, s.Digest, s.SignedBy = k.cur.Manifest.Revision, k.cur.Digest, k.cur.SignedBy
	}
	if k.lastErr != nil {
		s.LastError = k.lastErr.Error()
	}
	return s
}

// Run calls Update on every tick until ctx ends, reporting errors to
// onErr. The caller owns the ticker (time.NewTicker(poll_interval).C).
func (k *Keeper) Run(ctx context.Context, ticks <-chan time.Time, onErr func(error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			if _, err := k.Update(ctx); err != nil {
				onErr(err)
			}
		}
	}
}
