package purser

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/purser-dev/purser/abi"
)

type flat struct{ nanos int64 }

func (f *flat) Estimate(req *Request) (int64, error) {
	if req.ToolIs("Nope") {
		return 0, Unsupported("Nope is not priced here")
	}
	if req.ToolIs("Neg") {
		return -1, nil
	}
	if req.ToolIs("Boom") {
		return 0, errors.New("boom")
	}
	if req.ToolIs("Params") {
		v, err := req.Param("n")
		if err != nil {
			return 0, err
		}
		return v.Int()
	}
	return f.nanos, nil
}

func flatPlugin() *Plugin {
	return NewEstimator(Manifest{Name: "flat", Version: "1.0.0", Tools: []string{"*"},
		ConfigSchema: []byte(`{"type":"object"}`)},
		func(cfg []byte) (Estimator, error) {
			var c struct {
				Nanos json.Number `json:"nanos"`
			}
			if err := DecodeConfig(cfg, &c); err != nil {
				return nil, err
			}
			n := int64(1000)
			if c.Nanos != "" {
				v, err := c.Nanos.Int64()
				if err != nil {
					return nil, BadConfig("nanos: " + err.Error())
				}
				n = v
			}
			return &flat{n}, nil
		})
}

func gatePolicy() *Plugin {
	return NewPolicy(Manifest{Name: "gate", Version: "0.1.0", Tools: []string{"Bash", "Read"}},
		func([]byte) (Policy, error) {
			return PolicyFunc(func(req *Request) (Decision, error) {
				switch {
				case req.ToolIs("Read"):
					return Allow(), nil
				case req.EstimateNanos() > 100:
					b := append(req.Scratch(), "too dear: "...)
					b = append(b, req.Account()...)
					return DenyBytes(b), nil
				}
				return Ask("Bash needs a human"), nil
			}), nil
		})
}

func run(t *testing.T, x *Instance, export string, rec []byte) abi.Result {
	t.Helper()
	in := x.Alloc(len(rec))
	copy(in, rec)
	r, err := abi.ParseResult(x.Call(export, in))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func estimateRecord(tool, params string) []byte {
	return abi.AppendEstimateRequest(nil, &abi.EstimateRequest{Call: abi.Call{Tool: tool, Account: "acct",
		Params: []byte(params), Budget: abi.Unlimited(0, 0), MaxTokens: -1}})
}

func TestEstimatorDispatch(t *testing.T) {
	x := NewInstance(flatPlugin())
	if r := run(t, x, abi.ExportEstimate, estimateRecord("Read", "")); r.Status != CodeNotInitialized {
		t.Fatalf("call before init: status %v", r.Status)
	}
	if res := x.Init([]byte(`{"nanos":5000}`)); res != nil {
		t.Fatalf("init: %q", res)
	}
	for _, tc := range []struct {
		tool, params string
		code         Code
		nanos        int64
		text         string
	}{
		{"Read", "", abi.CodeOK, 5000, ""},
		{"Nope", "", CodeUnsupported, 0, "Nope is not priced here"},
		{"Neg", "", CodeInternal, 0, "flat: negative estimate -1 nanos"},
		{"Boom", "", CodeInternal, 0, "boom"},
		{"Params", `{"n":77}`, abi.CodeOK, 77, ""},
		{"Params", `{"n":"x"}`, CodeBadParams, 0, `params.n: not an int64 integer: "\"x\""`},
		{"Params", `{"n":`, CodeBadParams, 0, "params.n: malformed JSON at byte 5 of 5: malformed value"},
	} {
		r := run(t, x, abi.ExportEstimate, estimateRecord(tc.tool, tc.params))
		if r.Status != tc.code || r.Nanos != tc.nanos || string(r.Text) != tc.text {
			t.Errorf("%s %s: got %v %d %q; want %v %d %q", tc.tool, tc.params, r.Status, r.Nanos, r.Text, tc.code, tc.nanos, tc.text)
		}
	}
	// Wrong export, wrong request kind, garbage.
	if r := run(t, x, abi.ExportAdmit, estimateRecord("Read", "")); r.Status != CodeUnsupported {
		t.Errorf("admit on an estimator: %v", r.Status)
	}
	adm := abi.AppendAdmitRequest(nil, &abi.AdmitRequest{Call: abi.Call{Tool: "Read", Budget: abi.Unlimited(0, 0)}})
	if r := run(t, x, abi.ExportEstimate, adm); r.Status != CodeBadRequest {
		t.Errorf("admission record to purser_estimate: %v", r.Status)
	}
	if r := run(t, x, abi.ExportEstimate, []byte("garbage")); r.Status != CodeBadRequest || !strings.Contains(string(r.Text), "malformed request") {
		t.Errorf("garbage: %v %q", r.Status, r.Text)
	}
}

func TestInitErrors(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{`{"nanos":1.5}`, `flat: nanos: strconv.ParseInt: parsing "1.5": invalid syntax`},
		{`{"nanos":"x"}`, `flat: config: json: invalid number literal, trying to unmarshal "\"x\"" into Number`},
		{`{"other":1}`, `flat: config: json: unknown field "other"`},
		{`[1]`, `flat: config must be a JSON object`},
		{`{"nanos":1} {}`, `flat: config: unexpected data after the JSON object`},
	} {
		x := NewInstance(flatPlugin())
		r, err := abi.ParseResult(x.Init([]byte(tc.cfg)))
		if err != nil || r.Status != CodeBadConfig || string(r.Text) != tc.want {
			t.Errorf("Init(%s) = %v %q, %v; want bad_config %q", tc.cfg, r.Status, r.Text, err, tc.want)
		}
	}
	x := NewInstance(flatPlugin())
	if res := x.Init(nil); res != nil {
		t.Errorf("empty config should mean {}: %q", res)
	}
}

func TestPolicyDispatch(t *testing.T) {
	x := NewInstance(gatePolicy())
	if res := x.Init([]byte(`{}`)); res != nil {
		t.Fatal(string(res))
	}
	admit := func(tool string, est int64) []byte {
		return abi.AppendAdmitRequest(nil, &abi.AdmitRequest{Call: abi.Call{Tool: tool, Account: "team-a",
			Budget: abi.Unlimited(0, 0), MaxTokens: -1}, EstimateNanos: est})
	}
	for _, tc := range []struct {
		tool   string
		est    int64
		v      Verdict
		reason string
	}{
		{"Read", 500, abi.Allow, ""},
		{"Bash", 500, abi.Deny, "too dear: team-a"},
		{"Bash", 50, abi.Ask, "Bash needs a human"},
	} {
		r := run(t, x, abi.ExportAdmit, admit(tc.tool, tc.est))
		if r.Status != abi.CodeOK || r.Verdict != tc.v || string(r.Text) != tc.reason {
			t.Errorf("%s/%d: %v %v %q", tc.tool, tc.est, r.Status, r.Verdict, r.Text)
		}
	}
	if r := run(t, x, abi.ExportEstimate, estimateRecord("Read", "")); r.Status != CodeUnsupported {
		t.Errorf("estimate on a policy: %v", r.Status)
	}
	if r := run(t, x, abi.ExportAdmit, estimateRecord("Read", "")); r.Status != CodeBadRequest {
		t.Errorf("estimate record to purser_admit: %v", r.Status)
	}
	// The hot path does not allocate, deny reason built in Scratch included.
	rec := admit("Bash", 500)
	in := x.Alloc(len(rec))
	copy(in, rec)
	if n := testing.AllocsPerRun(200, func() { x.Call(abi.ExportAdmit, in) }); n != 0 {
		t.Errorf("admit allocates %v times per call", n)
	}
}

func TestManifestAndValidate(t *testing.T) {
	x := NewInstance(flatPlugin())
	var m map[string]any
	if err := json.Unmarshal(x.Manifest(), &m); err != nil {
		t.Fatalf("manifest %s: %v", x.Manifest(), err)
	}
	if m["abi"] != "1.1" || m["kind"] != "estimator" || m["name"] != "flat" {
		t.Errorf("manifest %s", x.Manifest())
	}
	bad := NewPolicy(Manifest{Name: "Bad Name", Version: "1", Tools: []string{"x"}}, nil)
	if err := bad.Validate(); err == nil {
		t.Error("nil constructor and bad name accepted")
	}
	bad = NewPolicy(Manifest{Name: "ok", Version: "1", Tools: []string{"x"}, ConfigSchema: []byte(`[1]`)},
		func([]byte) (Policy, error) { return nil, nil })
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "config_schema") {
		t.Errorf("array schema: %v", err)
	}
	x = NewInstance(bad)
	if r, _ := abi.ParseResult(x.Init(nil)); r.Status != CodeInternal {
		t.Errorf("nil policy from constructor: %v", r.Status)
	}
	if r, _ := abi.ParseResult(NewInstance(nil).Call(abi.ExportAdmit, nil)); r.Status != CodeInternal {
		t.Errorf("no plugin: %v", r.Status)
	}
}

func TestAllocKeepsOneGrowingBuffer(t *testing.T) {
	x := NewInstance(flatPlugin())
	a := x.Alloc(10)
	b := x.Alloc(100)
	if &a[0] != &b[0] || len(b) != 100 {
		t.Error("a small request should reuse the first buffer")
	}
	c := x.Alloc(5000)
	if len(c) != 5000 || &c[0] == &a[0] {
		t.Error("a larger request needs a new buffer")
	}
	if x.Alloc(-1) != nil {
		t.Error("negative size")
	}
}

func BenchmarkEstimateDispatch(b *testing.B) {
	x := NewInstance(flatPlugin())
	x.Init(nil)
	rec := estimateRecord("Params", `{"a":[1,2,3],"n":12345,"z":"x"}`)
	in := x.Alloc(len(rec))
	copy(in, rec)
	b.ReportAllocs()
	for b.Loop() {
		x.Call(abi.ExportEstimate, in)
	}
}
