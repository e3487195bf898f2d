// Command quickstart walks through purser's library flow on its built-in
// defaults: estimate, check, execute (reserve, run, settle) and the ledger.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/enforcer"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// llmResult is what an agent's LLM call returns: it knows its billed cost.
type llmResult struct{ costNanos enforcer.Nanos }

func (r llmResult) ActualCost() (enforcer.Nanos, bool) { return r.costNanos, true }

func run(ctx context.Context) error {
	logger := hclog.New(&hclog.LoggerOptions{Name: "purser", Level: hclog.Info, Output: os.Stdout})
	ledger := enforcer.NewMemoryLedger(enforcer.LedgerOptions{Notifier: enforcer.LogNotifier{Logger: logger.Named("alerts")}})
	cfg := enforcer.DefaultConfig()
	cfg.Logger, cfg.CostLogLevel = logger, hclog.Info
	cfg.Policies = []enforcer.PolicySpec{{Policy: enforcer.MaxCostPerCall{Limit: enforcer.MustParseUSD("0.05")}}}
	e, err := enforcer.New(ledger, cfg)
	if err != nil {
		return err
	}

	fmt.Println("== Estimates (built-in table, LLM rule, unknown-tool rule)")
	prompt := strings.Repeat("x", 70_000)
	for _, c := range []enforcer.Call{
		{Tool: "Read"}, {Tool: "Bash"}, {Tool: "Agent"},
		{Tool: "LLM", Params: map[string]any{"prompt": prompt}},
		{Tool: "LLM", Params: map[string]any{"prompt": prompt, "model": "gpt-4o"}},
		{Tool: "FancyNewTool"},
	} {
		est, err := e.Estimate(ctx, c)
		if err != nil {
			return err
		}
		fmt.Printf("  %-14s %-10s source=%s\n", c.Tool, est.Nanos, est.Source)
	}

	fmt.Println("\n== A team pool of $0.20 with a session account")
	if _, err := e.CreateAccount(ctx, enforcer.AccountOptions{ID: "team", Limit: ptr(enforcer.MustParseUSD("0.20"))}); err != nil {
		return err
	}
	session, err := e.SessionAccount(ctx, "team", "session-1", nil)
	if err != nil {
		return err
	}

	steps := []struct {
		tool   string
		params map[string]any
		result any
	}{
		{"Read", map[string]any{"file_path": "main.go"}, "package main"},
		{"LLM", map[string]any{"prompt": prompt}, llmResult{enforcer.MustParseUSD("0.0121")}},
		{"Bash", map[string]any{"command": "go test ./..."}, "ok"},
		{"Agent", map[string]any{"task": "review"}, "done"}, // $0.10 > max-cost $0.05
		{"Workflow", nil, "done"},
		{"Workflow", nil, "done"},
		{"Workflow", nil, "done"},
		{"Workflow", nil, "done"}, // the pool runs dry
	}
	for _, s := range steps {
		res, err := e.Execute(ctx, session, s.tool, s.params, func(context.Context) (any, error) { return s.result, nil })
		if err != nil {
			return err
		}
		d := res.Decision
		fmt.Printf("  %-8s %-5s estimate=%-10s", s.tool, d.Verdict, d.Estimate.Nanos)
		if d.Allowed() {
			fmt.Printf(" charged=%s (%s)\n", res.Reservation.Charged, res.Reservation.CostSource)
		} else {
			fmt.Printf(" reason=%q\n", d.Reason)
		}
	}

	fmt.Println("\n== Ledger")
	accounts, err := ledger.Accounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		limit := "unlimited"
		if a.Limit != nil {
			limit = a.Limit.String()
		}
		fmt.Printf("  %-18s limit=%-9s committed=%-9s pending=%s\n", a.ID, limit, a.Committed, a.Pending)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
