package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Config is purser's whole configuration, read once at the edge (defaults,
// then a YAML file, then PURSER_ environment variables, then flags) and
// validated with every problem reported at once, each with its key path.
type Config struct {
	DataDir     string            `koanf:"data_dir"`
	Server      ServerConfig      `koanf:"server"`
	Store       StoreConfig       `koanf:"store"`
	Pricing     PricingConfig     `koanf:"pricing"`
	Reservation ReservationConfig `koanf:"reservations"`
	Approvals   ApprovalsConfig   `koanf:"approvals"`
	Plugins     PluginsConfig     `koanf:"plugins"`
	Tiers       map[string]string `koanf:"tiers"`
	Accounts    []AccountConfig   `koanf:"accounts"`
	Thresholds  []int             `koanf:"thresholds_pct"`
	Notifier    NotifierConfig    `koanf:"notifier"`
	Auth        AuthConfig        `koanf:"auth"`
	DecisionLog DecisionLogConfig `koanf:"decision_log"`
	Metrics     MetricsConfig     `koanf:"metrics"`
	Log         LogConfig         `koanf:"log"`
	Calibration CalibrationConfig `koanf:"calibration"`
}

type ServerConfig struct {
	Addr            string        `koanf:"addr"`
	BodyBytesMax    int64         `koanf:"body_bytes_max"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// Connection limits: slow or idle clients are cut off, and at most
	// ConnectionsMax connections are served at once (more wait to be accepted).
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	ReadTimeout       time.Duration `koanf:"read_timeout"`
	WriteTimeout      time.Duration `koanf:"write_timeout"`
	IdleTimeout       time.Duration `koanf:"idle_timeout"`
	ConnectionsMax    int           `koanf:"connections_max"`
}

type StoreConfig struct {
	// Kind is "sqlite" (the server default), "memory" or "postgres".
	Kind string `koanf:"kind"`
	// Path of the SQLite file; default <data_dir>/ledger.db.
	Path string `koanf:"path"`
	// DSN of the PostgreSQL database shared by every host (kind postgres):
	// postgres://user:password@host:5432/db?sslmode=verify-full, or
	// PURSER_STORE__DSN so the password stays out of the file.
	DSN string `koanf:"dsn"`
	// PoolConnsMax caps this process's connections to PostgreSQL (default 16).
	PoolConnsMax int `koanf:"pool_conns_max"`
	// StatementTimeout is PostgreSQL's statement_timeout for purser's
	// connections (default 5s).
	StatementTimeout time.Duration `koanf:"statement_timeout"`
	// FailOpen says what happens while PostgreSQL is unreachable; empty
	// means fail closed (the default): calls are refused with the reason.
	FailOpen FailOpenConfig `koanf:"fail_open"`
}

// FailOpenConfig is a bounded fail-open for the PostgreSQL store (see
// DEPLOYMENT.md): while the database is unreachable, this process admits
// calls whose estimate is at most CallUSDMax until it has admitted
// TotalUSDMax in all, holding them in memory; their charges are written to
// the shared ledger when it answers again.
type FailOpenConfig struct {
	CallUSDMax  string `koanf:"call_usd_max"`
	TotalUSDMax string `koanf:"total_usd_max"`
	// JournalPath keeps charges acknowledged during an outage until they
	// are written (default <data_dir>/postgres-failopen.journal).
	JournalPath string `koanf:"journal_path"`
	// JournalEntriesMax bounds that journal (default 100000).
	JournalEntriesMax int `koanf:"journal_entries_max"`
}

type PricingConfig struct {
	Table   map[string]string `koanf:"table"`
	Unknown UnknownConfig     `koanf:"unknown"`
	LLM     LLMConfig         `koanf:"llm"`
}

type UnknownConfig struct {
	BaseUSD string `koanf:"base_usd"`
	Buffer  string `koanf:"buffer"`
	Strict  bool   `koanf:"strict"`
}

type LLMConfig struct {
	Aliases []string `koanf:"aliases"`
	// DefaultUSDPerMTok prices a call that names no model (the seed's
	// rule); a named model is priced by the table.
	DefaultUSDPerMTok string `koanf:"default_usd_per_mtok"`
	MinimumUSD        string `koanf:"minimum_usd"`
	// LiteLLMFile replaces the embedded LiteLLM snapshot; serve re-reads
	// it when it changes.
	LiteLLMFile string `koanf:"litellm_file"`
	// UnknownModel prices names the table does not know: "dearest" (the
	// dearest chat model of the name's provider family) or a model name.
	UnknownModel string `koanf:"unknown_model"`
	// Models price exact model names on top of the table; input and
	// output prices are required.
	Models map[string]ModelConfig `koanf:"models"`
}

type ModelConfig struct {
	InputUSDPerToken        string `koanf:"input_usd_per_token"`
	OutputUSDPerToken       string `koanf:"output_usd_per_token"`
	CacheReadUSDPerToken    string `koanf:"cache_read_usd_per_token"`
	CacheWriteUSDPerToken   string `koanf:"cache_write_usd_per_token"`
	CacheWrite1hUSDPerToken string `koanf:"cache_write_1h_usd_per_token"`
}

type ReservationConfig struct {
	TTL    time.Duration `koanf:"ttl"`
	TTLMax time.Duration `koanf:"ttl_max"`
	// RetainSettled is how long settled ids are remembered (idempotent
	// retries, GET /v1/reservations/{id}); memory grows with calls/s x this.
	RetainSettled time.Duration `koanf:"retain_settled"`
}

type ApprovalsConfig struct {
	TTL        time.Duration `koanf:"ttl"`
	PendingMax int           `koanf:"pending_max"`
}

type PluginsConfig struct {
	Dir                 string         `koanf:"dir"`
	Watch               bool           `koanf:"watch"`
	CompilationCacheDir string         `koanf:"compilation_cache_dir"`
	Limits              LimitsConfig   `koanf:"limits"`
	Entries             []PluginConfig `koanf:"entries"`
	// ReloadManifestChangeAllowed lets a reload change a plugin's manifest
	// name, kind or tools (refused by default).
	ReloadManifestChangeAllowed bool `koanf:"reload_manifest_change_allowed"`
	// EstimatePerCallMaxUSD refuses a plugin estimate above it (the call
	// falls back to the table with the error recorded). Default $1,000.
	EstimatePerCallMaxUSD string `koanf:"estimate_per_call_max_usd"`
	// TrustedKeys and RequireSignature check plugin signatures at load
	// and reload (docs/signing.md).
	TrustedKeys      []TrustedKeyConfig `koanf:"trusted_keys"`
	RequireSignature bool               `koanf:"require_signature"`
	// Bundle loads plugins from a bundle (cmd/purser/bundleserve.go).
	Bundle BundleConfig `koanf:"bundle"`
}

type LimitsConfig struct {
	MemoryPagesMax          uint32        `koanf:"memory_pages_max"`
	CallTimeout             time.Duration `koanf:"call_timeout"`
	InitTimeout             time.Duration `koanf:"init_timeout"`
	InputBytesMax           int           `koanf:"input_bytes_max"`
	OutputBytesMax          int           `koanf:"output_bytes_max"`
	LogBytesPerCallMax      int           `koanf:"log_bytes_per_call_max"`
	InstancesMax            int           `koanf:"instances_max"`
	FailuresBeforeUnhealthy int           `koanf:"failures_before_unhealthy"`
	FuelPerCallMax          int64         `koanf:"fuel_per_call_max"`
	FuelPerInputByte        int64         `koanf:"fuel_per_input_byte"`
	FuelInitMax             int64         `koanf:"fuel_init_max"`
	// Load limits on what a module declares (abi/ABI.md section 7).
	ModuleBytesMax           int `koanf:"module_bytes_max"`
	TableElementsMax         int `koanf:"table_elements_max"`
	TableElementsTotalMax    int `koanf:"table_elements_total_max"`
	GlobalsMax               int `koanf:"globals_max"`
	FunctionsMax             int `koanf:"functions_max"`
	FunctionBodyBytesMax     int `koanf:"function_body_bytes_max"`
	BlockNestingDepthMax     int `koanf:"block_nesting_depth_max"`
	FunctionLocalsMax        int `koanf:"function_locals_max"`
	LocalsTotalMax           int `koanf:"locals_total_max"`
	CodeBytesMax             int `koanf:"code_bytes_max"`
	DataSegmentBytesMax      int `koanf:"data_segment_bytes_max"`
	DataBytesTotalMax        int `koanf:"data_bytes_total_max"`
	ElementSegmentEntriesMax int `koanf:"element_segment_entries_max"`
	ElementEntriesTotalMax   int `koanf:"element_entries_total_max"`
	// Containment (host.Containment; cmd/purser/containment.go).
	PoolWaitMax        time.Duration `koanf:"pool_wait_max"`
	QuarantineMax      time.Duration `koanf:"quarantine_max"`
	LogLinesPerSecond  int           `koanf:"log_lines_per_second"`
	LogLineBytesMax    int           `koanf:"log_line_bytes_max"`
	ReasonBytesMax     int           `koanf:"reason_bytes_max"`
	TenantInstancesMin int           `koanf:"tenant_instances_min"`
}

type PluginConfig struct {
	Path     string         `koanf:"path"`
	SHA256   string         `koanf:"sha256"`
	Config   map[string]any `koanf:"config"`
	Order    int            `koanf:"order"`
	FailMode string         `koanf:"fail_mode"`
	Limits   LimitsConfig   `koanf:"limits"`
	// Isolation: "tenant" (default) or "shared" (host.Isolation).
	Isolation string `koanf:"isolation"`
}

type AccountConfig struct {
	ID              string            `koanf:"id"`
	Parent          string            `koanf:"parent"`
	LimitUSD        string            `koanf:"limit_usd"`
	Tier            string            `koanf:"tier"`
	PercentOfParent int               `koanf:"percent_of_parent"`
	Supervisor      bool              `koanf:"supervisor"`
	Labels          map[string]string `koanf:"labels"`
}

type NotifierConfig struct {
	Log     bool          `koanf:"log"`
	Webhook WebhookConfig `koanf:"webhook"`
}

// WebhookConfig: signed alert POSTs with retries (see docs/webhooks.md).
type WebhookConfig struct {
	URL string `koanf:"url"`
	// Secret keys the HMAC-SHA256 signature; required with a URL
	// (PURSER_NOTIFIER__WEBHOOK__SECRET keeps it out of the file).
	Secret          string        `koanf:"secret"`
	Timeout         time.Duration `koanf:"timeout"` // one attempt
	QueueMax        int           `koanf:"queue_max"`
	AttemptsMax     int           `koanf:"attempts_max"`
	Backoff         time.Duration `koanf:"backoff"`
	BackoffMax      time.Duration `koanf:"backoff_max"`
	DeliveryTimeout time.Duration `koanf:"delivery_timeout"` // every attempt and wait of one alert
}

type AuthConfig struct {
	Tokens []TokenConfig `koanf:"tokens"`
}

type TokenConfig struct {
	Name     string   `koanf:"name"`
	SHA256   string   `koanf:"sha256"`
	Role     string   `koanf:"role"`
	Accounts []string `koanf:"accounts"`
}

type DecisionLogConfig struct {
	Enabled      bool   `koanf:"enabled"`
	Path         string `koanf:"path"`
	FileBytesMax int64  `koanf:"file_bytes_max"`
	Backups      int    `koanf:"backups"`
	QueueMax     int    `koanf:"queue_max"`
	LogParams    bool   `koanf:"log_params"`
}

type MetricsConfig struct {
	Accounts []string `koanf:"accounts"`
}

type LogConfig struct {
	Level string `koanf:"level"`
	JSON  bool   `koanf:"json"`
}

// defaults are the embedded defaults: a loopback server, a SQLite ledger
// in ./purser-data, the shipped plugins when run from the repository.
func defaults() map[string]any {
	return withCalibrationDefaults(map[string]any{
		"data_dir":                          "purser-data",
		"server.addr":                       "127.0.0.1:8181",
		"server.body_bytes_max":             1 << 20,
		"server.shutdown_timeout":           "15s",
		"server.read_header_timeout":        "5s",
		"server.read_timeout":               "30s",
		"server.write_timeout":              "60s",
		"server.idle_timeout":               "60s",
		"server.connections_max":            1024,
		"store.kind":                        "sqlite",
		"pricing.unknown.base_usd":          "0.01",
		"pricing.unknown.buffer":            "1.20",
		"pricing.llm.default_usd_per_mtok":  "0.50",
		"pricing.llm.minimum_usd":           "0.0001",
		"pricing.llm.unknown_model":         "dearest",
		"reservations.ttl":                  "5m",
		"reservations.retain_settled":       "1h",
		"reservations.ttl_max":              "24h",
		"approvals.ttl":                     "10m",
		"approvals.pending_max":             1024,
		"plugins.watch":                     true,
		"plugins.estimate_per_call_max_usd": "1000",
		"plugins.entries":                   defaultPluginEntries(),
		"tiers":                             map[string]any{"LOW": "1", "MEDIUM": "5", "HIGH": "20", "CRITICAL": "100"},
		"thresholds_pct":                    []int{50, 75, 90, 100},
		"notifier.log":                      true,
		"notifier.webhook.timeout":          "5s",
		"notifier.webhook.queue_max":        256,
		"decision_log.enabled":              true,
		"decision_log.file_bytes_max":       64 << 20,
		"decision_log.backups":              5,
		"decision_log.queue_max":            4096,
		"log.level":                         "info",

		// alert webhook retries (docs/webhooks.md)
		"notifier.webhook.attempts_max":     5,
		"notifier.webhook.backoff":          "1s",
		"notifier.webhook.backoff_max":      "30s",
		"notifier.webhook.delivery_timeout": "2m",
	})
}

// defaultPluginEntries are the shipped plugins, found relative to the
// working directory (the repository root); missing files are skipped.
// The llm-tokens estimator is not among them: the built-in LLM rule
// prices LLM calls from the same table without a Wasm call per estimate
// (ARCHITECTURE.md, "One price source").
func defaultPluginEntries() []any {
	return []any{
		map[string]any{"path": "plugins/policies/max-cost-per-call/max-cost-per-call.wasm", "order": 10,
			"config": map[string]any{"limit_usd": "1.00"}},
	}
}

// loadConfig layers defaults, the file (if any), PURSER_ environment
// variables (PURSER_SERVER__ADDR -> server.addr) and flag overrides.
// errConfig marks configuration mistakes (exit status 2).
var errConfig = errors.New("configuration error")

func loadConfig(path string, overrides map[string]any) (*Config, error) {
	cfg, err := loadConfigLayers(path, overrides)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	return cfg, nil
}

func loadConfigLayers(path string, overrides map[string]any) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(defaults(), "."), nil); err != nil {
		return nil, fmt.Errorf("config defaults: %w", err)
	}
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	err := k.Load(env.Provider(".", env.Opt{Prefix: "PURSER_", TransformFunc: envKey}), nil)
	if err != nil {
		return nil, fmt.Errorf("config from environment: %w", err)
	}
	if len(overrides) > 0 {
		if err := k.Load(confmap.Provider(overrides, "."), nil); err != nil {
			return nil, fmt.Errorf("config from flags: %w", err)
		}
	}
	var cfg Config
	dc := &mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.ComposeDecodeHookFunc(durationHook),
		WeaklyTypedInput: true,
		ErrorUnused:      true, // a typo at any depth is an error, not a silently ignored setting
		TagName:          "koanf",
	}
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: dc}); err != nil {
		return nil, decodeProblems(err)
	}
	if err := checkUnknownKeys(k); err != nil {
		return nil, err
	}
	cfg.fillPaths()
	return &cfg, nil
}

// envKey maps PURSER_SERVER__ADDR to server.addr. Variables whose first
// level is not a config section (PURSER_TOKEN for the client,
// PURSER_TEST_POSTGRES_DSN for tests) are not configuration: skipped.
func envKey(key, v string) (string, any) {
	k := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(key, "PURSER_")), "__", ".")
	top, _, _ := strings.Cut(k, ".")
	if !contains(knownTopKeys(), top) {
		return "", nil
	}
	return k, v
}

func (c *Config) fillPaths() {
	if c.Store.Path == "" {
		c.Store.Path = filepath.Join(c.DataDir, "ledger.db")
	}
	if c.DecisionLog.Path == "" {
		c.DecisionLog.Path = filepath.Join(c.DataDir, "decisions.jsonl")
	}
	if c.Plugins.CompilationCacheDir == "" {
		c.Plugins.CompilationCacheDir = filepath.Join(c.DataDir, "wasm-cache")
	}
}

// knownTopKeys are the accepted top-level keys; a typo is an error, not a
// silently ignored setting.
func knownTopKeys() []string {
	return []string{"data_dir", "server", "store", "pricing", "reservations", "approvals", "plugins", "tiers",
		"accounts", "thresholds_pct", "notifier", "auth", "decision_log", "metrics", "log", "calibration"}
}

func checkUnknownKeys(k *koanf.Koanf) error {
	var errs []error
	for _, key := range k.Keys() {
		top, _, _ := strings.Cut(key, ".")
		if !contains(knownTopKeys(), top) {
			errs = append(errs, fmt.Errorf("%s: unknown key (known: %s)", key, strings.Join(sortedCopy(knownTopKeys()), ", ")))
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
