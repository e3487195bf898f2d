package abi

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	in := AdmitRequest{
		Call: Call{
			Tool: "LLM", Account: "team/a", Model: "gpt-4o",
			Params:      []byte(`{"model":"gpt-4o","prompt":"héllo"}`),
			Labels:      []Label{{"owner", "bob"}, {"tier", "gold"}},
			Budget:      Budget{LimitNanos: 100, CommittedNanos: 10, PendingNanos: 20, RemainingNanos: 70, Overdrawn: true},
			PromptChars: 5, HasPrompt: true, MaxTokens: -1,
		},
		EstimateNanos: 42, EstimateSource: SourcePlugin, EstimateSourceLabel: "plugin:x@0123456789ab",
	}
	b := AppendAdmitRequest(nil, &in)
	if len(b) != in.EncodedSize() {
		t.Fatalf("EncodedSize %d, encoded %d", in.EncodedSize(), len(b))
	}
	v, err := ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind() != RequestAdmit {
		t.Fatalf("kind %d", v.Kind())
	}
	if got := v.AdmitRequest(); !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
	}
	if val, ok := v.Label("tier"); !ok || string(val) != "gold" {
		t.Fatalf("Label(tier) = %q %v", val, ok)
	}
	if _, ok := v.Label("nope"); ok {
		t.Fatal("found a missing label")
	}
	allocs := testing.AllocsPerRun(100, func() {
		v, _ := ParseRequest(b)
		_ = v.Tool()
		_, _ = v.Label("tier")
	})
	if allocs != 0 {
		t.Fatalf("ParseRequest allocates %v times", allocs)
	}
}

func TestParseRequestRejectsTruncated(t *testing.T) {
	r := EstimateRequest{Call{Tool: "Read", Budget: Unlimited(0, 0), MaxTokens: -1}}
	b := AppendEstimateRequest(nil, &r)
	for n := 0; n < len(b); n++ {
		if _, err := ParseRequest(b[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix of %d bytes: err %v", n, err)
		}
	}
	if v, err := ParseRequest(b); err != nil || v.Budget().RemainingNanos != math.MaxInt64 {
		t.Fatalf("full record: %v", err)
	}
}

func TestResult(t *testing.T) {
	b := AppendVerdict(nil, Deny, "too expensive")
	r, err := ParseResult(b)
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.Admit()
	if err != nil || a.Verdict != Deny || a.Reason != "too expensive" {
		t.Fatalf("%+v %v", a, err)
	}
	if _, err := ParseResult(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated text accepted: %v", err)
	}
	bad := AppendResult(nil, CodeOK, Verdict(7), 0, "")
	r, _ = ParseResult(bad)
	if _, err := r.Admit(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("verdict 7 accepted: %v", err)
	}
}

func TestManifestJSON(t *testing.T) {
	m := Manifest{ABI: "1.0", Name: "llm-tokens", Version: "1.0.0", Kind: KindEstimator,
		Tools: []string{"LLM", "a\"b\x01"}, Description: "line\nnext",
		ConfigSchema: []byte(`{"type":"object"}`)}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(m.AppendJSON(nil), &got); err != nil {
		t.Fatalf("AppendJSON is not JSON: %v: %s", err, m.AppendJSON(nil))
	}
	if got["tools"].([]any)[1] != "a\"b\x01" || got["description"] != "line\nnext" {
		t.Fatalf("%v", got)
	}
	for _, bad := range []Manifest{
		{Name: "Bad Name", Version: "1", Kind: KindPolicy, Tools: []string{"*"}},
		{Name: "ok", Version: "1", Kind: "other", Tools: []string{"*"}},
		{Name: "ok", Version: "1", Kind: KindPolicy},
		{Name: "ok", Kind: KindPolicy, Tools: []string{"*"}},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%+v accepted: %v", bad, err)
		}
	}
}

func TestVersion(t *testing.T) {
	if !Compatible(Version) || Compatible(PackVersion(2, 0)) || Compatible(PackVersion(1, VersionMinor+1)) {
		t.Fatal("compatibility rule broken")
	}
	if VersionString(PackVersion(1, 3)) != "1.3" {
		t.Fatal(VersionString(PackVersion(1, 3)))
	}
}
