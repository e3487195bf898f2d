package enforcer

import (
	"container/list"
	"fmt"
	"sync"
	"time"
)

// ResultCache returns the result of an identical (tool, canonical params)
// call made within TTL; Execute settles such a hit at 0 with cost_source
// "cache". The key has no account in it: share a cache only between
// accounts that may see each other's results. Safe for concurrent use;
// bounded to EntriesMax with least-recently-used eviction.
type ResultCache struct {
	clock      Clock
	ttl        time.Duration
	entriesMax int

	mu    sync.Mutex
	items map[string]*list.Element
	lru   *list.List
}

type cacheItem struct {
	key     string
	value   any
	expires time.Time
}

// NewResultCache makes a cache; ttl and entriesMax must be positive.
func NewResultCache(clock Clock, ttl time.Duration, entriesMax int) (*ResultCache, error) {
	if clock == nil || ttl <= 0 || entriesMax <= 0 {
		return nil, fmt.Errorf("result cache: need a clock, ttl > 0 and entriesMax > 0 (got ttl=%s entriesMax=%d)", ttl, entriesMax)
	}
	return &ResultCache{clock: clock, ttl: ttl, entriesMax: entriesMax, items: map[string]*list.Element{}, lru: list.New()}, nil
}

// CacheKey is the tool name and the params in their canonical form (see
// canonicalParams): object keys sorted, no insignificant space, and
// different params never share a key, even when a string holds bytes that
// are not valid UTF-8. Params without a canonical form are an error
// wrapping ErrInvalidParams that names the param.
func CacheKey(tool string, params map[string]any) (string, error) {
	b := appendCanonicalString(make([]byte, 0, 64), tool)
	b, err := appendCanonical(b, "", params, 0)
	if err != nil {
		return "", fmt.Errorf("canonical params of %s: %w", tool, err)
	}
	return string(b), nil
}

func (c *ResultCache) get(call Call) (any, bool) {
	key, err := CacheKey(call.Tool, call.Params)
	if err != nil {
		return nil, false
	}
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	it := el.Value.(*cacheItem)
	if !now.Before(it.expires) {
		c.lru.Remove(el)
		delete(c.items, key)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return it.value, true
}

func (c *ResultCache) put(call Call, value any) {
	key, err := CacheKey(call.Tool, call.Params)
	if err != nil {
		return // uncacheable params: the call simply is not cached
	}
	exp := c.clock.Now().Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		it := el.Value.(*cacheItem)
		it.value, it.expires = value, exp
		c.lru.MoveToFront(el)
		return
	}
	c.items[key] = c.lru.PushFront(&cacheItem{key: key, value: value, expires: exp})
	for c.lru.Len() > c.entriesMax {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.items, old.Value.(*cacheItem).key)
	}
}

// Len returns the number of cached entries (expired ones included until
// they are touched or evicted).
func (c *ResultCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
