// Package pricing is purser's one source of LLM prices: an embedded
// snapshot of LiteLLM's model price table (or a LiteLLM file given in the
// config), with LiteLLM's name resolution and a fallback that never prices
// a named model silently cheap (a file with nothing to borrow is refused).
// *Table and *Live implement enforcer.Pricer.
package pricing

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// UnknownDearest is the default fallback for a model the table does not
// know: the dearest chat model of its provider family (mode "chat" or
// "responses").
const UnknownDearest = "dearest"

// Options shape a table built from a price file.
type Options struct {
	// UnknownModel prices names the table does not know: UnknownDearest
	// (or "") for the dearest chat model of the name's provider family,
	// else a model name to price them as (it must resolve).
	UnknownModel string
	// Overrides are exact model names priced by the config
	// (pricing.llm.models), on top of the file: source "config:<name>".
	Overrides map[string]enforcer.ModelPrice
}

// Origin says where a table came from.
type Origin struct {
	// Source is "embedded LiteLLM snapshot 2026-08-01" or the file's path.
	Source string
	// File is the price file's path; empty for the embedded snapshot.
	File string
	// SnapshotDate is the embedded snapshot's date; empty for a file.
	SnapshotDate string
	// SHA256 is the hex digest of the price file's bytes.
	SHA256 string
	// Skipped counts entries without a per-token input price.
	Skipped int
	// LoadTime is how long parsing and indexing took.
	LoadTime time.Duration
}

// Table is an immutable, indexed price table, made by New (or Embedded,
// Load, LoadFile). It is safe for concurrent use; the only mutable part
// is a bounded cache of resolved names.
type Table struct {
	origin  Origin
	entries []*Entry // by name
	exact   map[string]*enforcer.PriceQuote
	byLower map[string]*Entry
	byBase  map[string]*Entry // undated lower-case name -> newest dated entry
	dearest map[string]*Entry // fallback family -> dearest chat entry
	unknown *Entry            // Options.UnknownModel; nil = dearest of the family
	cache   sync.Map          // name -> *enforcer.PriceQuote, resolved names only
	cached  atomic.Int64      // entries in cache, bounded by cacheMax
}

// ErrUnknownModel: Options.UnknownModel names a model the table lacks.
var ErrUnknownModel = errors.New("unknown_model is not in the price table")

// ErrNoFallback: a price file has no model an unknown name could borrow
// prices from, so unknown names would cost $0.
var ErrNoFallback = errors.New("no chat model with a per-token price")

// cacheMax bounds the resolved-name cache: names come from callers, so
// an endless stream of new names must not grow memory. Past the bound a
// name is resolved on every call (a few µs).
const cacheMax = 4096

// New indexes entries (from Parse) with the config's overrides.
func New(entries []Entry, origin Origin, opt Options) (*Table, error) {
	start := time.Now()
	t := &Table{origin: origin, exact: map[string]*enforcer.PriceQuote{}, byLower: map[string]*Entry{},
		byBase: map[string]*Entry{}, dearest: map[string]*Entry{}}
	byName := make(map[string]*Entry, len(entries)+len(opt.Overrides))
	for i := range entries {
		byName[entries[i].Name] = &entries[i]
	}
	for name, p := range opt.Overrides {
		byName[name] = &Entry{Name: name, Provider: "config", Mode: "chat", Price: p, Source: "config:" + name}
	}
	for _, name := range sortedNames(byName) {
		t.add(byName[name])
	}
	if err := t.setUnknown(opt.UnknownModel); err != nil {
		return nil, err
	}
	// Without a candidate an unknown name would cost $0: refuse the table.
	if t.unknown == nil && t.dearest[familyAll] == nil {
		return nil, fmt.Errorf("%w (an entry with \"mode\": \"chat\" or \"responses\", a \"litellm_provider\" and "+
			"an input_cost_per_token of at most $%s per 1M tokens), so a model not in the table has no price to borrow",
			ErrNoFallback, fallbackInputMax.USDPerMTok())
	}
	t.origin.LoadTime += time.Since(start)
	return t, nil
}

func sortedNames(m map[string]*Entry) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// add indexes one entry; entries come in name order so every choice
// between equals is deterministic (the first name wins).
func (t *Table) add(e *Entry) {
	t.entries = append(t.entries, e)
	t.exact[e.Name] = &enforcer.PriceQuote{Model: e.Name, Price: e.Price, Source: e.Source}
	lower := strings.ToLower(e.Name)
	if _, dup := t.byLower[lower]; !dup {
		t.byLower[lower] = e
	}
	if base, rank := undate(lower); base != lower {
		if cur := t.byBase[base]; cur == nil || rank > baseRank(cur.Name) {
			t.byBase[base] = e
		}
	}
	if !fallbackCandidate(e) {
		return
	}
	for _, fam := range [...]string{familyOfProvider(e.Provider), familyAll} {
		if cur := t.dearest[fam]; cur == nil || dearer(e.Price, cur.Price) {
			t.dearest[fam] = e
		}
	}
}

// fallbackInputMax is the dearest input price a fallback may borrow: a
// few LiteLLM entries carry per-million prices in a per-token field
// (wandb/*, $135,000 per 1M tokens), and no real model costs more.
const fallbackInputMax enforcer.PerMTok = 200 * enforcer.PerMTok(enforcer.NanosPerUSD)

// fallbackCandidate: chat models of a LiteLLM provider with a plausible
// price, not fine-tuned ("ft:") ones, which only their owner can call.
// LiteLLM marks OpenAI's dearest chat models (o1-pro, gpt-5.x-pro) mode
// "responses" (served by the Responses API only); they count too.
func fallbackCandidate(e *Entry) bool {
	return (e.Mode == "chat" || e.Mode == "responses") && e.Provider != "config" && e.Provider != "" && e.Price.Input <= fallbackInputMax &&
		!strings.HasPrefix(e.Name, "ft:")
}

func baseRank(name string) string {
	_, rank := undate(strings.ToLower(name))
	return rank
}

// dearer orders by input price, then output price.
func dearer(a, b enforcer.ModelPrice) bool {
	return a.Input > b.Input || (a.Input == b.Input && a.Output > b.Output)
}

func (t *Table) setUnknown(model string) error {
	if model == "" || model == UnknownDearest {
		return nil
	}
	if q, ok := t.exact[model]; ok {
		t.unknown = t.entry(q.Model)
		return nil
	}
	if t.unknown = t.resolve(model); t.unknown == nil {
		return fmt.Errorf("%w: %q (want %q or a model the table prices)", ErrUnknownModel, model, UnknownDearest)
	}
	return nil
}

func (t *Table) entry(name string) *Entry {
	i := sort.Search(len(t.entries), func(i int) bool { return t.entries[i].Name >= name })
	if i < len(t.entries) && t.entries[i].Name == name {
		return t.entries[i]
	}
	return nil
}

// PriceOf resolves model (see resolve.go for the rules). A name that does
// not resolve is priced by the fallback rule, and the quote says so:
// Fallback is true and Source starts with "fallback:". An exact name is
// a map lookup; other names are resolved once and cached.
func (t *Table) PriceOf(model string) enforcer.PriceQuote {
	if q, ok := t.exact[model]; ok {
		return *q
	}
	if v, ok := t.cache.Load(model); ok {
		return *v.(*enforcer.PriceQuote)
	}
	q := t.quote(model)
	if len(model) <= nameBytesMax && t.cached.Add(1) <= cacheMax {
		t.cache.Store(model, &q)
	}
	return q
}

func (t *Table) quote(model string) enforcer.PriceQuote {
	if e := t.resolve(model); e != nil {
		return enforcer.PriceQuote{Model: e.Name, Price: e.Price, Source: e.Source}
	}
	if t.unknown != nil {
		return enforcer.PriceQuote{Model: t.unknown.Name, Price: t.unknown.Price, Source: "fallback:unknown_model:" + t.unknown.Name, Fallback: true}
	}
	fam := familyAll
	if len(model) <= nameBytesMax {
		fam = t.familyOf(strings.ToLower(strings.TrimSpace(model)))
	}
	e := t.dearest[fam]
	if e == nil { // New refuses a table without familyAll: never a $0 price
		fam, e = familyAll, t.dearest[familyAll]
	}
	return enforcer.PriceQuote{Model: e.Name, Price: e.Price, Source: "fallback:dearest-" + fam + ":" + e.Name, Fallback: true}
}

// Lookup is PriceOf with the table entry's details (provider, mode).
func (t *Table) Lookup(model string) (enforcer.PriceQuote, Entry) {
	q := t.PriceOf(model)
	if e := t.entry(q.Model); e != nil {
		return q, *e
	}
	return q, Entry{}
}

// Origin says where the table came from.
func (t *Table) Origin() Origin { return t.origin }

// Len is the number of priced entries (overrides included).
func (t *Table) Len() int { return len(t.entries) }

// Fallbacks lists the dearest chat entry of each provider family, the
// prices unknown names borrow ("all" when the family is unknown).
func (t *Table) Fallbacks() map[string]string {
	out := make(map[string]string, len(t.dearest))
	for fam, e := range t.dearest {
		out[fam] = e.Name
	}
	return out
}
