package pricing

import "strings"

// Name resolution follows what LiteLLM does with the names callers send.
// A name that is not a table key exactly is looked up, in this order:
//
//  1. case-insensitively ("Claude-Opus-4-5" -> "claude-opus-4-5");
//  2. without its version suffix: a date "-20251101", "-2024-08-06" or
//     Vertex's "@20240620", or an alias "-latest", "@latest", "@default"
//     ("claude-opus-4-5-20991231" -> "claude-opus-4-5");
//  3. an undated name as the newest dated entry of that name
//     ("claude-3-5-haiku" -> "claude-3-5-haiku-20241022");
//  4. with version dots as dashes, OpenRouter's spelling of Anthropic
//     names ("claude-opus-4.5" -> "claude-opus-4-5");
//
// and if none matches, the same again without the leading "@" and the
// first "/"-separated provider segment, repeatedly
// ("openrouter/google/gemini-3-pro-preview" is a key;
// "google/gemini-3-pro-preview" -> "gemini-3-pro-preview";
// "bedrock/anthropic.claude-..." -> "anthropic.claude-...").
// A name that still matches nothing is priced by the fallback rule.

// nameBytesMax bounds the names resolved (longer ones take the fallback
// without being examined or cached); prefixesMax bounds the segments
// stripped.
const (
	nameBytesMax = 256
	prefixesMax  = 8
)

// resolve returns the entry a name resolves to, or nil.
func (t *Table) resolve(model string) *Entry {
	if len(model) > nameBytesMax {
		return nil
	}
	n := strings.ToLower(strings.TrimSpace(model))
	for range prefixesMax {
		n = strings.TrimPrefix(n, "@")
		if e := t.lookupForms(n); e != nil {
			return e
		}
		_, rest, found := strings.Cut(n, "/")
		if !found || rest == "" {
			return nil
		}
		n = rest
	}
	return nil
}

// lookupForms tries rules 1-4 on one lower-case name.
func (t *Table) lookupForms(n string) *Entry {
	if e := t.lookupVersions(n); e != nil {
		return e
	}
	if d := dashVersion(n); d != n {
		return t.lookupVersions(d)
	}
	return nil
}

func (t *Table) lookupVersions(n string) *Entry {
	if e := t.byLower[n]; e != nil {
		return e
	}
	if base, _ := undate(n); base != n {
		if e := t.byLower[base]; e != nil {
			return e
		}
		if e := t.byBase[base]; e != nil {
			return e
		}
	}
	return t.byBase[n]
}

// undate strips version suffixes (at most two: "-20240620-latest" is not
// a real name, but "…@20240620" after "-latest" is cheap to allow) and
// returns the base and a rank for the newest-first choice of rule 3:
// the date as YYYYMMDD, or "99999999" for an alias of the newest.
func undate(n string) (base, rank string) {
	base = n
	for range 2 {
		b, r := undateOnce(base)
		if b == base {
			break
		}
		base = b
		if rank == "" {
			rank = r
		}
	}
	return base, rank
}

func undateOnce(n string) (string, string) {
	for _, alias := range [...]string{"-latest", "@latest", "@default"} {
		if b, ok := strings.CutSuffix(n, alias); ok && b != "" {
			return b, "99999999"
		}
	}
	if len(n) > 9 && (n[len(n)-9] == '-' || n[len(n)-9] == '@') && digits(n[len(n)-8:]) {
		return n[:len(n)-9], n[len(n)-8:]
	}
	if len(n) > 11 && n[len(n)-11] == '-' {
		d := n[len(n)-10:] // YYYY-MM-DD
		if digits(d[:4]) && d[4] == '-' && digits(d[5:7]) && d[7] == '-' && digits(d[8:]) {
			return n[:len(n)-11], d[:4] + d[5:7] + d[8:]
		}
	}
	return n, ""
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// dashVersion writes a dot between digits as a dash ("4.5" -> "4-5").
func dashVersion(n string) string {
	if !strings.Contains(n, ".") {
		return n
	}
	b := []byte(n)
	for i := 1; i+1 < len(b); i++ {
		if b[i] == '.' && isDigit(b[i-1]) && isDigit(b[i+1]) {
			b[i] = '-'
		}
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Provider families for the fallback rule. A family is named by the model
// maker when the name says who made it, else by the provider prefix.
const (
	familyAnthropic = "anthropic"
	familyOpenAI    = "openai"
	familyGemini    = "gemini"
	familyAll       = "all"
)

// familyOfProvider groups LiteLLM providers: Gemini is sold by "gemini"
// (AI Studio) and "vertex_ai-language-models"; every other provider is its
// own family.
func familyOfProvider(p string) string {
	if p == "vertex_ai-language-models" {
		return familyGemini
	}
	return p
}

// familyOf names the fallback family of an unknown lower-case name: the
// maker from the model's own name (claude, and Claude Code's aliases
// opus, sonnet, haiku -> anthropic; gpt-, chatgpt-,
// o1/o3/o4 -> openai; gemini -> gemini), else the nearest provider
// prefix that is a family ("google/", "vertex_ai/" -> gemini; "groq/" ->
// groq), else "all".
func (t *Table) familyOf(n string) string {
	segs := strings.Split(n, "/")
	if len(segs) > prefixesMax {
		segs = segs[len(segs)-prefixesMax:]
	}
	base := segs[len(segs)-1]
	switch {
	case strings.Contains(base, "claude") || base == "opus" || base == "sonnet" || base == "haiku":
		return familyAnthropic
	case strings.HasPrefix(base, "gpt-") || strings.HasPrefix(base, "chatgpt") || isOSeries(base):
		return familyOpenAI
	case strings.Contains(base, "gemini"):
		return familyGemini
	}
	for i := len(segs) - 2; i >= 0; i-- {
		p := strings.TrimPrefix(segs[i], "@")
		switch p {
		case "google", "vertex_ai", "gemini":
			return familyGemini
		}
		if _, ok := t.dearest[p]; ok {
			return p
		}
	}
	return familyAll
}

// isOSeries matches OpenAI's reasoning models: "o1", "o3-mini", "o4-...".
func isOSeries(s string) bool {
	return len(s) >= 2 && s[0] == 'o' && isDigit(s[1]) && (len(s) == 2 || s[2] == '-')
}
