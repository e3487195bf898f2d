package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// serveForTest runs a Server with tokens on a loopback port until the test
// ends and returns its address.
func serveForTest(t *testing.T, sc Config) string {
	t.Helper()
	e, err := enforcer.New(enforcer.NewMemoryLedger(enforcer.LedgerOptions{}), enforcer.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	sc.Tokens = []Token{{Name: "bot-a", SHA256: HashToken(agentA), Role: RoleAgent, Accounts: []string{"team-a"}}}
	s, err := New(e, sc)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Generous: every wait below ends much sooner when the server is right.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	return c
}

// readUntilClosed reads what the server sends and fails unless the server
// closes the connection (EOF or reset) before the client's deadline.
func readUntilClosed(t *testing.T, r io.Reader) {
	t.Helper()
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the server kept the connection open")
	}
}

func TestUnauthenticatedTrickledBodyIsRefusedAndClosed(t *testing.T) {
	// The body timeout is an hour: only the refusal may close this connection.
	addr := serveForTest(t, Config{ReadTimeout: time.Hour})
	c := dial(t, addr)
	fmt.Fprintf(c, "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"acc")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Errorf("status %d, Connection: close %v; want 401 and close", resp.StatusCode, resp.Close)
	}
	readUntilClosed(t, br)
}

func TestTrickledBodyIsCutOffAfterReadTimeout(t *testing.T) {
	addr := serveForTest(t, Config{ReadTimeout: 300 * time.Millisecond})
	c := dial(t, addr)
	fmt.Fprintf(c, "POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", agentA)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 50 ms: the whole body would take 80 minutes
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	readUntilClosed(t, c)
}

func TestConnectionsBeyondTheBoundWaitForAFreeSlot(t *testing.T) {
	addr := serveForTest(t, Config{ConnectionsMax: 1})
	get := func(c net.Conn, br *bufio.Reader) (*http.Response, error) {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	first := dial(t, addr)
	if _, err := get(first, bufio.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	second := dial(t, addr) // the kernel completes the handshake; purser does not accept it yet
	_ = second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	br := bufio.NewReader(second)
	if _, err := get(second, br); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection beyond connections_max was served (err %v)", err)
	}
	first.Close() // frees the slot: the waiting request is served
	_ = second.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after a slot freed: %v %v", resp, err)
	}
}
