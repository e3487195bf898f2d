package replay

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/purser-dev/purser/enforcer"
)

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Replayed %d traces: %d steps (%d LLM calls, %d tool calls)", r.Traces, r.Steps, r.LLMCalls, r.ToolCalls)
	if r.SkippedLines > 0 {
		fmt.Fprintf(&b, "; %d unparseable lines skipped", r.SkippedLines)
	}
	b.WriteString("\n")
	b.WriteString("Tool calls by tool: " + toolCounts(r.CallsByTool) + "\n\n")
	fmt.Fprintf(&b, "Admitted %d, denied %d, asked %d (asks are not approved: not run, not charged)\n", r.Admitted, r.Denied, r.Asked)
	if r.Budget != nil && r.Budget.Pool != nil {
		fmt.Fprintf(&b, "Spent %s of %s budget", r.Spent, *r.Budget.Pool)
		if r.Remaining.Nanos >= 0 {
			fmt.Fprintf(&b, ", %s remaining", *r.Remaining)
		}
	} else if r.Budget != nil {
		fmt.Fprintf(&b, "Spent %s (no pool budget)", r.Spent)
	} else {
		fmt.Fprintf(&b, "Spent %s (no budget)", r.Spent)
	}
	if r.Overdrawn {
		fmt.Fprintf(&b, " - OVERDRAWN by %s", amount(-enforcer.Nanos(r.Remaining.Nanos)))
	}
	b.WriteString("\n")
	r.Budget.write(&b)
	r.writePerTrace(&b)
	r.writeDenials(&b)
	r.writeAlerts(&b)
	r.writeTop(&b)
	r.writeAccuracy(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// write prints what the limits did; nothing without a budget.
func (br *BudgetReport) write(b *strings.Builder) {
	if br == nil {
		return
	}
	b.WriteString("\nBudget")
	if br.TraceLimit != "" {
		fmt.Fprintf(b, " (per trace: %s", br.TraceLimit)
		if br.UnlimitedTraces > 0 {
			fmt.Fprintf(b, "; %d traces without an actual cost have no limit", br.UnlimitedTraces)
		}
		b.WriteString(")")
	}
	if br.Stream {
		b.WriteString(", streaming")
	}
	b.WriteString(":\n")
	if len(br.OverrunAccounts) == 0 {
		b.WriteString("  No account ended above its limit.\n")
	} else {
		fmt.Fprintf(b, "  %d accounts ended above their limit; worst $%s over, %s of its limit.\n",
			len(br.OverrunAccounts), br.MaxOverrunUSD, pct(br.MaxOverrunRatio))
	}
	if u := br.UtilizationAtFirstDenial; u != nil {
		fmt.Fprintf(b, "  %d traces denied (or cut); at a trace's first denial the limit that refused it was %s spent (median), %s at least.\n",
			len(br.DeniedTraces), pct(u.Median), pct(u.Min))
	} else {
		b.WriteString("  No trace was denied.\n")
	}
	fmt.Fprintf(b, "  %d steps ran after their trace's first denial.\n", br.StepsAfterFirstDenial)
	fmt.Fprintf(b, "  Held %s at admission for %s of actual cost (admitted steps with one): %.2fx (LLM calls %.2fx).\n",
		br.Held, br.Actual, br.HoldRatio, br.LLMHoldRatio)
	if br.Stream {
		fmt.Fprintf(b, "  Streaming: %d calls extended their hold by %s in all; %d cut where an extension was denied.\n",
			br.ExtendedCalls, br.Extended, br.CutCalls)
	}
	const shown = 10
	for i, o := range br.OverrunAccounts {
		if i == shown {
			fmt.Fprintf(b, "  ... and %d more (see --json)\n", len(br.OverrunAccounts)-shown)
			break
		}
		who := o.Account
		if o.Trace != "" {
			who = o.Trace + " (" + o.Account + ")"
		}
		fmt.Fprintf(b, "  over: %s: %s of %s (+%s)\n", who, o.Committed, o.Limit, pct(o.Ratio))
	}
}

func toolCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	// The most used tools; the JSON report has them all.
	const shown = 15
	parts := make([]string, 0, min(len(keys), shown+1))
	for i, k := range keys {
		if i == shown {
			parts = append(parts, fmt.Sprintf("%d more", len(keys)-shown))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// perTraceShown is the most traces listed one per line; a bigger run's
// per-trace lines are in the JSON report.
const perTraceShown = 12

func (r *Report) writePerTrace(b *strings.Builder) {
	if len(r.PerTrace) < 2 || len(r.PerTrace) > perTraceShown {
		return
	}
	b.WriteString("\nPer trace:\n")
	tw := tabwriter.NewWriter(b, 2, 4, 2, ' ', 0)
	for _, t := range r.PerTrace {
		fmt.Fprintf(tw, "  %s\t%s\t%d steps\tspent %s\testimated %s\tdenied %d\n", t.Name, t.Format, t.Steps, t.Spent, t.Estimate, t.Denied)
	}
	tw.Flush()
}

func (r *Report) writeDenials(b *strings.Builder) {
	if len(r.FirstDenials) == 0 {
		return
	}
	fmt.Fprintf(b, "\nFirst denial per trace (%d traces):\n", len(r.FirstDenials))
	const shown = 20
	for i, d := range r.FirstDenials {
		if i == shown {
			fmt.Fprintf(b, "  ... and %d more (see --json)\n", len(r.FirstDenials)-shown)
			break
		}
		fmt.Fprintf(b, "  %s step %d %s: %s\n", d.Trace, d.Step, d.Tool, d.Reason)
	}
}

func (r *Report) writeAlerts(b *strings.Builder) {
	if len(r.Alerts) == 0 {
		b.WriteString("\nNo threshold alerts fired.\n")
		return
	}
	fmt.Fprintf(b, "\nThreshold alerts (%d):\n", len(r.Alerts))
	const shown = 20
	for i, a := range r.Alerts {
		if i == shown {
			fmt.Fprintf(b, "  ... and %d more (see --json)\n", len(r.Alerts)-shown)
			break
		}
		what := fmt.Sprintf("%d%%", a.ThresholdPct)
		if a.Overdrawn {
			what = "overdrawn"
		}
		who := a.Account
		if a.Trace != "" {
			who = a.Trace + " (" + a.Account + ")"
		}
		fmt.Fprintf(b, "  step %-6d %-8s %-9s %s: %s of %s\n", a.Step, a.Level, what, who, a.Committed, a.Limit)
	}
}

func (r *Report) writeTop(b *strings.Builder) {
	if len(r.TopCosts) == 0 {
		return
	}
	b.WriteString("\nTop costs:\n")
	tw := tabwriter.NewWriter(b, 2, 4, 2, ' ', 0)
	for _, c := range r.TopCosts {
		fmt.Fprintf(tw, "  %s\tstep %d\t%s\tcharged %s\testimate %s\n", c.Trace, c.Step, c.Tool, c.Charged, c.Estimate)
	}
	tw.Flush()
}

func (r *Report) writeAccuracy(b *strings.Builder) {
	a := r.Accuracy
	fmt.Fprintf(b, "\nEstimator accuracy (%d steps with an actual cost; %d charged their estimate are left out):\n",
		a.Overall.Calls, a.Unmeasured)
	tw := tabwriter.NewWriter(b, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  \tcalls\testimate\tactual\test/act\tmedian |err|\tp90 |err|\tmedian err\tunder-estimated\t")
	line := func(label string, row AccuracyRow) {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%.2fx\t%s\t%s\t%s\t%s (%d)\t\n", label, row.Calls, row.Estimate, row.Actual, row.Ratio,
			pct(row.MedianAbsRelErr), pct(row.P90AbsRelErr), pct(row.MedianRelErr), pct(row.UnderShare), row.Under)
	}
	line("all", a.Overall)
	for _, row := range a.ByTool {
		line("tool "+row.Key, row)
	}
	for _, row := range a.BySource {
		line("source "+row.Key, row)
	}
	tw.Flush()
}
