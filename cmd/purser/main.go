// Command purser is the budget and admission engine's CLI: it serves the
// HTTP API, estimates and checks calls, manages accounts on a running
// server and inspects, tests and scaffolds plugins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses: check uses 0/1/3 for allow/deny/ask; 2 is a usage or
// configuration mistake; 4 an operating failure (server unreachable, I/O).
const (
	exitOK     = 0
	exitDeny   = 1
	exitUsage  = 2
	exitAsk    = 3
	exitFailed = 4
)

// usageError marks mistakes in how purser was called (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitError carries a specific exit status with no message (check's deny).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, out io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the HTTP API (sidecar) on embedded defaults or a config file", runServe},
		{"estimate", "estimate one tool call: purser estimate --tool NAME [--params JSON] [--json]", runEstimate},
		{"check", "admit one tool call against a throwaway budget (exit 0 allow, 1 deny, 3 ask)", runCheck},
		{"accounts", "list, show or set-limit accounts on a running server", runAccounts},
		{"reservations", "list, show, reserve, extend, commit (with token usage) or release holds on a running server", runReservations},
		{"plugin", "inspect, test or scaffold a Wasm plugin", runPlugin},
		{"bundle", "build or inspect a plugin bundle: purser bundle build DIR -o FILE.tar.gz | inspect PATH|URL", runBundle},
		{"token", "print the SHA-256 of a bearer token for the config: purser token hash TOKEN", runToken},
		{"bench", "load-test a running server: purser bench [--addr] [--duration] [--workers]", runBench},
		{"replay", replayUsage, runReplay},
		{"prices", pricesUsage, runPrices},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return exitCode(c.run(ctx, args[1:], stdout), stderr)
		}
	}
	fmt.Fprintf(stderr, "purser: unknown command %q (run purser --help)\n", args[0])
	return exitUsage
}

func exitCode(err error, stderr io.Writer) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	}
	fmt.Fprintln(stderr, "purser:", err)
	var ue *usageError
	var ce *ConfigError
	if errors.As(err, &ue) || errors.As(err, &ce) || errors.Is(err, errConfig) {
		return exitUsage
	}
	return exitFailed
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "purser: budget and admission engine for AI agents' tool calls\n\nUsage: purser <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun purser <command> --help for a command's flags.")
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("purser "+name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	return nil
}

// flagSet wraps flag.FlagSet so commands share parsing behaviour.
type flagSet struct{ fs *flag.FlagSet }

func (f *flagSet) parse(args []string) error {
	if err := parseFlags(f.fs, args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return usagef("unexpected argument %q", f.fs.Arg(0))
	}
	return nil
}
