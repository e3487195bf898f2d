package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/server/decisionlog"
)

// BenchmarkHTTPReserveCommit: one reserve and one commit per iteration
// over loopback HTTP, with the decision log and metrics on (the server's
// hot path; the client is the standard library's).
func BenchmarkHTTPReserveCommit(b *testing.B) {
	benchHTTP(b, func(post func(path, body string), id string, n int64) {
		post("/v1/reservations", fmt.Sprintf(`{"id":%q,"account":"a%d","tool":"Read"}`, id, n%100))
		post("/v1/reservations/"+id+"/commit", `{"actual_nanos":1000}`)
	})
}

// BenchmarkHTTPReserveExtendCommitUsage: a streaming call's path, reserve,
// one extension, and a commit of token usage priced by the server.
func BenchmarkHTTPReserveExtendCommitUsage(b *testing.B) {
	benchHTTP(b, func(post func(path, body string), id string, n int64) {
		post("/v1/reservations", fmt.Sprintf(`{"id":%q,"account":"a%d","tool":"Read"}`, id, n%100))
		post("/v1/reservations/"+id+"/extend", `{"extension_id":"e1","add_nanos":5000000}`)
		post("/v1/reservations/"+id+"/commit", `{"usage":{"model":"claude-sonnet-4-5","input_tokens":1200,"output_tokens":300,"cache_read_tokens":20000}}`)
	})
}

// benchHTTP serves a memory ledger with 100 unlimited accounts and runs
// iter in parallel with a fresh reservation id each time.
func benchHTTP(b *testing.B, iter func(post func(path, body string), id string, n int64)) {
	ledger := enforcer.NewMemoryLedger(enforcer.LedgerOptions{})
	e, _ := enforcer.New(ledger, enforcer.Config{})
	dl, err := decisionlog.Open(filepath.Join(b.TempDir(), "d.jsonl"), decisionlog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer dl.Close()
	s, _ := New(e, Config{DecisionLog: dl, Metrics: NewMetrics(ledger, MetricsOptions{})})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(path, body string) {
		resp, err := client.Post(srv.URL+path, "application/json", bytes.NewBufferString(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	for i := range 100 {
		if _, err := ledger.CreateAccount(b.Context(), enforcer.AccountSpec{ID: fmt.Sprintf("a%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			iter(post, fmt.Sprintf("r%d", n), n)
		}
	})
}
