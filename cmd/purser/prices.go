package main

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/purser-dev/purser/enforcer"
	"github.com/purser-dev/purser/pricing"
)

const pricesUsage = "show the LLM price table, or what applies to a model: purser prices [MODEL] [--prices FILE] [--json]"

func runPrices(_ context.Context, args []string, out io.Writer) error {
	fs := newFlags("prices", out)
	config := fs.String("config", "", "YAML config file: pricing.llm.* (default: embedded defaults)")
	file := fs.String("prices", "", "LiteLLM price file replacing the embedded snapshot (pricing.llm.litellm_file)")
	asJSON := fs.Bool("json", false, "print JSON")
	models, err := (&flagSet{fs}).parseInterleaved(args)
	if err != nil {
		return err
	}
	if len(models) > 1 {
		return usagef("prices takes at most one MODEL, got %d", len(models))
	}
	over := map[string]any{"store.kind": "memory", "log.level": "error"}
	if *file != "" {
		over["pricing.llm.litellm_file"] = *file
	}
	cfg, err := loadConfig(*config, over)
	if err != nil {
		return err
	}
	b, err := cfg.build()
	if err != nil {
		return err
	}
	if len(models) == 0 {
		return printPriceSummary(out, cfg, b, *asJSON)
	}
	return printModelPrice(out, b.prices, models[0], *asJSON)
}

type priceSummary struct {
	Source       string            `json:"source"`
	File         string            `json:"file,omitempty"`
	SnapshotDate string            `json:"snapshot_date,omitempty"`
	SHA256       string            `json:"sha256"`
	Entries      int               `json:"entries"`
	Skipped      int               `json:"skipped_without_token_prices"`
	LoadTimeMs   float64           `json:"load_time_ms"`
	UnknownModel string            `json:"unknown_model"`
	Fallbacks    map[string]string `json:"fallbacks"`
	NoModelUSD   string            `json:"no_model_usd_per_mtok"`
}

func printPriceSummary(out io.Writer, cfg *Config, b *built, asJSON bool) error {
	t := b.prices
	o := t.Origin()
	s := priceSummary{Source: o.Source, File: o.File, SnapshotDate: o.SnapshotDate, SHA256: o.SHA256, Entries: t.Len(),
		Skipped: o.Skipped, LoadTimeMs: float64(o.LoadTime.Microseconds()) / 1000, UnknownModel: cfg.Pricing.LLM.UnknownModel,
		Fallbacks: t.Fallbacks(), NoModelUSD: b.enforcer.LLM.DefaultPrice.USDPerMTok()}
	if asJSON {
		return printJSON(out, s)
	}
	fmt.Fprintf(out, "LLM prices: %s\n", s.Source)
	if s.SnapshotDate != "" {
		fmt.Fprintf(out, "snapshot date: %s\n", s.SnapshotDate)
	}
	fmt.Fprintf(out, "entries: %d priced per token (%d without per-token prices skipped)\nsha256: %s\nloaded in: %.1f ms\n",
		s.Entries, s.Skipped, s.SHA256, s.LoadTimeMs)
	fmt.Fprintf(out, "a call naming no model: $%s per 1M input tokens (pricing.llm.default_usd_per_mtok)\n", s.NoModelUSD)
	if s.UnknownModel != "" && s.UnknownModel != pricing.UnknownDearest {
		fmt.Fprintf(out, "a model not in the table: priced as %s (pricing.llm.unknown_model)\n", t.PriceOf(s.UnknownModel).Model)
		return nil
	}
	fmt.Fprintln(out, "a model not in the table: the dearest chat model of its provider family (pricing.llm.unknown_model: dearest)")
	fams := make([]string, 0, len(s.Fallbacks))
	for f := range s.Fallbacks {
		if f == "anthropic" || f == "openai" || f == "gemini" || f == "all" {
			fams = append(fams, f)
		}
	}
	sort.Strings(fams)
	for _, f := range fams {
		p := t.PriceOf(s.Fallbacks[f]).Price
		fmt.Fprintf(out, "  %-10s %-32s $%s in / $%s out per 1M\n", f, s.Fallbacks[f], p.Input.USDPerMTok(), p.Output.USDPerMTok())
	}
	fmt.Fprintf(out, "  (and each other provider prefix, e.g. groq/: %d families in all)\n", len(s.Fallbacks))
	return nil
}

type priceClasses struct {
	Input        string `json:"input"`
	Output       string `json:"output"`
	CacheRead    string `json:"cache_read"`
	CacheWrite   string `json:"cache_write"`
	CacheWrite1h string `json:"cache_write_1h"`
}

type modelPriceReport struct {
	Model    string       `json:"model"`
	Entry    string       `json:"entry"`
	Provider string       `json:"provider,omitempty"`
	Mode     string       `json:"mode,omitempty"`
	Source   string       `json:"source"`
	Fallback bool         `json:"fallback"`
	USD      priceClasses `json:"usd_per_mtok"`
	Tier     *struct {
		AboveTokens int64        `json:"above_prompt_tokens"`
		USD         priceClasses `json:"usd_per_mtok"`
	} `json:"long_context_tier,omitempty"`
}

// classes shows the price each token class pays (a missing cache price
// is the input price, as ModelPrice.Cost charges it).
func classes(p enforcer.ModelPrice) priceClasses {
	or := func(v, d enforcer.PerMTok) string {
		if v == 0 {
			v = d
		}
		return v.USDPerMTok()
	}
	write := p.CacheWrite
	if write == 0 {
		write = p.Input
	}
	return priceClasses{Input: p.Input.USDPerMTok(), Output: p.Output.USDPerMTok(), CacheRead: or(p.CacheRead, p.Input),
		CacheWrite: write.USDPerMTok(), CacheWrite1h: or(p.CacheWrite1h, write)}
}

func printModelPrice(out io.Writer, t *pricing.Table, model string, asJSON bool) error {
	q, e := t.Lookup(model)
	r := modelPriceReport{Model: model, Entry: q.Model, Provider: e.Provider, Mode: e.Mode, Source: q.Source, Fallback: q.Fallback,
		USD: classes(q.Price)}
	if p := q.Price; p.TierAboveTokens > 0 {
		above := p
		above.Input, above.Output = pick(p.InputAbove, p.Input), pick(p.OutputAbove, p.Output)
		above.CacheRead, above.CacheWrite = pick(p.CacheReadAbove, p.CacheRead), pick(p.CacheWriteAbove, p.CacheWrite)
		above.CacheWrite1h = pick(p.CacheWrite1hAbove, p.CacheWrite1h)
		r.Tier = &struct {
			AboveTokens int64        `json:"above_prompt_tokens"`
			USD         priceClasses `json:"usd_per_mtok"`
		}{p.TierAboveTokens, classes(above)}
	}
	if asJSON {
		return printJSON(out, r)
	}
	if r.Fallback {
		fmt.Fprintf(out, "FALLBACK: %q is not in the price table; it is priced as %s (%s)\n", model, r.Entry, r.Source)
	}
	fmt.Fprintf(out, "model:  %s\nentry:  %s (%s, %s)\nsource: %s\n", r.Model, r.Entry, r.Provider, r.Mode, r.Source)
	writeClasses(out, "USD per 1M tokens:", r.USD)
	if r.Tier != nil {
		writeClasses(out, fmt.Sprintf("above %d prompt tokens (every token of the call):", r.Tier.AboveTokens), r.Tier.USD)
	}
	return nil
}

func pick(above, base enforcer.PerMTok) enforcer.PerMTok {
	if above > 0 {
		return above
	}
	return base
}

func writeClasses(out io.Writer, title string, c priceClasses) {
	fmt.Fprintf(out, "%s\n  input           %s\n  output          %s\n  cache read      %s\n  cache write 5m  %s\n  cache write 1h  %s\n",
		title, c.Input, c.Output, c.CacheRead, c.CacheWrite, c.CacheWrite1h)
}
