package enforcer

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// CalibrationConfig tunes how LLM holds learn from settled spend (see
// ACCURACY.md). Zero fields take the defaults.
type CalibrationConfig struct {
	// Disabled turns learning off: every LLM estimate is its base cost.
	Disabled bool
	// Quantile is where in the learned actual/base distribution a hold is
	// placed (default 0.95: about 5% of holds end below the actual).
	Quantile float64
	// PriorRatio scales a named model's base cost before anything is
	// learned, and PriorWeight is how many samples that prior counts as
	// (defaults 2 and 4): a cold start holds more, and the prior fades as
	// samples arrive.
	PriorRatio  float64
	PriorWeight int
	// CountCap bounds a key's sample count: past it every count halves, so
	// recent calls weigh more (default 1024).
	CountCap int
	// CacheLifetime is how long a provider keeps a prompt prefix cached
	// (default 5 minutes, the shortest common lifetime).
	CacheLifetime time.Duration
	// MinCacheableTokens is the prior for the shortest prompt a provider
	// caches (default 1024) until a smaller cached prefix is seen.
	MinCacheableTokens int64
	// MaxSessions bounds the accounts whose last LLM call is remembered
	// for cache prediction (default 10,000; the oldest is forgotten).
	MaxSessions int
	// TailOverrunBP is how far, in basis points of the refusing account's
	// limit, a call that cannot extend its hold may pass the remaining
	// budget at its calibrated tail (p99) and still be admitted. The
	// default 0 is strict: the tail must fit, so a budget is not
	// overdrawn by an under-estimate, at the price of stopping agents
	// early when one call's tail is large against their limit
	// (ACCURACY.md measures both; extendable holds avoid the trade).
	TailOverrunBP int64
}

// DefaultCalibrationConfig returns the defaults.
func DefaultCalibrationConfig() CalibrationConfig {
	return CalibrationConfig{Quantile: 0.95, PriorRatio: 2, PriorWeight: 4, CountCap: 1024,
		CacheLifetime: 5 * time.Minute, MinCacheableTokens: 1024, MaxSessions: 10_000}
}

func (c CalibrationConfig) withDefaults() CalibrationConfig {
	d := DefaultCalibrationConfig()
	if c.Quantile == 0 {
		c.Quantile = d.Quantile
	}
	if c.PriorRatio == 0 {
		c.PriorRatio = d.PriorRatio
	}
	if c.PriorWeight == 0 {
		c.PriorWeight = d.PriorWeight
	}
	if c.CountCap == 0 {
		c.CountCap = d.CountCap
	}
	if c.CacheLifetime == 0 {
		c.CacheLifetime = d.CacheLifetime
	}
	if c.MinCacheableTokens == 0 {
		c.MinCacheableTokens = d.MinCacheableTokens
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = d.MaxSessions
	}
	return c
}

// ValidateCalibrationConfig checks c after defaults are applied, naming the
// field (as the `calibration` config section spells it).
func ValidateCalibrationConfig(c CalibrationConfig) error { return c.withDefaults().validate() }

func (c CalibrationConfig) validate() error {
	switch {
	case !(c.Quantile > 0 && c.Quantile < 1):
		return fmt.Errorf("calibration.quantile must be in (0, 1), got %v", c.Quantile)
	case !(c.PriorRatio > 0 && c.PriorRatio <= 1000):
		return fmt.Errorf("calibration.prior_ratio must be in (0, 1000], got %v", c.PriorRatio)
	case c.PriorWeight < 0 || c.PriorWeight > 1_000_000:
		return fmt.Errorf("calibration.prior_weight must be in [0, 1000000], got %d", c.PriorWeight)
	case c.CountCap < 16 || c.CountCap > 1<<24:
		return fmt.Errorf("calibration.count_cap must be in [16, %d], got %d", 1<<24, c.CountCap)
	case c.CacheLifetime < 0:
		return fmt.Errorf("calibration.cache_lifetime must be >= 0, got %s", c.CacheLifetime)
	case c.MinCacheableTokens < 0:
		return fmt.Errorf("calibration.min_cacheable_tokens must be >= 0, got %d", c.MinCacheableTokens)
	case c.TailOverrunBP < 0 || c.TailOverrunBP > 1_000_000:
		return fmt.Errorf("calibration.tail_overrun_bp must be in [0, 1000000], got %d", c.TailOverrunBP)
	case c.MaxSessions < 0 || c.MaxSessions > 10_000_000:
		return fmt.Errorf("calibration.max_sessions must be in [0, 10000000], got %d", c.MaxSessions)
	}
	return nil
}

// calibrator learns, per key (root account, tool, model), how settled
// actuals compare with base estimates, and per session (account) what the
// previous LLM call left in the provider's cache. Memory: one calibStats
// (about 1.4 KiB) and its key strings per key, at most MaxCalibrationKeys
// keys; one small entry per session, at most MaxSessions; at most
// maxPending pending bases and as many recently taught ids.
type calibrator struct {
	cfg   CalibrationConfig
	clock Clock
	store CalibrationStore

	mu   sync.Mutex
	keys map[string]*calibStats // what this host knows (store + local)
	// nameCache maps (root, tool, model) to its key strings.
	nameCache map[keyParts]*keyNames
	deltas    map[string]*calibStats // learned since the last sync (with a store)
	sessions  fifoMap[sessionCall]
	pending   fifoMap[pendingBase]
	// learned are the reservations taught most recently: a repeated commit
	// (a retry after a lost reply) returns the same reservation and must
	// not teach twice.
	learned fifoMap[struct{}]
}

func newCalibrator(cfg CalibrationConfig, clock Clock, store CalibrationStore) *calibrator {
	return &calibrator{cfg: cfg, clock: clock, store: store, keys: map[string]*calibStats{}, nameCache: map[keyParts]*keyNames{},
		deltas: map[string]*calibStats{}, sessions: newFIFOMap[sessionCall](cfg.MaxSessions), pending: newFIFOMap[pendingBase](maxPending),
		learned: newFIFOMap[struct{}](maxPending)}
}

// calibrationKey names what is learned for a (root account, tool, model).
// The root is the account's first name segment (an id "P/x" always lies
// under P).
func calibrationKey(account, tool, model string) string {
	root, _, _ := strings.Cut(account, "/")
	k := "llm|" + root + "|" + tool + "|" + model
	if len(k) > maxStatsKeyLen {
		k = k[:maxStatsKeyLen-17] + "#" + fingerprintEstimate(k)[:16]
	}
	return k
}

// A hold's recorded CalibrationKey is the stats key and its class.
const (
	suffixCached   = "|cached"
	suffixUncached = "|uncached"
	maxStatsKeyLen = MaxCalibrationKeyLen - len(suffixUncached)
)

func calibHoldKey(statsKey string, class int) string {
	if class == classCached {
		return statsKey + suffixCached
	}
	return statsKey + suffixUncached
}

// splitHoldKey undoes calibHoldKey; ok is false for a key it did not make.
func splitHoldKey(k string) (statsKey string, class int, ok bool) {
	if s, found := strings.CutSuffix(k, suffixCached); found {
		return s, classCached, true
	}
	s, found := strings.CutSuffix(k, suffixUncached)
	return s, classUncached, found
}

// calibPlan is what calibration says about one call before it is priced.
type calibPlan struct {
	key       string // the hold's CalibrationKey ("" when disabled)
	scalePPM  int64  // hold = base x scalePPM / 1e6; 0: not calibrated
	tailPPM   int64  // the ratio at tailQuantile: what a call may cost at worst
	quantile  float64
	samples   int64
	prior     bool
	family    bool   // borrowed from the other models of the account and tool
	source    string // the estimate's source when calibrated
	outTokens int64
	outSource string
	cache     cacheNote
}

// cacheNote is the expected cache reads and why (formatted only when an
// estimate is explained, to keep the hot path free of formatting).
type cacheNote struct {
	tokens       int64
	source       string
	prevPrompt   int64 // the session's previous prompt, when known
	sharePPM     int64
	minCacheable int64
}

// Cache sources.
const (
	cacheFromParams  = "params.cache_read_tokens"
	cacheFromSession = "session"
	cacheNoSession   = "none: no recent call in this session"
	cacheTooShort    = "none: the previous prompt is below the minimum cacheable"
)

// keyNames caches a key's strings so a warm estimate allocates none.
type keyNames struct {
	statsKey string
	// familyKey pools every named model of the root account and tool: a
	// model with no samples yet borrows its ratios (a cold start).
	familyKey string
	hold      [calibClasses]string
	memo      [calibClasses]sourceMemo
}

type keyParts struct{ root, tool, model string }

// sourceMemo is the last source string made for a class and its inputs.
type sourceMemo struct {
	scalePPM, samples int64
	quantile          float64
	source            string
}

func (m *sourceMemo) get(p *calibPlan) string {
	if p.family {
		return calibSource(p) // a cold start: rare, not memoised
	}
	if m.source == "" || m.scalePPM != p.scalePPM || m.samples != p.samples || m.quantile != p.quantile {
		*m = sourceMemo{scalePPM: p.scalePPM, samples: p.samples, quantile: p.quantile, source: calibSource(p)}
	}
	return m.source
}

// names returns the key's strings, cached for up to MaxCalibrationKeys keys.
func (c *calibrator) names(account, tool, model string) *keyNames {
	root, _, _ := strings.Cut(account, "/")
	kp := keyParts{root, tool, model}
	if n := c.nameCache[kp]; n != nil {
		return n
	}
	sk := calibrationKey(account, tool, model)
	n := &keyNames{statsKey: sk, familyKey: calibrationKey(account, tool, familyModel), hold: [calibClasses]string{calibHoldKey(sk, classUncached), calibHoldKey(sk, classCached)}}
	if len(c.nameCache) < MaxCalibrationKeys {
		c.nameCache[kp] = n
	}
	return n
}

// plan looks up what is learned for a call of model by account; given is
// params.cache_read_tokens (-1 when absent), which wins over the learned
// cache reads.
func (c *calibrator) plan(account, tool, model string, given int64) calibPlan {
	p := calibPlan{quantile: c.cfg.Quantile}
	c.mu.Lock()
	defer c.mu.Unlock()
	names := c.names(account, tool, model)
	s := c.keys[names.statsKey]
	p.cache = c.expectedCache(account, s)
	if given >= 0 {
		p.cache = cacheNote{tokens: given, source: cacheFromParams}
	}
	if c.cfg.Disabled {
		return p
	}
	class := classUncached
	if model != "" && p.cache.tokens > 0 {
		class = classCached
	}
	p.key = names.hold[class]
	switch fam := c.keys[names.familyKey]; {
	case s != nil && s.count(class) > 0:
		c.scaleFrom(&p, s, class)
	case model != "" && fam != nil && fam.count(class) > 0:
		p.family = true
		c.scaleFrom(&p, fam, class)
	case model != "":
		p.prior, p.scalePPM, p.tailPPM = true, ratioPPM(c.cfg.PriorRatio), ratioPPM(c.cfg.PriorRatio)
	}
	if p.scalePPM > 0 {
		p.source = names.memo[class].get(&p)
	}
	if s != nil && s.outN > 0 {
		p.outTokens, p.outSource = int64((s.outSum+s.outN/2)/s.outN), "learned mean"
	}
	return p
}

// scaleFrom reads the hold's and the tail's ratios from s's class, at the
// quantile corrected by the class's realized misses.
func (c *calibrator) scaleFrom(p *calibPlan, s *calibStats, class int) {
	p.samples = s.count(class)
	p.quantile = s.effectiveQuantile(class, c.cfg.Quantile)
	p.scalePPM = ratioPPM(s.quantile(class, p.quantile, c.cfg.PriorRatio, c.cfg.PriorWeight))
	p.tailPPM = ratioPPM(s.quantile(class, max(p.quantile, tailQuantile), c.cfg.PriorRatio, c.cfg.PriorWeight))
}

// expectedCache is the share of the session's previous prompt that is
// still cached: none past the cache lifetime or below the shortest
// prefix a provider caches.
func (c *calibrator) expectedCache(account string, s *calibStats) cacheNote {
	prev, ok := c.sessions.get(account)
	if !ok || c.clock.Now().Sub(prev.at) > c.cfg.CacheLifetime {
		return cacheNote{source: cacheNoSession}
	}
	n := cacheNote{prevPrompt: prev.promptTokens, minCacheable: c.cfg.MinCacheableTokens, sharePPM: 1_000_000}
	if s != nil && s.minCached > 0 && s.minCached < n.minCacheable {
		n.minCacheable = s.minCached
	}
	if prev.promptTokens < n.minCacheable {
		n.source = cacheTooShort
		return n
	}
	if s != nil && s.cacheN > 0 { // until a share is learned, the whole prefix
		n.sharePPM = int64(s.cacheSharePPM / s.cacheN)
	}
	n.tokens, n.source = prev.promptTokens*n.sharePPM/1_000_000, cacheFromSession
	return n
}

// tailQuantile is where a call's tail is read: a call that cannot extend
// its hold is admitted only if base x this ratio fits the budget. Higher
// protects the limit better and denies sooner.
const tailQuantile = 0.99

// ratioPPM converts a ratio to parts per million, rounding up so a hold
// never loses the quantile's last fraction.
func ratioPPM(r float64) int64 {
	return int64(math.Ceil(min(r, 1e9) * 1e6))
}

// remember keeps a calibrated hold's base until its commit, for a ledger
// that does not record BaseEstimate on the reservation.
func (c *calibrator) remember(id, key string, base Nanos) {
	if key == "" {
		return
	}
	c.mu.Lock()
	c.pending.put(id, pendingBase{key: key, base: base})
	c.mu.Unlock()
}

// learn folds a settled reservation in. Only a charge the caller reported
// (CostActual) teaches: an estimated charge is the hold itself.
func (c *calibrator) learn(r Reservation) {
	if c.cfg.Disabled {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key, base := r.CalibrationKey, r.BaseEstimate
	if pb, ok := c.pending.take(r.ID); ok && key == "" {
		key, base = pb.key, pb.base
	}
	statsKey, class, ok := splitHoldKey(key)
	if !ok || r.State != StateCommitted || r.CostSource != CostActual {
		return
	}
	if _, again := c.learned.get(r.ID); again {
		return
	}
	c.learned.put(r.ID, struct{}{})
	var sample calibStats
	if base > 0 && r.Charged >= 0 {
		sample.add(class, float64(r.Charged)/float64(base))
		sample.holds[class] = 1
		if r.Charged > r.Estimate { // the hold as first placed, before any extension
			sample.misses[class] = 1
		}
	}
	if u := r.Usage; u != nil {
		sample.outSum, sample.outN = uint64(u.OutputTokens), 1
		c.learnCache(&sample, r, *u)
	}
	c.fold(statsKey, &sample)
	if !strings.HasSuffix(statsKey, "|") { // a named model: also the family's
		c.fold(calibrationKey(r.Account, r.Tool, familyModel), &calibStats{bins: sample.bins, n: sample.n})
	}
}

// familyModel names the pool of every model of an account and tool.
const familyModel = "*"

// learnCache records what share of the session's previous prompt this call
// read from the cache, and remembers this prompt for the next call.
func (c *calibrator) learnCache(sample *calibStats, r Reservation, u TokenUsage) {
	if prev, ok := c.sessions.get(r.Account); ok && prev.promptTokens > 0 && r.CreatedAt.Sub(prev.at) <= c.cfg.CacheLifetime {
		share := min(u.CacheReadTokens*1_000_000/prev.promptTokens, 1_000_000)
		sample.cacheSharePPM, sample.cacheN = uint64(share), 1
	}
	if u.CacheReadTokens > 0 {
		sample.minCached = u.CacheReadTokens
	}
	at := r.SettledAt
	if at.IsZero() {
		at = c.clock.Now()
	}
	c.sessions.put(r.Account, sessionCall{promptTokens: u.PromptTokens(), at: at})
}

// fold adds a sample to the key (and to the unsynced deltas when a store
// is configured). A new key past MaxCalibrationKeys is not learned.
func (c *calibrator) fold(key string, sample *calibStats) {
	s := c.keys[key]
	if s == nil {
		if len(c.keys) >= MaxCalibrationKeys {
			return
		}
		s = &calibStats{}
		c.keys[key] = s
	}
	s.merge(sample, c.cfg.CountCap)
	if c.store == nil {
		return
	}
	d := c.deltas[key]
	if d == nil {
		d = &calibStats{}
		c.deltas[key] = d
	}
	d.merge(sample, c.cfg.CountCap)
}

// learn feeds a settled reservation to calibration.
func (e *Enforcer) learn(r Reservation) { e.calib.learn(r) }
