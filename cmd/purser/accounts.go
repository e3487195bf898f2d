package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/purser-dev/purser/enforcer"
)

// client talks to a running purser server.
type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(addr, token string) *client {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &client{base: strings.TrimRight(addr, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// do sends a JSON request and decodes a JSON answer into out; a non-2xx
// answer becomes an error carrying the server's message.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Message != "" {
			return fmt.Errorf("server said %s (%s): %s", resp.Status, eb.Error.Code, eb.Error.Message)
		}
		return fmt.Errorf("server said %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // nano-USD amounts exceed float64's exact range
	return dec.Decode(out)
}

func runAccounts(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usagef("usage: purser accounts list|show ID|set-limit ID USD [--addr URL] [--token T]")
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("accounts "+sub, out)
	addr := fs.String("addr", "127.0.0.1:8181", "server address")
	token := fs.String("token", os.Getenv("PURSER_TOKEN"), "bearer token (default $PURSER_TOKEN)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	c, pos := newClient(*addr, *token), fs.Args()
	switch {
	case sub == "list" && len(pos) == 0:
		var res struct{ Accounts []map[string]any }
		if err := c.do(ctx, "GET", "/v1/accounts", nil, &res); err != nil {
			return err
		}
		return printAccounts(out, *asJSON, res.Accounts)
	case sub == "show" && len(pos) == 1:
		var res map[string]any
		if err := c.do(ctx, "GET", "/v1/accounts/"+url.PathEscape(pos[0]), nil, &res); err != nil {
			return err
		}
		return printAccounts(out, *asJSON, []map[string]any{res})
	case sub == "set-limit" && len(pos) == 2:
		body := map[string]any{"limit_usd": pos[1]}
		if pos[1] == "unlimited" {
			body = map[string]any{"unlimited": true}
		}
		var res map[string]any
		if err := c.do(ctx, "PUT", "/v1/accounts/"+url.PathEscape(pos[0]), body, &res); err != nil {
			return err
		}
		return printAccounts(out, *asJSON, []map[string]any{res})
	}
	return usagef("usage: purser accounts list | show ID | set-limit ID USD|unlimited")
}

func printAccounts(out io.Writer, asJSON bool, accts []map[string]any) error {
	if asJSON {
		return printJSON(out, accts)
	}
	fmt.Fprintf(out, "%-28s %-14s %-14s %-14s %s\n", "ACCOUNT", "LIMIT", "COMMITTED", "PENDING", "OVERDRAWN")
	for _, a := range accts {
		limit := "unlimited"
		if l, ok := a["limit_usd"].(string); ok {
			limit = "$" + l
		}
		fmt.Fprintf(out, "%-28v %-14s %-14s %-14s %v\n", a["id"], limit, nanosText(a["committed_nanos"]), nanosText(a["pending_nanos"]), a["overdrawn"])
	}
	return nil
}

func nanosText(v any) string {
	n, ok := v.(json.Number)
	if !ok {
		return "-"
	}
	i, err := n.Int64()
	if err != nil {
		return n.String()
	}
	return enforcer.Nanos(i).String()
}
