package host

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// wasmSection frames one section.
func wasmSection(id byte, payload []byte) []byte {
	return append(appendU32([]byte{id}, uint32(len(payload))), payload...)
}

// wasmModule is a module with one type "() -> ()" plus the given sections
// (already framed, in order).
func wasmModule(sections ...[]byte) []byte {
	b := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	b = append(b, wasmSection(1, []byte{1, 0x60, 0, 0})...)
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

// funcsWithBodies declares one function per body (type 0) and its code.
func funcsWithBodies(bodies ...[]byte) [][]byte {
	fs := appendU32(nil, uint32(len(bodies)))
	code := appendU32(nil, uint32(len(bodies)))
	for _, body := range bodies {
		fs = append(fs, 0)
		code = appendU32(code, uint32(len(body)))
		code = append(code, body...)
	}
	return [][]byte{wasmSection(3, fs), wasmSection(10, code)}
}

// nest is a body of depth nested empty blocks.
func nest(depth int) []byte {
	b := []byte{0} // no locals
	b = append(b, bytes.Repeat([]byte{0x02, 0x40}, depth)...)
	b = append(b, bytes.Repeat([]byte{0x0B}, depth)...)
	return append(b, 0x0B)
}

// nops is a body of n nops.
func nops(n int) []byte {
	return append(append([]byte{0}, bytes.Repeat([]byte{0x01}, n)...), 0x0B)
}

func globals(n int) []byte {
	g := appendU32(nil, uint32(n))
	for i := 0; i < n; i++ {
		g = append(g, 0x7F, 0x00, 0x41, 0x00, 0x0B) // i32, const, i32.const 0
	}
	return wasmSection(6, g)
}

// table declares one funcref table; max < 0 means none.
func table(min, max int) []byte {
	t := []byte{1, 0x70}
	if max < 0 {
		t = appendU32(append(t, 0), uint32(min))
	} else {
		t = appendU32(appendU32(append(t, 1), uint32(min)), uint32(max))
	}
	return wasmSection(4, t)
}

func dataSegment(size int) []byte {
	d := []byte{1, 1} // one passive segment
	d = appendU32(d, uint32(size))
	return wasmSection(11, append(d, make([]byte, size)...))
}

func elemSegment(entries int) []byte {
	e := []byte{1, 1, 0} // one passive segment of function indices
	e = appendU32(e, uint32(entries))
	return wasmSection(9, append(e, make([]byte, entries)...))
}

// requireLimit asserts err is a *LoadError refusing a module over the
// limit named by key, naming the value and the key.
func requireLimit(t *testing.T, err error, key string, value int64) {
	t.Helper()
	var le *LoadError
	var mle *ModuleLimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrModuleLimit) || !errors.As(err, &mle) {
		t.Fatalf("err = %v (%T), want a *LoadError wrapping a *ModuleLimitError", err, err)
	}
	if mle.Key != key || mle.Value != value {
		t.Fatalf("refused by %s = %d, want %s = %d: %v", mle.Key, mle.Value, key, value, err)
	}
	for _, s := range []string{"plugins.limits." + key, itoa(int(value)), le.Plugin} {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not name %q", err, s)
		}
	}
}

// TestHostileModulesAreRefusedBeforeCompiling: the guests that
// cost 45-90 s and hundreds of MB to load are refused by the load limits,
// before the instrumenter or wazero sees them.
func TestHostileModulesAreRefusedBeforeCompiling(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	cases := []struct {
		name  string
		bin   []byte
		key   string
		value int64
	}{
		// 300 KB of code: the body size limit stops it first.
		{"100k-deep block nest", wasmModule(funcsWithBodies(nest(100_000))...), "function_body_bytes_max", 300_002},
		{"80k-deep block nest", wasmModule(funcsWithBodies(nest(80_000))...), "block_nesting_depth_max", 1025},
		{"4.5 MB function", wasmModule(funcsWithBodies(nops(4_500_000))...), "function_body_bytes_max", 4_500_002},
		{"500,000 globals", wasmModule(globals(500_000)), "globals_max", 500_000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.Load(context.Background(), Spec{File: "hostile.wasm", Bytes: c.bin})
			requireLimit(t, err, c.key, c.value)
		})
	}
}

// TestEachLoadLimitRefusesAndNamesItsKey covers every load limit with a
// module just over it (per-plugin overrides keep the modules small).
func TestEachLoadLimitRefusesAndNamesItsKey(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	two := funcsWithBodies(nops(1), nops(1))
	cases := []struct {
		limits ModuleLimits
		bin    []byte
		key    string
		value  int64
	}{
		{ModuleLimits{ModuleBytesMax: 20}, wasmModule(globals(3)), "module_bytes_max", 32},
		{ModuleLimits{TableElementsMax: 100}, wasmModule(table(101, -1)), "table_elements_max", 101},
		{ModuleLimits{TableElementsTotalMax: 100}, wasmModule(table(101, 200)), "table_elements_total_max", 101},
		{ModuleLimits{GlobalsMax: 2}, wasmModule(globals(3)), "globals_max", 3},
		{ModuleLimits{FunctionsMax: 1}, wasmModule(two...), "functions_max", 2},
		{ModuleLimits{FunctionBodyBytesMax: 10}, wasmModule(funcsWithBodies(nops(9))...), "function_body_bytes_max", 11},
		{ModuleLimits{BlockNestingDepthMax: 3}, wasmModule(funcsWithBodies(nest(4))...), "block_nesting_depth_max", 4},
		{ModuleLimits{CodeBytesMax: 5}, wasmModule(two...), "code_bytes_max", 9},
		{ModuleLimits{FunctionLocalsMax: 4}, wasmModule(funcsWithBodies([]byte{1, 5, 0x7F, 0x0B})...), "function_locals_max", 5},
		{ModuleLimits{LocalsTotalMax: 4}, wasmModule(funcsWithBodies([]byte{1, 3, 0x7F, 0x0B}, []byte{1, 2, 0x7F, 0x0B})...), "locals_total_max", 5},
		{ModuleLimits{DataSegmentBytesMax: 10}, wasmModule(dataSegment(11)), "data_segment_bytes_max", 11},
		{ModuleLimits{DataBytesTotalMax: 10}, wasmModule(dataSegment(11)), "data_bytes_total_max", 11},
		{ModuleLimits{ElementSegmentEntriesMax: 2}, wasmModule(append(funcsWithBodies(nops(1))[:1], elemSegment(3))...), "element_segment_entries_max", 3},
		{ModuleLimits{ElementEntriesTotalMax: 2}, wasmModule(append(funcsWithBodies(nops(1))[:1], elemSegment(3))...), "element_entries_total_max", 3},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			_, err := h.Load(context.Background(), Spec{File: "over.wasm", Bytes: c.bin, Limits: Limits{ModuleLimits: c.limits}})
			requireLimit(t, err, c.key, c.value)
			in, err := h.Inspect(context.Background(), Spec{File: "over.wasm", Bytes: c.bin, Limits: Limits{ModuleLimits: c.limits}})
			if err != nil || !errors.Is(in.LoadError, ErrModuleLimit) {
				t.Fatalf("inspect: %v, LoadError %v; want the same refusal", err, in.LoadError)
			}
		})
	}
}

// TestLimitFixturesAreRefused: the committed hostile guests over the
// default limits.
func TestLimitFixturesAreRefused(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	for name, want := range map[string]struct {
		key   string
		value int64
	}{
		"limit-bigtable": {"table_elements_max", 10_000_000},
		"limit-deepnest": {"block_nesting_depth_max", 1025},
		"limit-globals":  {"globals_max", 2000},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := h.Load(context.Background(), Spec{File: wasmPath(name)})
			requireLimit(t, err, want.key, want.value)
		})
	}
}

// TestTableGrowStopsAtTableElementsMax: a table declared without a maximum
// could grow to 2^32-1 elements (32 GB in wazero: issue 12's server
// killer); its maximum is lowered to TableElementsMax, so table.grow fails
// past it.
func TestTableGrowStopsAtTableElementsMax(t *testing.T) {
	// table.grow costs fuel by size (issue 12): this budget lets the guest
	// try all its grows, so the table's maximum is what stops them.
	h, _ := newTestHost(t, Config{Limits: Limits{FuelPerCallMax: 1 << 40}})
	checkNoLeaks(t, h)
	for _, limit := range []int{1000, 250_000} {
		p := load(t, h, "limit-tablegrow", Spec{Limits: Limits{ModuleLimits: ModuleLimits{TableElementsMax: limit, TableElementsTotalMax: limit}}})
		res, _, err := p.Estimate(context.Background(), estReq("x"))
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		// The guest grows by 100,000 at a time from 1, 20 times.
		if want := int64(1 + limit/100_000*100_000); res.Nanos != want {
			t.Fatalf("limit %d: table grew to %d elements, want %d", limit, res.Nanos, want)
		}
	}
}

// TestShippedPluginsAreUnderTheDefaultLoadLimits also keeps their tables
// untouched: they never grow them, so nothing is rewritten or recompiled.
func TestShippedPluginsAreUnderTheDefaultLoadLimits(t *testing.T) {
	for _, f := range []string{
		"../plugins/estimators/llm-tokens/llm-tokens.wasm",
		"../plugins/policies/ask-above-utilization/ask-above-utilization.wasm",
		"../plugins/policies/max-cost-per-call/max-cost-per-call.wasm",
		"../plugins/policies/tool-rules/tool-rules.wasm",
		wasmPath("gobad"),
	} {
		bin, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		capped, err := checkModuleLimits(bin, DefaultLimits())
		if err != nil || capped != nil {
			t.Errorf("%s: %v, rewritten %v", f, err, capped != nil)
		}
	}
}

// TestManifestWithInvalidUTF8IsRefusedNamingTheField: encoding/json would
// silently turn the bytes into U+FFFD; the host refuses them instead.
func TestManifestWithInvalidUTF8IsRefusedNamingTheField(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	_, err := h.Load(context.Background(), Spec{File: wasmPath("limit-manifest-utf8")})
	if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), `manifest field "description" is not valid UTF-8`) {
		t.Fatalf("err = %v, want ErrBadManifest naming the description", err)
	}
	for in, want := range map[string]string{
		"{\"name\":\"x\",\"version\":\"1\",\"kind\":\"estimator\",\"tools\":[\"Bash\xff\"]}": `field "tools"`,
		"{\"name\xff\":\"x\"}": "outside any field's value",
	} {
		if _, err := ParseManifest([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseManifest(%q) = %v, want %q", in, err, want)
		}
	}
}

// TestLoadLimitRefusalReadsOnce: the refusal names the sentinel once and
// the detail once.
func TestLoadLimitRefusalReadsOnce(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	_, err := h.Load(context.Background(), Spec{File: wasmPath("limit-globals")})
	want := `plugin "limit-globals" (` + wasmPath("limit-globals") + `): module over a load limit: globals: 2000, over the limit of 1024 (config key plugins.limits.globals_max); refused before compiling`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
}

// TestDecoderBombsAreRefusedBeforeWazero: wazero's decoder allocates each
// vector from the count a module declares before reading an entry; these
// few-byte modules asked it for 4-96 GB and killed the process ("fatal
// error: out of memory", seen under ulimit -v 2 GB). The load-limit pass
// reads every such vector first.
func TestDecoderBombsAreRefusedBeforeWazero(t *testing.T) {
	h, _ := newTestHost(t, Config{})
	checkNoLeaks(t, h)
	huge := appendU32(nil, 0xFFFFFFFF)
	nameSec := append(appendU32(nil, 4), "name"...)
	nameSec = append(append(nameSec, 1), appendU32(nil, 5)...) // function names, size 5
	nameSec = append(nameSec, huge...)
	cases := map[string]struct {
		bin []byte
		key string // "" for a malformed vector (ErrInvalidModule)
	}{
		"2^32-1 locals in an 8-byte body": {wasmModule(funcsWithBodies(append(append([]byte{1}, huge...), 0x7F, 0x0B))...), "function_locals_max"},
		"2^32-1 exports":                  {wasmModule(wasmSection(7, huge)), ""},
		"2^32-1 imports":                  {wasmModule(wasmSection(2, huge)), ""},
		"2^32-1 function names":           {wasmModule(wasmSection(0, nameSec)), ""},
		"a 4 GB export name":              {wasmModule(wasmSection(7, append([]byte{1}, huge...))), ""},
		"2^32-1 type parameters":          {append([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, wasmSection(1, append([]byte{1, 0x60}, huge...))...), ""},
		"2^32-1 data segments":            {wasmModule(wasmSection(11, huge)), ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := h.Load(context.Background(), Spec{File: "bomb.wasm", Bytes: c.bin})
			if c.key != "" {
				var mle *ModuleLimitError
				if !errors.As(err, &mle) || mle.Key != c.key {
					t.Fatalf("err = %v, want the %s limit", err, c.key)
				}
				return
			}
			if !errors.Is(err, ErrInvalidModule) {
				t.Fatalf("err = %v, want ErrInvalidModule", err)
			}
			// plugin inspect must not hand it to a decoder either.
			if _, err := h.Inspect(context.Background(), Spec{File: "bomb.wasm", Bytes: c.bin}); err == nil || !strings.Contains(err.Error(), "not a valid WebAssembly module") {
				t.Fatalf("inspect: %v", err)
			}
		})
	}
}
