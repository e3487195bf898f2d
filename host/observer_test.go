package host

import (
	"context"
	"sync"
	"testing"
	"time"
)

type recObserver struct {
	mu        sync.Mutex
	calls     map[string]int // plugin/kind/errkind
	instances map[string]int
	reloads   map[string]int // plugin/errkind
}

func (o *recObserver) ObserveCall(plugin, kind string, _ time.Duration, _ int64, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls[plugin+"/"+kind+"/"+ErrorKind(err)]++
}

func (o *recObserver) ObserveInstances(plugin string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.instances[plugin] = n
}

func (o *recObserver) ObserveReload(plugin string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reloads[plugin+"/"+ErrorKind(err)]++
}

func newRecObserver() *recObserver {
	return &recObserver{calls: map[string]int{}, instances: map[string]int{}, reloads: map[string]int{}}
}

func TestObserver(t *testing.T) {
	o := newRecObserver()
	h, _ := newTestHost(t, Config{Observer: o, noSmokeCalls: true})
	p := load(t, h, "trap", Spec{})
	_, _, _ = p.Estimate(context.Background(), estReq("x"))
	e := load(t, h, "estimator", Spec{})
	_, _, _ = e.Estimate(context.Background(), estReq("x"))
	if _, err := h.Load(context.Background(), Spec{File: wasmPath("badversion")}); err == nil {
		t.Fatal("loaded")
	}
	p.Close()
	e.Close()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls["trap/estimate/trap"] != 1 || o.calls["estimator/estimate/"] != 1 {
		t.Fatalf("calls %v", o.calls)
	}
	if o.reloads["trap/"] != 1 || o.reloads["badversion/abi_version"] != 1 {
		t.Fatalf("reloads %v", o.reloads)
	}
	if n, ok := o.instances["estimator"]; !ok || n != 0 {
		t.Fatalf("instances %v", o.instances)
	}
}
