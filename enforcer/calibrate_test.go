package enforcer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// calibEnv is an enforcer on a memory ledger with a fake clock and an
// unlimited account tree "org/..." for calibration tests.
type calibEnv struct {
	t     *testing.T
	e     *Enforcer
	clock *stepClock
}

func newCalibEnv(t *testing.T, cfg Config, accounts ...string) *calibEnv {
	t.Helper()
	clock := &stepClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Clock = clock
	e := newTestEnforcer(t, cfg)
	mustAccount(t, e, AccountSpec{ID: "org"})
	for _, a := range accounts {
		mustAccount(t, e, AccountSpec{ID: a, Parent: "org"})
	}
	return &calibEnv{t: t, e: e, clock: clock}
}

func llmParams(model string, chars int) map[string]any {
	p := map[string]any{"prompt": strings.Repeat("x", chars)}
	if model != "" {
		p["model"] = model
	}
	return p
}

// teach reserves a call and commits actual (CostActual) with usage.
func (c *calibEnv) teach(account string, params map[string]any, actual Nanos, u *TokenUsage) Reservation {
	c.t.Helper()
	ctx := context.Background()
	d, r, err := c.e.Reserve(ctx, Call{Account: account, Tool: "LLM", Params: params}, ReserveOptions{})
	if err != nil || d.Verdict != Allow {
		c.t.Fatalf("reserve: %v %+v", err, d)
	}
	settled, err := c.e.Commit(ctx, CommitRequest{ID: r.ID, Actual: &actual, Source: CostActual, Usage: u})
	if err != nil {
		c.t.Fatalf("commit: %v", err)
	}
	return settled
}

func (c *calibEnv) estimate(account string, params map[string]any) Estimate {
	c.t.Helper()
	est, err := c.e.Estimate(context.Background(), Call{Account: account, Tool: "LLM", Params: params})
	if err != nil {
		c.t.Fatalf("estimate: %v", err)
	}
	return est
}

// The seed's numbers stay exact: no model and no history is chars/4 at
// $0.50/M, minimum $0.0001, even with calibration on (the default).
func TestCalibrationSeedRuleWithoutModelOrHistory(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	for _, tc := range []struct {
		chars int
		usd   string
	}{{70_000, "0.00875"}, {20, "0.0001"}} {
		est := c.estimate("org/s", llmParams("", tc.chars))
		if est.Nanos != MustParseUSD(tc.usd) || est.Source != SourceLLM {
			t.Errorf("%d chars: %s from %q; want $%s from llm", tc.chars, est.Nanos, est.Source, tc.usd)
		}
	}
	est := c.estimate("org/s", map[string]any{"prompt": strings.Repeat("x", 70_000), "cache_read_tokens": 17_000, "max_tokens": 5})
	if est.Nanos != MustParseUSD("0.00875") {
		t.Errorf("seed rule with cache and max_tokens params: %s; want $0.00875 (no model: nothing priced apart)", est.Nanos)
	}
}

func TestCalibrationColdStartUsesThePrior(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	est := c.estimate("org/s", llmParams("gpt-4o", 40_000)) // 10,000 tokens x $2.50/M = $0.025
	if est.Explain == nil || est.Explain.Base != MustParseUSD("0.025") {
		t.Fatalf("explain %+v: want base $0.025", est.Explain)
	}
	if est.Nanos != MustParseUSD("0.05") || est.Source != "llm+calib(prior x2.00, n=0)" {
		t.Errorf("cold start: %s from %q; want $0.05 from llm+calib(prior x2.00, n=0)", est.Nanos, est.Source)
	}
}

func TestCalibrationLearnsTheRatioAtTheQuantile(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	params := llmParams("gpt-4o", 40_000) // base $0.025
	for i := range 200 {
		actual := MustParseUSD("0.0375") // 1.5x base
		if i%50 == 0 {
			actual = MustParseUSD("0.25") // 2% at 10x: above the 95th percentile
		}
		c.teach("org/s", params, actual, nil)
	}
	est := c.estimate("org/s", params)
	x := est.Explain
	if x.Samples != 200 || x.Prior || !strings.HasPrefix(est.Source, "llm+calib(p95 x1.5") || !strings.HasSuffix(est.Source, ", n=200)") {
		t.Fatalf("source %q, explain %+v: want p95 x1.5.. over n=200", est.Source, x)
	}
	// The quantile is a bin's upper edge: at least the samples, at most 9% above.
	if est.Nanos < MustParseUSD("0.0375") || est.Nanos > MustParseUSD("0.041") {
		t.Errorf("hold %s; want within one bin above $0.0375", est.Nanos)
	}
	// Another root account, tool or model learns apart.
	mustAccount(t, c.e, AccountSpec{ID: "other"})
	if src := c.estimate("other", params).Source; src != "llm+calib(prior x2.00, n=0)" {
		t.Errorf("another root: %q; want the prior", src)
	}
}

func TestCalibrationLearnsOnlyFromReportedActuals(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	ctx := context.Background()
	params := llmParams("gpt-4o", 4000)
	_, r, err := c.e.Reserve(ctx, Call{Account: "org/s", Tool: "LLM", Params: params}, ReserveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.e.Commit(ctx, CommitRequest{ID: r.ID}); err != nil { // charged the hold, CostEstimated
		t.Fatal(err)
	}
	if src := c.estimate("org/s", params).Source; !strings.Contains(src, "n=0") {
		t.Errorf("after an estimated commit: %q; want nothing learned", src)
	}
	settled := c.teach("org/s", params, MustParseUSD("0.01"), nil)
	// A retried commit (same actual) returns the same reservation: it must not teach twice.
	actual := MustParseUSD("0.01")
	if _, err := c.e.Commit(ctx, CommitRequest{ID: settled.ID, Actual: &actual, Source: CostActual}); err != nil {
		t.Fatal(err)
	}
	if n := c.estimate("org/s", params).Explain.Samples; n != 1 {
		t.Errorf("samples after a commit and its retry = %d; want 1", n)
	}
}

func TestCalibrationHistoryAppliesToCallsWithoutModel(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	params := llmParams("", 70_000) // seed rule $0.00875
	for range 20 {
		c.teach("org/s", params, MustParseUSD("0.0175"), nil)
	}
	est := c.estimate("org/s", params)
	if est.Nanos < MustParseUSD("0.0175") || !strings.Contains(est.Source, "n=20") {
		t.Errorf("no model, with history: %s from %q; want >= $0.0175 calibrated over n=20", est.Nanos, est.Source)
	}
}

func TestCalibrationLearnsOutputAndCache(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s", "org/t")
	params := llmParams("gpt-4o", 40_000)
	for _, out := range []int64{100, 300} {
		c.teach("org/s", params, MustParseUSD("0.03"), &TokenUsage{Model: "gpt-4o", InputTokens: 2000, CacheReadTokens: 8000, OutputTokens: out})
	}
	x := c.estimate("org/s", params).Explain
	if x.ExpectedOutputTokens != 200 {
		t.Errorf("expected output %d (%s); want the mean, 200", x.ExpectedOutputTokens, x.OutputSource)
	}
	// The second call read 8,000 of the first call's 10,000 prompt tokens: 80%.
	if x.CacheReadTokens != 8000 || !strings.HasPrefix(x.CacheSource, "session") {
		t.Errorf("cache reads %d (%s); want 80%% of the previous 10,000-token prompt", x.CacheReadTokens, x.CacheSource)
	}
	if y := c.estimate("org/t", params).Explain; y.CacheReadTokens != 0 {
		t.Errorf("another session: cache reads %d; want 0 (nothing cached for it)", y.CacheReadTokens)
	}
	withParams := map[string]any{"prompt": params["prompt"], "model": "gpt-4o", "cache_read_tokens": 1234, "max_tokens": 50}
	if y := c.estimate("org/s", withParams).Explain; y.CacheReadTokens != 1234 || y.ExpectedOutputTokens != 50 {
		t.Errorf("params: cache %d, output %d; want params.cache_read_tokens 1234 and params.max_tokens 50 to win", y.CacheReadTokens, y.ExpectedOutputTokens)
	}
	c.clock.advance(6 * time.Minute)
	if y := c.estimate("org/s", params).Explain; y.CacheReadTokens != 0 {
		t.Errorf("past the cache lifetime: cache reads %d; want 0", y.CacheReadTokens)
	}
}

func TestCalibrationMinimumCacheablePrompt(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	short := llmParams("gpt-4o", 2000)
	c.teach("org/s", short, MustParseUSD("0.002"), &TokenUsage{Model: "gpt-4o", InputTokens: 600, OutputTokens: 10})
	x := c.estimate("org/s", short).Explain
	if x.CacheReadTokens != 0 || x.MinCacheableTokens != 1024 || !strings.Contains(x.String(), "600 tokens are below the 1024 a provider caches") {
		t.Errorf("after a 600-token prompt: cache %d (%s); want none below the 1024-token minimum", x.CacheReadTokens, x.String())
	}
}

func TestCalibrationRefusesBadTokenParams(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	for _, p := range []map[string]any{
		{"prompt": "hi", "model": "gpt-4o", "cache_read_tokens": -1},
		{"prompt": "hi", "model": "gpt-4o", "max_tokens": 1.5},
		{"prompt": "hi", "model": "gpt-4o", "max_tokens": "many"},
	} {
		_, err := c.e.Estimate(context.Background(), Call{Account: "org/s", Tool: "LLM", Params: p})
		var ipe *InvalidParamsError
		if !errors.As(err, &ipe) || (ipe.Param != "cache_read_tokens" && ipe.Param != "max_tokens") {
			t.Errorf("%v: err %v; want an *InvalidParamsError naming the param", p, err)
		}
	}
}

func TestCalibrationDisabledIsTheBaseCost(t *testing.T) {
	c := newCalibEnv(t, Config{Calibration: CalibrationConfig{Disabled: true}}, "org/s")
	params := llmParams("gpt-4o", 40_000)
	c.teach("org/s", params, MustParseUSD("1"), nil)
	if est := c.estimate("org/s", params); est.Nanos != MustParseUSD("0.025") || est.Source != SourceLLM {
		t.Errorf("disabled: %s from %q; want the base $0.025 from llm", est.Nanos, est.Source)
	}
}

func TestCalibrationConfigValidation(t *testing.T) {
	for _, cc := range []CalibrationConfig{{Quantile: 1}, {Quantile: -0.1}, {PriorRatio: -1}, {CountCap: 3}, {MaxSessions: -1}} {
		_, err := New(NewMemoryLedger(LedgerOptions{}), Config{Calibration: cc})
		if err == nil || !strings.Contains(err.Error(), "calibration.") {
			t.Errorf("%+v: err %v; want an error naming the calibration field", cc, err)
		}
	}
}

// The hold records its base and key, so any host can learn from its commit.
func TestCalibrationRecordedOnTheHold(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	_, r, err := c.e.Reserve(context.Background(), Call{Account: "org/s", Tool: "LLM", Params: llmParams("gpt-4o", 40_000)}, ReserveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.BaseEstimate != MustParseUSD("0.025") || r.CalibrationKey != "llm|org|LLM|gpt-4o|uncached" {
		t.Errorf("reservation base %s key %q; want $0.025 under llm|org|LLM|gpt-4o|uncached", r.BaseEstimate, r.CalibrationKey)
	}
}

// Same history, same estimates: calibration has no randomness and no
// dependence on map order.
func TestCalibrationIsDeterministic(t *testing.T) {
	run := func() []string {
		c := newCalibEnv(t, Config{}, "org/a", "org/b")
		var out []string
		for i := range 300 {
			acct := []string{"org/a", "org/b"}[i%2]
			p := llmParams([]string{"gpt-4o", "claude-opus-4-5"}[i%3%2], 1000+(i*7919)%30_000)
			est := c.estimate(acct, p)
			out = append(out, est.Source+" "+est.Nanos.String())
			actual := Nanos(int64(est.Explain.Base) * int64(1+(i*31)%5) / 2)
			c.teach(acct, p, actual, &TokenUsage{Model: "gpt-4o", InputTokens: int64(i * 10), CacheReadTokens: int64(i * 20), OutputTokens: int64(i % 97)})
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d: %s vs %s", i, a[i], b[i])
		}
	}
}

// Calls expected to read from the cache and calls expected to read
// nothing learn apart: their actual/base differ in kind.
func TestCalibrationCachedAndUncachedLearnApart(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	cached := map[string]any{"prompt": strings.Repeat("x", 40_000), "model": "gpt-4o", "cache_read_tokens": 9000}
	for range 30 {
		c.teach("org/s", cached, MustParseUSD("0.05"), nil)
	}
	if est := c.estimate("org/s", cached); !strings.Contains(est.Source, "n=30") || !strings.HasSuffix(est.Explain.CalibrationKey, "|cached") {
		t.Errorf("cached call: %q under %q; want n=30 under the cached class", est.Source, est.Explain.CalibrationKey)
	}
	if src := c.estimate("org/s", llmParams("gpt-4o", 40_000)).Source; src != "llm+calib(prior x2.00, n=0)" {
		t.Errorf("uncached call: %q; want the prior (nothing learned for that class)", src)
	}
}

// When holds keep ending below the actual more often than the target
// allows (the ratios drift upward), the quantile is raised by the excess.
func TestCalibrationRealizedMissesRaiseTheQuantile(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	params := llmParams("gpt-4o", 40_000) // base $0.025
	for i := range 100 {
		actual := Nanos(int64(MustParseUSD("0.025")) * int64(10+i) / 10) // ever larger: most holds miss
		c.teach("org/s", params, actual, nil)
	}
	x := c.estimate("org/s", params).Explain
	if x.Quantile <= 0.95 || x.Quantile > maxQuantile {
		t.Errorf("quantile after drifting misses = %v; want raised above 0.95, at most %v", x.Quantile, maxQuantile)
	}
}

// An extendable LLM call whose calibrated hold does not fit, but whose base
// does, is held at the remaining budget; any other call is denied as before.
func TestExtendableCallIsHeldAtTheRemainingBudget(t *testing.T) {
	c := newCalibEnv(t, Config{})
	mustAccount(t, c.e, AccountSpec{ID: "org/s", Parent: "org", Limit: usdPtr("0.04")})
	ctx := context.Background()
	call := Call{Account: "org/s", Tool: "LLM", Params: llmParams("gpt-4o", 40_000)} // base $0.025, prior hold $0.05
	d, _, err := c.e.Reserve(ctx, call, ReserveOptions{})
	if err != nil || d.Verdict != Deny {
		t.Fatalf("not extendable: %+v, %v; want a budget deny", d, err)
	}
	d, r, err := c.e.Reserve(ctx, call, ReserveOptions{Extendable: true})
	if err != nil || d.Verdict != Allow || r.Estimate != MustParseUSD("0.04") || !strings.HasSuffix(d.Estimate.Source, "+trimmed(remaining budget)") {
		t.Fatalf("extendable: %+v %+v, %v; want held at the remaining $0.04", d, r, err)
	}
	if !d.Estimate.Explain.Trimmed || r.BaseEstimate != MustParseUSD("0.025") {
		t.Errorf("explain %+v, base %s; want trimmed, base $0.025 recorded", d.Estimate.Explain, r.BaseEstimate)
	}
	small := Call{Account: "org/s", Tool: "LLM", Params: llmParams("gpt-4o", 400)}
	if d, _, err := c.e.Reserve(ctx, small, ReserveOptions{Extendable: true}); err != nil || d.Verdict != Deny {
		t.Errorf("nothing left: %+v, %v; want a deny (the base does not fit)", d, err)
	}
}

// A call that cannot extend its hold is admitted only if its tail (the
// p99 of actual/base) fits the remaining budget: committed past its hold
// near the limit, it would overdraw the account.
func TestTailGuardDeniesWhatCouldOverdraw(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	params := llmParams("gpt-4o", 40_000) // base $0.025
	for i := range 100 {
		actual := MustParseUSD("0.025")
		if i%20 == 0 {
			actual = MustParseUSD("0.25") // 5% at 10x: the tail
		}
		c.teach("org/s", params, actual, nil)
	}
	est := c.estimate("org/s", params)
	if est.Explain.Tail < MustParseUSD("0.25") || est.Nanos >= MustParseUSD("0.1") {
		t.Fatalf("hold %s tail %s; want a hold near $0.025 and a tail >= $0.25", est.Nanos, est.Explain.Tail)
	}
	mustAccount(t, c.e, AccountSpec{ID: "org/b", Parent: "org", Limit: usdPtr("0.1")})
	call := Call{Account: "org/b", Tool: "LLM", Params: params}
	d, _, err := c.e.Reserve(context.Background(), call, ReserveOptions{})
	if err != nil || d.Verdict != Deny || d.Layer != LayerBudget || !strings.HasSuffix(d.Estimate.Source, "+tail(p99)") {
		t.Errorf("hold fits, tail does not: %+v, %v; want a budget deny naming the tail", d, err)
	}
	if d, err := c.e.Check(context.Background(), call); err != nil || d.Verdict != Deny {
		t.Errorf("Check: %+v, %v; want the deny Reserve gives", d, err)
	}
	if d, _, err := c.e.Reserve(context.Background(), call, ReserveOptions{Extendable: true}); err != nil || d.Verdict != Allow {
		t.Errorf("extendable: %+v, %v; want allowed (it stops where an extension is refused)", d, err)
	}
}

// A tool run through Execute that reports its cost teaches calibration.
func TestExecuteTeachesCalibration(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	params := llmParams("gpt-4o", 4000)
	for range 3 {
		_, err := c.e.Execute(context.Background(), "org/s", "LLM", params, func(context.Context) (any, error) {
			return billed{MustParseUSD("0.002")}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if src := c.estimate("org/s", params).Source; !strings.Contains(src, "n=3") {
		t.Errorf("after 3 Executes with reported costs: %q; want n=3", src)
	}
}

// A model with nothing learned yet borrows the ratios of the account's
// other models for the tool, rather than the fixed prior.
func TestCalibrationNewModelBorrowsFromOtherModels(t *testing.T) {
	c := newCalibEnv(t, Config{}, "org/s")
	for range 10 {
		c.teach("org/s", llmParams("gpt-4o", 40_000), MustParseUSD("0.25"), nil) // 10x base
	}
	est := c.estimate("org/s", llmParams("claude-opus-4-5", 40_000))
	if !strings.HasPrefix(est.Source, "llm+calib(other models p95 x10.") || !est.Explain.Family || est.Explain.Samples != 10 {
		t.Errorf("new model: %q (%+v); want the other models' p95 over n=10", est.Source, est.Explain)
	}
	if src := c.estimate("org/s", llmParams("", 40_000)).Source; src != SourceLLM {
		t.Errorf("no model, no history of its own: %q; want the seed rule (never borrowed)", src)
	}
}

// TailOverrunBP admits a call whose tail passes the remaining budget by
// at most that share of the limit, and still denies one that passes it by
// more.
func TestTailOverrunToleranceBoundsTheOverrun(t *testing.T) {
	params := llmParams("gpt-4o", 40_000) // base $0.025
	for _, tc := range []struct {
		limit string
		bp    int64
		want  Verdict
	}{
		{"0.1", 0, Deny},       // strict: a tail >= $0.25 does not fit $0.1
		{"0.1", 10_000, Deny},  // 100% of $0.1 = $0.1 slack: $0.25 - $0.1 > $0.1
		{"0.1", 20_000, Allow}, // 200%: $0.2 slack covers $0.15 past the remaining
		{"1", 200, Allow},      // the tail fits outright
		{"0.24", 100, Deny},    // 1% of $0.24: not enough for the tail's excess
		{"0.24", 1_000_000, Allow},
	} {
		c := newCalibEnv(t, Config{Calibration: CalibrationConfig{TailOverrunBP: tc.bp}}, "org/s")
		for i := range 100 {
			actual := MustParseUSD("0.025")
			if i%20 == 0 {
				actual = MustParseUSD("0.25")
			}
			c.teach("org/s", params, actual, nil)
		}
		mustAccount(t, c.e, AccountSpec{ID: "org/b", Parent: "org", Limit: usdPtr(tc.limit)})
		d, _, err := c.e.Reserve(context.Background(), Call{Account: "org/b", Tool: "LLM", Params: params}, ReserveOptions{})
		if err != nil || d.Verdict != tc.want {
			t.Errorf("limit $%s, tolerance %d bp: %v (%s), %v; want %v", tc.limit, tc.bp, d.Verdict, d.Reason, err, tc.want)
		}
	}
}
