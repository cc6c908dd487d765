// Package config loads Foundry's YAML configuration and applies the
// zero-config environment: OPENAI_API_KEY/OPENAI_BASE_URL and
// ANTHROPIC_API_KEY/ANTHROPIC_BASE_URL register providers; FOUNDRY_ADDR,
// FOUNDRY_DB and FOUNDRY_ADMIN_KEY override the file.
package config

import (
	"cmp"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/foundryhq/foundry/pricing"
)

// Config is the whole configuration. Zero values mean the defaults below.
type Config struct {
	Addr     string `yaml:"addr"`      // listen address; default 127.0.0.1:8080
	DB       string `yaml:"db"`        // store DSN or SQLite path; default ./foundry.db
	AdminKey string `yaml:"admin_key"` // prefer FOUNDRY_ADMIN_KEY in the environment

	Providers []Provider `yaml:"providers"`
	// DefaultProvider receives model names no alias, "provider/" or prefix
	// matches; set automatically when OPENAI_BASE_URL points at a
	// non-OpenAI server (Ollama, vLLM... serve arbitrary names).
	DefaultProvider string `yaml:"default_provider"`
	// Aliases map a model name clients send to "provider/model" or another name.
	Aliases map[string]string `yaml:"aliases"`
	// Fallbacks map a model name to the names to try, in order, when it fails
	// with a retryable error.
	Fallbacks map[string][]string `yaml:"fallbacks"`
	// Prices override or extend the built-in price table (USD per 1M tokens).
	Prices map[string]pricing.Price `yaml:"prices"`

	Limits  Limits  `yaml:"limits"`
	Capture Capture `yaml:"capture"`
	// Retention deletes captured calls older than this (checked hourly); 0 keeps everything.
	Retention time.Duration `yaml:"retention"`
	// Engine serves local models on Foundry's built-in engine.
	Engine Engine `yaml:"engine"`
}

// Engine configures the built-in engine.
type Engine struct {
	// Backend: "" (automatic: a PJRT plugin when installed, else pure Go), "go", "xla:cuda" or "xla:cpu".
	Backend string        `yaml:"backend"`
	Models  []EngineModel `yaml:"models"`
}

// EngineModel is one local model served under Name (also as "engine/<Name>").
type EngineModel struct {
	Name       string `yaml:"name"`        // the model name clients send
	Path       string `yaml:"path"`        // a model directory, or a Hugging Face id ORG/NAME[@rev]
	Slots      int    `yaml:"slots"`       // sequences decoded together; default 4
	MaxContext int    `yaml:"max_context"` // prompt + completion tokens per sequence; default min(model's, 2048)
	// Adapters are LoRA adapters served over this model, each under its own
	// name, sharing its weights and its decode batches.
	Adapters []EngineAdapter `yaml:"adapters"`
	// MaxAdapters is how many adapters the model can hold at once; default
	// 4 when it lists adapters, else 0 (no adapter memory).
	MaxAdapters int `yaml:"max_adapters"`
	// MaxLoRARank is the largest adapter rank it serves; default 64.
	MaxLoRARank int `yaml:"max_lora_rank"`
}

// EngineAdapter is a LoRA adapter served under Name (also as "engine/<Name>").
type EngineAdapter struct {
	Name string `yaml:"name"` // the model name clients send
	Path string `yaml:"path"` // a PEFT adapter directory (adapter_config.json, adapter_model.safetensors)
}

// Provider is one upstream.
type Provider struct {
	Name      string            `yaml:"name"`        // registry name, used in "name/model"
	Type      string            `yaml:"type"`        // "openai" (any compatible server) or "anthropic"; default: Name
	BaseURL   string            `yaml:"base_url"`    //
	APIKey    string            `yaml:"api_key"`     // prefer api_key_env
	APIKeyEnv string            `yaml:"api_key_env"` // environment variable holding the key
	Prefixes  []string          `yaml:"prefixes"`    // model-name prefixes routed here
	Headers   map[string]string `yaml:"headers"`
	Timeouts  Timeouts          `yaml:"timeouts"`
}

// Timeouts of upstream calls.
type Timeouts struct {
	Connect   time.Duration `yaml:"connect"`    // default 10s
	FirstByte time.Duration `yaml:"first_byte"` // default 60s
	Total     time.Duration `yaml:"total"`      // default 10m
}

// Limits of the gateway.
type Limits struct {
	MaxBodyBytes    int64         `yaml:"max_body_bytes"`   // default 16 MiB
	MaxRetries      int           `yaml:"max_retries"`      // per target; default 2 (-1: none)
	RetryBase       time.Duration `yaml:"retry_base"`       // first backoff; default 100ms
	RetryMax        time.Duration `yaml:"retry_max"`        // longest backoff or Retry-After honoured; default 10s
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"` // drain time on SIGTERM; default 30s
}

// Capture tunes the capture queue.
type Capture struct {
	Disabled      bool          `yaml:"disabled"`
	QueueSize     int           `yaml:"queue_size"`     // default 8192
	BatchSize     int           `yaml:"batch_size"`     // default 256
	FlushInterval time.Duration `yaml:"flush_interval"` // default 100ms
	FullWait      time.Duration `yaml:"full_wait"`      // wait on a full queue before spilling; default 20ms
	SpillFile     string        `yaml:"spill_file"`     // default: <db>.spill.jsonl
	TokenCount    *bool         `yaml:"count_tokens"`   // count tokens locally when upstream reports none; default true
}

// Load reads the YAML file at path ("" for none) strictly and applies env
// (os.Getenv when nil) and the defaults.
func Load(path string, env func(string) string) (*Config, error) {
	if env == nil {
		env = os.Getenv
	}
	c := &Config{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := Parse(data, c); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	c.applyEnv(env)
	c.applyDefaults()
	return c, c.Validate()
}

// Parse decodes YAML strictly: unknown fields and wrong types are errors
// with line and column.
func Parse(data []byte, c *Config) error {
	if err := yaml.UnmarshalWithOptions(data, c, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		return fmt.Errorf("%s", yaml.FormatError(err, false, true))
	}
	return nil
}

func (c *Config) provider(name string) *Provider {
	for i := range c.Providers {
		if c.Providers[i].Name == name {
			return &c.Providers[i]
		}
	}
	return nil
}

func (c *Config) applyEnv(env func(string) string) {
	if v := env("FOUNDRY_ADDR"); v != "" {
		c.Addr = v
	}
	if v := env("FOUNDRY_DB"); v != "" {
		c.DB = v
	}
	if v := env("FOUNDRY_ADMIN_KEY"); v != "" {
		c.AdminKey = v
	}
	for _, std := range []struct{ name, keyEnv, urlEnv string }{
		{"openai", "OPENAI_API_KEY", "OPENAI_BASE_URL"},
		{"anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"},
	} {
		key, base := env(std.keyEnv), env(std.urlEnv)
		if key == "" && base == "" {
			continue
		}
		p := c.provider(std.name)
		if p == nil {
			c.Providers = append(c.Providers, Provider{Name: std.name, Type: std.name, APIKeyEnv: std.keyEnv, BaseURL: base})
			if std.name == "openai" && base != "" && !strings.Contains(base, "api.openai.com") && c.DefaultProvider == "" {
				c.DefaultProvider = "openai"
			}
			continue
		}
		if p.BaseURL == "" {
			p.BaseURL = base
		}
		if p.APIKey == "" && p.APIKeyEnv == "" {
			p.APIKeyEnv = std.keyEnv
		}
	}
}

func (c *Config) applyDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DB == "" {
		c.DB = "./foundry.db"
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.Type == "" {
			p.Type = p.Name
		}
		if p.Timeouts.Connect == 0 {
			p.Timeouts.Connect = 10 * time.Second
		}
		if p.Timeouts.FirstByte == 0 {
			p.Timeouts.FirstByte = 60 * time.Second
		}
		if p.Timeouts.Total == 0 {
			p.Timeouts.Total = 10 * time.Minute
		}
	}
	l := &c.Limits
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = 16 << 20
	}
	if l.MaxRetries == 0 {
		l.MaxRetries = 2
	} else if l.MaxRetries < 0 {
		l.MaxRetries = 0
	}
	if l.RetryBase == 0 {
		l.RetryBase = 100 * time.Millisecond
	}
	if l.RetryMax == 0 {
		l.RetryMax = 10 * time.Second
	}
	if l.ShutdownTimeout == 0 {
		l.ShutdownTimeout = 30 * time.Second
	}
	k := &c.Capture
	if k.QueueSize == 0 {
		k.QueueSize = 8192
	}
	if k.BatchSize == 0 {
		k.BatchSize = 256
	}
	if k.FlushInterval == 0 {
		k.FlushInterval = 100 * time.Millisecond
	}
	if k.FullWait == 0 {
		k.FullWait = 20 * time.Millisecond
	}
	if k.SpillFile == "" {
		db := c.DB
		if i := strings.Index(db, "://"); i >= 0 || strings.HasPrefix(db, "postgres") {
			db = "./foundry"
		}
		db = strings.TrimPrefix(db, "sqlite:")
		if i := strings.IndexByte(db, '?'); i >= 0 {
			db = db[:i]
		}
		k.SpillFile = db + ".spill.jsonl"
	}
}

// Validate checks references between sections.
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i, p := range c.Providers {
		if p.Name == "" {
			return fmt.Errorf("providers[%d] has no name", i)
		}
		if seen[p.Name] {
			return fmt.Errorf("provider %q is defined twice", p.Name)
		}
		seen[p.Name] = true
		switch p.Type {
		case "openai", "anthropic":
		default:
			return fmt.Errorf("provider %q has type %q: use \"openai\" (any OpenAI-compatible server) or \"anthropic\"", p.Name, p.Type)
		}
	}
	names := map[string]bool{}
	for i, m := range c.Engine.Models {
		if m.Name == "" || m.Path == "" {
			return fmt.Errorf("engine.models[%d] needs a name (what clients send) and a path (a model directory or ORG/NAME)", i)
		}
		if names[m.Name] {
			return fmt.Errorf("engine model %q is defined twice", m.Name)
		}
		names[m.Name] = true
		if m.Slots < 0 || m.MaxContext < 0 {
			return fmt.Errorf("engine model %q: slots and max_context must be positive", m.Name)
		}
		if m.MaxAdapters < 0 || m.MaxLoRARank < 0 {
			return fmt.Errorf("engine model %q: max_adapters and max_lora_rank must be positive", m.Name)
		}
		if limit := cmp.Or(m.MaxAdapters, 4); len(m.Adapters) > limit {
			return fmt.Errorf("engine model %q lists %d adapters but holds at most %d at once: raise its max_adapters", m.Name, len(m.Adapters), limit)
		}
		for j, a := range m.Adapters {
			if a.Name == "" || a.Path == "" {
				return fmt.Errorf("engine model %q: adapters[%d] needs a name (what clients send) and a path (a PEFT adapter directory)", m.Name, j)
			}
			if names[a.Name] {
				return fmt.Errorf("engine model or adapter %q is defined twice", a.Name)
			}
			names[a.Name] = true
		}
	}
	if seen["engine"] && len(c.Engine.Models) > 0 {
		return fmt.Errorf(`provider name "engine" is reserved for the built-in engine's models; rename that provider`)
	}
	if c.DefaultProvider != "" && !seen[c.DefaultProvider] && c.DefaultProvider != "engine" {
		return fmt.Errorf("default_provider %q is not one of the providers", c.DefaultProvider)
	}
	return nil
}

// Key returns the provider's API key: api_key, else the api_key_env variable.
func (p *Provider) Key(env func(string) string) string {
	if p.APIKey != "" {
		return p.APIKey
	}
	if p.APIKeyEnv != "" {
		if env == nil {
			env = os.Getenv
		}
		return env(p.APIKeyEnv)
	}
	return ""
}
