package enforcer

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

func TestCacheDoesNotServeAnotherPathWithInvalidUTF8(t *testing.T) {
	ctx := context.Background()
	clock := &stepClock{t: time.Unix(1_700_000_000, 0)}
	e := newTestEnforcer(t, Config{Clock: clock})
	mustAccount(t, e, AccountSpec{ID: "a", Limit: usdPtr("1")})
	cache, err := NewResultCache(clock, time.Minute, 8)
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) func(context.Context) (any, error) {
		return func(context.Context) (any, error) { return "contents of " + path, nil }
	}
	// Two distinct file names (Linux allows any bytes but '/' and NUL).
	p1, p2 := "/data/r\xe9sum\xe9", "/data/r\xe8sum\xe8"
	if _, err := e.Execute(ctx, "a", "Read", map[string]any{"path": p1}, read(p1), WithCache(cache)); err != nil {
		t.Fatal(err)
	}
	res, err := e.Execute(ctx, "a", "Read", map[string]any{"path": p2}, read(p2), WithCache(cache))
	if err != nil || res.Cached || res.Value != "contents of "+p2 {
		t.Errorf("Read of %q served %q (cached=%v, err=%v)", p2, res.Value, res.Cached, err)
	}
	again, err := e.Execute(ctx, "a", "Read", map[string]any{"path": p1}, read(p1), WithCache(cache))
	if err != nil || !again.Cached || again.Value != "contents of "+p1 {
		t.Errorf("the same invalid-UTF-8 path must still hit: cached=%v value=%q err=%v", again.Cached, again.Value, err)
	}
}

func TestApprovalForOneInvalidUTF8CallDoesNotAdmitAnother(t *testing.T) {
	ctx := context.Background()
	e := newTestEnforcer(t, Config{Policies: []PolicySpec{askPolicy()}})
	mustAccount(t, e, AccountSpec{ID: "a"})
	approved := Call{Account: "a", Tool: "Bash", Params: map[string]any{"command": "cat \xff"}}
	other := Call{Account: "a", Tool: "Bash", Params: map[string]any{"command": "cat \xfe"}}
	d, _, err := e.Reserve(ctx, approved, ReserveOptions{})
	if err != nil || d.ApprovalID == "" {
		t.Fatal(d, err)
	}
	if _, err := e.Approvals().Approve(d.ApprovalID, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Reserve(ctx, other, ReserveOptions{ApprovalID: d.ApprovalID}); !errors.Is(err, ErrApprovalMismatch) {
		t.Errorf("approval of %q let %q through: %v", approved.Params["command"], other.Params["command"], err)
	}
	if d2, _, err := e.Reserve(ctx, approved, ReserveOptions{ApprovalID: d.ApprovalID}); err != nil || !d2.Allowed() {
		t.Errorf("the approved call itself: %+v %v", d2, err)
	}
}

func TestCacheKeyIsInjective(t *testing.T) {
	distinct := []map[string]any{
		nil,
		{"p": "a\xff"}, {"p": "a\xfe"}, {"p": "a\uFFFD"}, {"p": `a\xff`}, {"p": "a"},
		{"a\xff": 1.0}, {"a\xfe": 1.0},
		{"p": []byte{1}}, {"p": "AQ=="},
		{"p": 1.0}, {"p": "1"}, {"p": true}, {"p": nil}, {"p": []any{}}, {"p": map[string]any{}},
		{"p": []any{"a", "b"}}, {"p": []any{"a,b"}}, {"p": "a\"b"}, {"p": "a\\\"b"},
	}
	seen := map[string]int{}
	for i, p := range distinct {
		k, err := CacheKey("Read", p)
		if err != nil {
			t.Fatalf("%d %v: %v", i, p, err)
		}
		if j, dup := seen[k]; dup {
			t.Errorf("params %d %#v and %d %#v share the key %q", j, distinct[j], i, p, k)
		}
		seen[k] = i
	}
	if a, _ := CacheKey("Read", map[string]any{"b": 1.0, "a": 2.0}); a != mustKey(t, map[string]any{"a": 2.0, "b": 1.0}) {
		t.Error("key order changed the key")
	}
	if k1, k2 := mustKey(t, map[string]any{"x": 1.0}), mustKeyTool(t, "Read\x00", map[string]any{"x": 1.0}); k1 == k2 {
		t.Error("tool name runs into the params")
	}
}

func mustKey(t *testing.T, p map[string]any) string { return mustKeyTool(t, "Read", p) }

func mustKeyTool(t *testing.T, tool string, p map[string]any) string {
	t.Helper()
	k, err := CacheKey(tool, p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParamsWithoutACanonicalFormAreRefusedByName(t *testing.T) {
	for name, p := range map[string]map[string]any{
		"opts.n":  {"opts": map[string]any{"n": math.NaN()}},
		"list[1]": {"list": []any{1.0, math.Inf(1)}},
		"files":   {"files": []string{"ok", "bad\xff"}},
		"ch":      {"ch": make(chan int)},
	} {
		_, err := CacheKey("Read", p)
		var ipe *InvalidParamsError
		if !errors.As(err, &ipe) || ipe.Param != name || !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: %v; want an InvalidParamsError naming %q", name, err, name)
		}
	}
	e := newTestEnforcer(t, Config{})
	mustAccount(t, e, AccountSpec{ID: "a"})
	if _, _, err := e.Reserve(context.Background(), Call{Account: "a", Tool: "Read", Params: map[string]any{"n": math.NaN()}}, ReserveOptions{ID: "r"}); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("Reserve with a NaN param: %v; want ErrInvalidParams", err)
	}
}

func TestApprovalOfParamsWithoutACanonicalFormAdmitsNothing(t *testing.T) {
	clock := &stepClock{t: time.Unix(1_700_000_000, 0)}
	q := NewApprovalQueue(clock, time.Minute, 8)
	first := Call{Account: "a", Tool: "Bash", Params: map[string]any{"command": math.NaN()}}
	other := Call{Account: "a", Tool: "Bash", Params: map[string]any{"command": math.Inf(1)}}
	req, err := q.Create("ap-1", first, Estimate{}, "careful", "asks")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Approve(req.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := q.usable(req.ID, other); !errors.Is(err, ErrApprovalMismatch) {
		t.Errorf("approval of one unencodable call admits another: %v", err)
	}
}
