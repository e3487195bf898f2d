package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
)

const reservationsUsage = `usage: purser reservations SUBCOMMAND [flags]

  list --account A [--state pending|committed|released|expired] [--limit N]
  show ID
  reserve --account A --tool T [--params JSON] [--id ID] [--ttl 5m]    exit 1 deny, 3 ask
  extend ID --add USD --extension-id X                                   exit 1 deny (hold unchanged)
  commit ID [--actual USD] [--model M --input-tokens N --output-tokens N
            --cache-read-tokens N --cache-write-tokens N --cache-write-1h-tokens N]
  release ID

Every subcommand takes --addr (default 127.0.0.1:8181), --token (default $PURSER_TOKEN)
and --json. Token usage is priced by the server with the estimates' price table.`

// reservationsCmd holds the flags every reservations subcommand shares.
type reservationsCmd struct {
	fs     *flag.FlagSet
	addr   *string
	token  *string
	asJSON *bool
}

func newReservationsCmd(sub string, out io.Writer) *reservationsCmd {
	fs := newFlags("reservations "+sub, out)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), reservationsUsage+"\n\nflags of "+sub+":")
		fs.PrintDefaults()
	}
	return &reservationsCmd{fs: fs, addr: fs.String("addr", "127.0.0.1:8181", "server address"),
		token:  fs.String("token", os.Getenv("PURSER_TOKEN"), "bearer token (default $PURSER_TOKEN)"),
		asJSON: fs.Bool("json", false, "print the server's JSON answer")}
}

// parse accepts flags before and after positional arguments (extend ID
// --add 0.05 reads naturally) and returns the positional ones.
func (c *reservationsCmd) parse(args []string, positional int) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(c.fs, args); err != nil {
			return nil, err
		}
		if args = c.fs.Args(); len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != positional {
		return nil, usagef("purser reservations %s takes %d argument(s), got %d (%s); see purser reservations --help",
			strings.TrimPrefix(c.fs.Name(), "purser reservations "), positional, len(pos), strings.Join(pos, " "))
	}
	return pos, nil
}

func runReservations(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(out, reservationsUsage)
		if len(args) == 0 {
			return usagef("purser reservations needs a subcommand")
		}
		return nil
	}
	run, ok := map[string]func(context.Context, *reservationsCmd, []string, io.Writer) error{
		"list": resList, "show": resShow, "reserve": resReserve, "extend": resExtend, "commit": resCommit, "release": resRelease,
	}[args[0]]
	if !ok {
		return usagef("unknown subcommand %q of purser reservations (list, show, reserve, extend, commit, release)", args[0])
	}
	return run(ctx, newReservationsCmd(args[0], out), args[1:], out)
}

func (c *reservationsCmd) client() *client { return newClient(*c.addr, *c.token) }

func resList(ctx context.Context, c *reservationsCmd, args []string, out io.Writer) error {
	account := c.fs.String("account", "", "the account (required)")
	state := c.fs.String("state", "", "only this state")
	limit := c.fs.Int("limit", 0, "at most this many (server default 100)")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	if *account == "" {
		return usagef("--account is required")
	}
	q := url.Values{"account": {*account}}
	if *state != "" {
		q.Set("state", *state)
	}
	if *limit != 0 {
		q.Set("limit", fmt.Sprint(*limit))
	}
	var res struct{ Reservations []map[string]any }
	if err := c.client().do(ctx, "GET", "/v1/reservations?"+q.Encode(), nil, &res); err != nil {
		return err
	}
	if *c.asJSON {
		return printJSON(out, res.Reservations)
	}
	for _, r := range res.Reservations {
		printReservation(out, r)
	}
	return nil
}

func resShow(ctx context.Context, c *reservationsCmd, args []string, out io.Writer) error {
	pos, err := c.parse(args, 1)
	if err != nil {
		return err
	}
	return c.send(ctx, out, "GET", pos[0], "", nil)
}

func resRelease(ctx context.Context, c *reservationsCmd, args []string, out io.Writer) error {
	pos, err := c.parse(args, 1)
	if err != nil {
		return err
	}
	return c.send(ctx, out, "POST", pos[0], "/release", nil)
}

// send calls a reservation's endpoint and prints the reservation.
func (c *reservationsCmd) send(ctx context.Context, out io.Writer, method, id, action string, body any) error {
	var res map[string]any
	if err := c.client().do(ctx, method, "/v1/reservations/"+url.PathEscape(id)+action, body, &res); err != nil {
		return err
	}
	if *c.asJSON {
		return printJSON(out, res)
	}
	printReservation(out, res)
	return nil
}

func resReserve(ctx context.Context, c *reservationsCmd, args []string, out io.Writer) error {
	account := c.fs.String("account", "", "the account (required)")
	tool := c.fs.String("tool", "", "the tool (required)")
	params := c.fs.String("params", "", "tool params as a JSON object")
	id := c.fs.String("id", "", "reservation id, for safe retries (default: the server chooses)")
	ttl := c.fs.Duration("ttl", 0, "how long the hold lasts (default: the server's)")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	if *account == "" || *tool == "" {
		return usagef("--account and --tool are required")
	}
	body := map[string]any{"account": *account, "tool": *tool, "id": *id, "ttl_ms": ttl.Milliseconds()}
	if *params != "" {
		var p map[string]any
		if err := json.Unmarshal([]byte(*params), &p); err != nil {
			return usagef("--params must be a JSON object: %v", err)
		}
		body["params"] = p
	}
	var res map[string]any
	if err := c.client().do(ctx, "POST", "/v1/reservations", body, &res); err != nil {
		return err
	}
	return c.printDecision(out, res)
}

func resExtend(ctx context.Context, c *reservationsCmd, args []string, out io.Writer) error {
	add := c.fs.String("add", "", "USD to add to the hold (required), e.g. 0.05")
	extID := c.fs.String("extension-id", "", "unique per reservation (required): a retry with the same id and amount adds nothing twice")
	pos, err := c.parse(args, 1)
	if err != nil {
		return err
	}
	if *add == "" || *extID == "" {
		return usagef("--add and --extension-id are required")
	}
	var res map[string]any
	body := map[string]any{"extension_id": *extID, "add_usd": *add}
	if err := c.client().do(ctx, "POST", "/v1/reservations/"+url.PathEscape(pos[0])+"/extend", body, &res); err != nil {
		return err
	}
	return c.printDecision(out, res)
}

func resCommit(ctx context.Context, c *reservationsCmd, args []string, out io.Writer) error {
	actual := c.fs.String("actual", "", "the actual cost in USD (default: priced from the usage flags, else the hold)")
	model := c.fs.String("model", "", "the model the usage is priced for (required with token counts)")
	counts := map[string]*int64{}
	for _, name := range []string{"input", "output", "cache-read", "cache-write", "cache-write-1h"} {
		counts[name] = c.fs.Int64(name+"-tokens", 0, name+" tokens the provider reported")
	}
	pos, err := c.parse(args, 1)
	if err != nil {
		return err
	}
	body := map[string]any{}
	if *actual != "" {
		body["actual_usd"] = *actual
	}
	if usage := usageFlags(c.fs, *model, counts); usage != nil {
		body["usage"] = usage
	}
	return c.send(ctx, out, "POST", pos[0], "/commit", body)
}

// usageFlags builds the usage object when --model or a token count was
// given (nil otherwise); the server checks and names each field.
func usageFlags(fs *flag.FlagSet, model string, counts map[string]*int64) map[string]any {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "model" || strings.HasSuffix(f.Name, "-tokens") })
	if !given {
		return nil
	}
	usage := map[string]any{"model": model}
	for name, n := range counts {
		usage[strings.ReplaceAll(name, "-", "_")+"_tokens"] = *n
	}
	return usage
}

// printDecision prints a reserve or extend answer; a deny exits 1 and an
// ask 3, like purser check.
func (c *reservationsCmd) printDecision(out io.Writer, res map[string]any) error {
	if *c.asJSON {
		if err := printJSON(out, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "%v", res["decision"])
		if reason, ok := res["reason"].(string); ok && reason != "" {
			fmt.Fprintf(out, ": %s", reason)
		}
		fmt.Fprintln(out)
		if r, ok := res["reservation"].(map[string]any); ok {
			printReservation(out, r)
		}
	}
	switch res["decision"] {
	case "deny":
		return &exitError{exitDeny}
	case "ask":
		return &exitError{exitAsk}
	}
	return nil
}

func printReservation(out io.Writer, r map[string]any) {
	fmt.Fprintf(out, "%v  %v  account %v  tool %v  estimate %s  extended %s  held %s  charged %s",
		r["id"], r["state"], r["account"], r["tool"], nanosText(r["estimate_nanos"]), nanosText(r["extended_nanos"]),
		nanosText(r["held_nanos"]), nanosText(r["charged_nanos"]))
	if src, ok := r["cost_source"].(string); ok && src != "" {
		fmt.Fprintf(out, " (%s)", src)
	}
	if u, ok := r["usage"].(map[string]any); ok {
		fmt.Fprintf(out, "\n  usage %v: input %v, output %v, cache read %v, cache write %v, cache write 1h %v", u["model"],
			u["input_tokens"], u["output_tokens"], u["cache_read_tokens"], u["cache_write_tokens"], u["cache_write_1h_tokens"])
	}
	if src, ok := r["price_source"].(string); ok {
		fmt.Fprintf(out, "\n  priced by %s", src)
		if r["price_fallback"] == true {
			fmt.Fprint(out, " (FALLBACK: the model is not in the price table)")
		}
	}
	if exp, ok := r["expires_at"].(string); ok && r["state"] == "pending" {
		if t, err := time.Parse(time.RFC3339Nano, exp); err == nil {
			fmt.Fprintf(out, "\n  expires %s", t.UTC().Format(time.RFC3339))
		}
	}
	fmt.Fprintln(out)
}
