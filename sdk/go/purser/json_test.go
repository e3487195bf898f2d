package purser

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func TestField(t *testing.T) {
	obj := []byte(` { "a" : 1, "b":"x\"y", "c":{"a":2,"d":[1,{"e":"}"}]}, "e\u0078":true , "n":null, "f":-1.5e+3, "s":"plain" } `)
	for _, tc := range []struct {
		key, raw string
	}{
		{"a", `1`},
		{"b", `"x\"y"`},
		{"c", `{"a":2,"d":[1,{"e":"}"}]}`},
		{"ex", `true`}, // escaped key
		{"n", `null`},
		{"f", `-1.5e+3`},
		{"s", `"plain"`},
		{"d", ``}, // nested keys are not top-level
		{"zz", ``},
	} {
		v, err := Field(obj, tc.key)
		if err != nil || string(v.Raw()) != tc.raw {
			t.Errorf("Field(%q) = %q, %v; want %q", tc.key, v.Raw(), err, tc.raw)
		}
	}
	if v, err := Field(nil, "a"); err != nil || v.Exists() {
		t.Errorf("empty params: %v %v", v, err)
	}
	if v, err := Field([]byte(`{}`), "a"); err != nil || v.Exists() {
		t.Errorf("{}: %v %v", v, err)
	}
}

func TestFieldMalformed(t *testing.T) {
	for _, in := range []string{`[1]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a":"x`, `{"b":tru}`, `{"b":01x}`, `{"b":[1,2}`, `"x"`, `{"b":1.}`, `{"b":-}`} {
		if _, err := Field([]byte(in), "zz"); err == nil {
			t.Errorf("Field(%s) accepted malformed JSON", in)
		} else {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("Field(%s) error %T, want *FieldError", in, err)
			}
		}
	}
	// A malformed tail after the member found is not inspected: Field stops early.
	if v, err := Field([]byte(`{"a":1,garbage`), "a"); err != nil || string(v.Raw()) != "1" {
		t.Errorf("early stop: %q %v", v.Raw(), err)
	}
}

func TestValueDecoding(t *testing.T) {
	obj := []byte(`{"i":42,"neg":-7,"big":99999999999999999999,"fl":1.5,"t":true,"f":false,"s":"h\u00e9\n\ud83d\ude00","p":"plain"}`)
	get := func(k string) Value {
		v, err := Field(obj, k)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if n, err := get("i").Int(); err != nil || n != 42 {
		t.Errorf("i = %d %v", n, err)
	}
	if n, err := get("neg").Int(); err != nil || n != -7 {
		t.Errorf("neg = %d %v", n, err)
	}
	for _, k := range []string{"big", "fl", "s", "missing"} {
		if _, err := get(k).Int(); err == nil {
			t.Errorf("%s.Int() accepted", k)
		}
	}
	if b, err := get("t").Bool(); err != nil || !b {
		t.Error("t")
	}
	if b, err := get("f").Bool(); err != nil || b {
		t.Error("f")
	}
	if _, err := get("i").Bool(); err == nil {
		t.Error("i.Bool() accepted")
	}
	s, _, err := get("s").StringBytes(nil)
	if err != nil || string(s) != "hé\n😀" {
		t.Errorf("s = %q %v", s, err)
	}
	p, _, err := get("p").StringBytes(nil)
	if err != nil || string(p) != "plain" || &p[0] != &obj[len(obj)-7] {
		t.Errorf("plain string should alias the params: %q %v", p, err)
	}
	if _, err := get("i").AppendString(nil); err == nil {
		t.Error("i.AppendString accepted")
	}
}

// FuzzField checks Field against encoding/json on arbitrary objects.
func FuzzField(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":"x"}`), "a")
	f.Add([]byte(`{"a":{"b":[1,2,{"c":null}]},"b":"\u0041"}`), "b")
	f.Add([]byte(`{"max_tokens":100}`), "max_tokens")
	f.Fuzz(func(t *testing.T, obj []byte, key string) {
		var m map[string]json.RawMessage
		if json.Unmarshal(obj, &m) != nil {
			return // only well-formed objects have a reference answer
		}
		v, err := Field(obj, key)
		if err != nil {
			t.Fatalf("Field(%q, %q) rejected a valid object: %v", obj, key, err)
		}
		want, ok := m[key]
		if !utf8.ValidString(key) || !utf8.Valid(obj) {
			return // encoding/json rewrites invalid UTF-8 in keys
		}
		if ok != v.Exists() {
			t.Fatalf("Field(%q, %q) exists=%v, encoding/json %v", obj, key, v.Exists(), ok)
		}
		if ok {
			var a, b any
			if json.Unmarshal(want, &a) != nil || json.Unmarshal(v.Raw(), &b) != nil {
				t.Fatalf("undecodable values %q / %q", want, v.Raw())
			}
		}
	})
}

func TestFieldNoAlloc(t *testing.T) {
	obj := []byte(`{"messages":[{"content":"hello","role":"user"}],"max_tokens":1024,"model":"gpt-4o","temperature":0.2}`)
	allocs := testing.AllocsPerRun(200, func() {
		v, _ := Field(obj, "temperature")
		_, _ = Field(obj, "max_tokens")
		_ = v
	})
	if allocs != 0 {
		t.Fatalf("Field allocates %v times per call", allocs)
	}
}
