package pricing

import (
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestResolutionProperties: for any table key, any change of case and
// any gateway prefix the table does not know still finds an entry with
// that key's prices (a prefix the table knows, such as "openrouter/", may
// rightly find that provider's own entry); for
// any string at all, the quote is either a named entry or a flagged,
// non-zero fallback, and the cache never changes an answer.
func TestResolutionProperties(t *testing.T) {
	tb := embedded(t, Options{})
	fresh := embedded(t, Options{})
	names := make([]string, 0, tb.Len())
	for _, e := range tb.entries {
		names = append(names, e.Name)
	}
	rapid.Check(t, func(t *rapid.T) {
		name := rapid.SampledFrom(names).Draw(t, "name")
		want := tb.PriceOf(strings.ToLower(name))
		mixed := []byte(name)
		for i := range mixed {
			if rapid.Bool().Draw(t, "upper") {
				mixed[i] = strings.ToUpper(string(mixed[i]))[0]
			}
		}
		prefix := rapid.SampledFrom([]string{"", "@", "my-gateway/", "acme-proxy/team-1/"}).Draw(t, "prefix")
		got := tb.PriceOf(prefix + string(mixed))
		if got.Fallback || got.Price != want.Price {
			t.Fatalf("%q -> %+v; %q -> %+v", prefix+string(mixed), got, strings.ToLower(name), want)
		}

		any := rapid.String().Draw(t, "any")
		q := tb.PriceOf(any)
		switch {
		case q.Fallback && (!strings.HasPrefix(q.Source, "fallback:dearest-") || q.Price.Input == 0):
			t.Fatalf("%q: fallback %+v", any, q)
		case !q.Fallback && q.Source != "litellm:"+q.Model:
			t.Fatalf("%q: %+v", any, q)
		}
		if again, f := tb.PriceOf(any), fresh.quote(any); again != q || f != q {
			t.Fatalf("%q: cached %+v, uncached %+v, first %+v", any, again, f, q)
		}
	})
}
