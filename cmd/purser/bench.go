package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// runBench drives a running server on loopback with reserve+commit pairs
// (each request counts) and reports throughput and latency percentiles.
// --hello serves and loads an in-process HTTP hello-world instead, the
// baseline purser's own overhead is measured against.
func runBench(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlags("bench", out)
	addr := fs.String("addr", "127.0.0.1:8181", "server address")
	token := fs.String("token", "", "bearer token (admin, to create the bench accounts)")
	duration := fs.Duration("duration", 10*time.Second, "how long to run (bounded: at most 10m)")
	workers := fs.Int("workers", 32, "concurrent clients")
	accounts := fs.Int("accounts", 100, "accounts to spread the load over (1 = one hot account)")
	roots := fs.Bool("roots", false, "make the accounts independent roots instead of children of one pool (no shared ancestor)")
	hello := fs.Bool("hello", false, "load an in-process HTTP hello-world instead (baseline)")
	if err := (&flagSet{fs}).parse(args); err != nil {
		return err
	}
	if *duration <= 0 || *duration > 10*time.Minute || *workers < 1 || *workers > 1024 || *accounts < 1 || *accounts > 100_000 {
		return usagef("--duration must be in (0, 10m], --workers in [1, 1024], --accounts in [1, 100000]")
	}
	c := newClient(*addr, *token)
	c.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers, MaxConnsPerHost: *workers}, Timeout: 10 * time.Second}
	var op func(ctx context.Context, w, i int, lat *latencies) error
	if *hello {
		stop, base, err := startHello()
		if err != nil {
			return err
		}
		defer stop()
		c.base = base
		op = func(ctx context.Context, _, _ int, lat *latencies) error {
			return timed(lat, func() error { return c.do(ctx, "GET", "/", nil, nil) })
		}
	} else {
		names := benchAccountNames(*accounts, *roots)
		if err := benchAccounts(ctx, c, names, *roots); err != nil {
			return err
		}
		op = reserveCommit(c, names)
	}
	res := drive(ctx, *duration, *workers, op)
	res.print(out, *hello, *workers, *accounts)
	return nil
}

func startHello() (func(), string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"hello":"world"}`)
	})}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, "http://" + ln.Addr().String(), nil
}

// benchAccountNames are children of "bench" (one tree sharing an
// ancestor, as a team pool) or, with roots, independent trees.
func benchAccountNames(n int, roots bool) []string {
	out := make([]string, n)
	for i := range out {
		if roots {
			out[i] = fmt.Sprintf("bench-r%d", i)
		} else {
			out[i] = fmt.Sprintf("bench/a%d", i)
		}
	}
	return out
}

func benchAccounts(ctx context.Context, c *client, names []string, roots bool) error {
	if !roots {
		if err := c.do(ctx, "PUT", "/v1/accounts/bench", map[string]any{"unlimited": true}, nil); err != nil {
			return fmt.Errorf("creating bench accounts (needs an admin token when auth is on): %w", err)
		}
	}
	for _, name := range names {
		body := map[string]any{"unlimited": true}
		if !roots {
			body = map[string]any{"parent": "bench"}
		}
		if err := c.do(ctx, "PUT", "/v1/accounts/"+name, body, nil); err != nil {
			return fmt.Errorf("creating bench account %s: %w", name, err)
		}
	}
	return nil
}

func reserveCommit(c *client, accounts []string) func(ctx context.Context, w, i int, lat *latencies) error {
	run := time.Now().UnixNano()
	return func(ctx context.Context, w, i int, lat *latencies) error {
		id := fmt.Sprintf("b%d-%d-%d", run, w, i)
		var res struct{ Decision string }
		body := map[string]any{"id": id, "account": accounts[(w+i)%len(accounts)], "tool": "Read", "ttl_ms": 60000}
		if err := timed(lat, func() error { return c.do(ctx, "POST", "/v1/reservations", body, &res) }); err != nil {
			return err
		}
		if res.Decision != "allow" {
			return fmt.Errorf("reservation %s: %s", id, res.Decision)
		}
		return timed(lat, func() error {
			return c.do(ctx, "POST", "/v1/reservations/"+id+"/commit", map[string]any{"actual_nanos": 1000}, nil)
		})
	}
}

type latencies struct{ d []time.Duration }

func timed(lat *latencies, f func() error) error {
	t := time.Now()
	err := f()
	lat.d = append(lat.d, time.Since(t))
	return err
}

type benchResult struct {
	elapsed time.Duration
	lat     []time.Duration
	errs    int64
	first   error
}

func drive(ctx context.Context, d time.Duration, workers int, op func(ctx context.Context, w, i int, lat *latencies) error) benchResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var errs atomic.Int64
	var mu sync.Mutex
	var res benchResult
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := &latencies{}
			for i := 0; ctx.Err() == nil; i++ {
				if err := op(ctx, w, i, lat); err != nil && ctx.Err() == nil {
					if errs.Add(1) == 1 {
						mu.Lock()
						res.first = err
						mu.Unlock()
					}
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat.d...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed, res.errs = time.Since(start), errs.Load()
	return res
}

func (r benchResult) print(out io.Writer, hello bool, workers, accounts int) {
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	pct := func(p float64) time.Duration {
		if len(r.lat) == 0 {
			return 0
		}
		return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))]
	}
	what := fmt.Sprintf("reserve+commit over %d account(s)", accounts)
	if hello {
		what = "HTTP hello-world baseline"
	}
	fmt.Fprintf(out, "%s, %d workers, %s\n", what, workers, r.elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "requests: %d  (%.0f req/s)  errors: %d\n", len(r.lat), float64(len(r.lat))/r.elapsed.Seconds(), r.errs)
	fmt.Fprintf(out, "latency p50 %s  p90 %s  p99 %s  max %s\n", pct(.50), pct(.90), pct(.99), pct(1))
	if r.first != nil {
		fmt.Fprintf(out, "first error: %v\n", r.first)
	}
}
