package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/purser-dev/purser/enforcer"
)

// Entry is one priced model of a table.
type Entry struct {
	// Name is the table's key, e.g. "claude-opus-4-5-20251101".
	Name string
	// Provider and Mode are LiteLLM's litellm_provider and mode ("chat",
	// "embedding", ...); overrides from the config have Provider "config".
	Provider, Mode string
	Price          enforcer.ModelPrice
	// Source is how quotes name this entry: "litellm:<name>" or
	// "config:<name>".
	Source string
}

// Error locates a bad LiteLLM price file: the file, the line and column
// (of the entry, for a bad field), and the model and field when known.
type Error struct {
	File         string
	Line, Column int
	Model, Field string
	Err          error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	if e.Model != "" {
		fmt.Fprintf(&b, ": model %q", e.Model)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " field %q", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrNotATable marks a file that is not a LiteLLM price table at all.
var ErrNotATable = errors.New("not a LiteLLM price table (want one JSON object keyed by model name)")

// entriesMax bounds a price file: the real one has ~3,000 entries.
const entriesMax = 100_000

// Parse reads LiteLLM's model_prices_and_context_window.json. Prices are
// read from each JSON number's decimal text (enforcer.ParsePerTokenUSD),
// never through float64. Entries without input_cost_per_token (image,
// audio and per-second models, and the "sample_spec" documentation) are
// skipped: their count is the second result. file names the source in
// errors.
func Parse(data []byte, file string) ([]Entry, int, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	fail := func(off int64, model, field string, err error) ([]Entry, int, error) {
		line, col := position(data, off)
		return nil, 0, &Error{File: file, Line: line, Column: col, Model: model, Field: field, Err: err}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fail(0, "", "", ErrNotATable)
	}
	var out []Entry
	skipped := 0
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return fail(errOffset(err, off), "", "", readable(err))
		}
		name, _ := tok.(string)
		var raw map[string]json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) {
				err = fmt.Errorf("want an object of prices, got a JSON %s", te.Value)
			}
			return fail(errOffset(err, off), name, "", readable(err))
		}
		if len(out) >= entriesMax {
			return fail(off, name, "", fmt.Errorf("more than %d entries", entriesMax))
		}
		e, ok, field, err := parseEntry(name, raw)
		if err != nil {
			return fail(off, name, field, err)
		}
		if !ok {
			skipped++
			continue
		}
		out = append(out, e)
	}
	if _, err := dec.Token(); err != nil {
		return fail(errOffset(err, dec.InputOffset()), "", "", readable(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(dec.InputOffset(), "", "", errors.New("data after the table's closing brace"))
	}
	return out, skipped, nil
}

// readable names a truncated file as such ("EOF" alone says little).
func readable(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of file (truncated?)")
	}
	return err
}

// errOffset is where a syntax error happened, else fallback. (A type
// error's offset counts from the value Decode read, not the file.)
func errOffset(err error, fallback int64) int64 {
	if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
		return se.Offset
	}
	return fallback
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	// The offset of a value is after its separators; point at its start.
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n,:", data[off]) >= 0 {
		off++
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	return line, int(off) - bytes.LastIndexByte(before, '\n')
}

// priceFields are the flat token prices purser uses, by LiteLLM field.
func priceFields(p *enforcer.ModelPrice) []struct {
	name string
	dst  *enforcer.PerMTok
} {
	return []struct {
		name string
		dst  *enforcer.PerMTok
	}{
		{"input_cost_per_token", &p.Input},
		{"output_cost_per_token", &p.Output},
		{"cache_read_input_token_cost", &p.CacheRead},
		{"cache_creation_input_token_cost", &p.CacheWrite},
		{"cache_creation_input_token_cost_above_1hr", &p.CacheWrite1h},
	}
}

// tierFields maps the base field of a long-context tier price to where it
// goes ("input_cost_per_token_above_200k_tokens" -> InputAbove).
func tierFields(p *enforcer.ModelPrice) map[string]*enforcer.PerMTok {
	return map[string]*enforcer.PerMTok{
		"input_cost_per_token":                      &p.InputAbove,
		"output_cost_per_token":                     &p.OutputAbove,
		"cache_read_input_token_cost":               &p.CacheReadAbove,
		"cache_creation_input_token_cost":           &p.CacheWriteAbove,
		"cache_creation_input_token_cost_above_1hr": &p.CacheWrite1hAbove,
	}
}

// cutTier splits "<base>_above_<rest>" at the last "_above_": the 1-hour
// write's tier field has two ("..._above_1hr_above_200k_tokens").
func cutTier(field string) (base, rest string, found bool) {
	i := strings.LastIndex(field, "_above_")
	if i < 0 {
		return field, "", false
	}
	return field[:i], field[i+len("_above_"):], true
}

// parseEntry reads one model. ok is false for an entry without a
// per-token input price; on error, field names the bad field.
func parseEntry(name string, raw map[string]json.RawMessage) (e Entry, ok bool, field string, err error) {
	if name == "sample_spec" || isNull(raw["input_cost_per_token"]) {
		return e, false, "", nil
	}
	e = Entry{Name: name, Source: "litellm:" + name}
	for _, f := range priceFields(&e.Price) {
		if *f.dst, err = perToken(raw[f.name]); err != nil {
			return e, false, f.name, err
		}
	}
	if field, err = parseTier(raw, &e.Price); err != nil {
		return e, false, field, err
	}
	for _, f := range [...]struct {
		name string
		dst  *string
	}{{"litellm_provider", &e.Provider}, {"mode", &e.Mode}} {
		if v := raw[f.name]; !isNull(v) {
			if err := json.Unmarshal(v, f.dst); err != nil {
				return e, false, f.name, fmt.Errorf("not a string: %s", clip(v))
			}
		}
	}
	return e, true, "", nil
}

// parseTier reads the long-context tier prices ("<field>_above_<N>k_tokens",
// N thousand prompt tokens; the 1-hour cache write's is
// "cache_creation_input_token_cost_above_1hr_above_<N>k_tokens"). ModelPrice holds one tier: with several
// thresholds the lowest is kept, so the dearer price applies no later
// than it should. Variants such as "_priority" and "_flex" are not
// standard-tier prices and are ignored.
func parseTier(raw map[string]json.RawMessage, p *enforcer.ModelPrice) (string, error) {
	dst := tierFields(p)
	type tier struct {
		field, base string
		above       int64
	}
	var tiers []tier
	for field := range raw {
		base, rest, found := cutTier(field)
		n, isTier := strings.CutSuffix(rest, "k_tokens")
		if _, known := dst[base]; !found || !isTier || !known {
			continue
		}
		k, err := strconv.ParseInt(n, 10, 64)
		if err != nil || k <= 0 || k > enforcer.MaxUsageTokens/1000 {
			continue // not a token count (e.g. "_above_1mk_tokens")
		}
		tiers = append(tiers, tier{field, base, k * 1000})
	}
	if len(tiers) == 0 {
		return "", nil
	}
	sort.Slice(tiers, func(i, j int) bool {
		return tiers[i].above < tiers[j].above || (tiers[i].above == tiers[j].above && tiers[i].field < tiers[j].field)
	})
	p.TierAboveTokens = tiers[0].above
	for _, t := range tiers {
		if t.above != p.TierAboveTokens {
			break
		}
		v, err := perToken(raw[t.field])
		if err != nil {
			return t.field, err
		}
		*dst[t.base] = v
	}
	return "", nil
}

// perToken reads a per-token USD price from its JSON number text; absent
// or null is 0 (the class then costs what Cost defaults it to).
func perToken(v json.RawMessage) (enforcer.PerMTok, error) {
	if isNull(v) {
		return 0, nil
	}
	c := v[0]
	if c != '-' && (c < '0' || c > '9') {
		return 0, fmt.Errorf("not a number: %s", clip(v))
	}
	return enforcer.ParsePerTokenUSD(json.Number(v).String())
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// clip shortens a raw value for an error message.
func clip(v json.RawMessage) string {
	if len(v) > 40 {
		return string(v[:40]) + "..."
	}
	return string(v)
}
