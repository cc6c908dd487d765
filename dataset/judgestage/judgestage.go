// Package judgestage implements the dataset spec's judge: and best_of_n:
// plug-in stages with package judge, calling the judge and teacher models
// through an OpenAI-compatible endpoint (the gateway, so the calls are
// captured and priced like all traffic).
//
//	judge: {model: gpt-4o-mini, rubric: "...", min_score: 7, concurrency: 8}
//	judge: {model: gpt-4o, mode: pairwise, against: gpt-4o-mini, keep: win_or_tie}
//	best_of_n: {model: gpt-4o, n: 4, temperature: 0.8, bar: 8, only_if_below: 7}
//	best_of_n: {model: gpt-4o, n: 4, select: pairwise}   # tournament; replaces answers the winner beats
//
// Verdicts and teacher samples are cached by content hash in a SQLite file
// (DataDir/judge-cache.db by default), and so are a pairwise judge's
// reference answers, so a build that failed part-way (an
// upstream error, an interrupt) resumes when run again without paying for
// any finished call.
//
// Judge calls carry X-Foundry-Tags "judge,dataset" and teacher calls
// "teacher,dataset"; the gateway captures them like any call, and a store
// selection skips them (dataset.CurationTags) unless it asks for the tag.
package judgestage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/goccy/go-yaml"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/pricing"
)

// Options are what the plug-ins need besides their spec sections.
type Options struct {
	// BaseURL is the OpenAI-compatible endpoint (ending in /v1) judge and
	// teacher calls go to unless a section names base_url: the gateway.
	BaseURL string
	// APIKey is sent to BaseURL as the Bearer token ("" sends none).
	APIKey string
	// DataDir holds the default cache file, judge-cache.db (default
	// dataset.DefaultDataDir).
	DataDir string
	Prices  *pricing.Table // nil: pricing.New(nil)
	Client  *http.Client   // nil: one for the build that keeps up to 256 idle connections to a host
	Logger  *slog.Logger   // nil: discards

	caches *caches // the build's open cache files (set by Plugins)
}

// JudgeConfig is the spec's judge: section.
type JudgeConfig struct {
	Model       string `yaml:"model"`       // the judge model (required)
	Rubric      string `yaml:"rubric"`      // what a good answer is; "" is a generic helpfulness rubric
	MinScore    int    `yaml:"min_score"`   // drop rows scored below this (1-10); 0 scores without dropping
	Concurrency int    `yaml:"concurrency"` // judge calls in flight (default 8)
	BaseURL     string `yaml:"base_url"`    // default: Options.BaseURL (the local gateway)
	APIKeyEnv   string `yaml:"api_key_env"` // environment variable holding the key for base_url (default: Options.APIKey)
	Cache       string `yaml:"cache"`       // cache file (default DATA_DIR/judge-cache.db)
	MaxTokens   int    `yaml:"max_tokens"`  // max_tokens of a verdict; 0 sends none
	Seed        int64  `yaml:"seed"`        // sent with every judge call

	// Mode is "pointwise" (the default: a 1-10 score per row, min_score
	// drops) or "pairwise": the Against model answers each row's prompt and
	// the judge compares the row's answer with it, twice with the positions
	// swapped; rows are kept by Keep. A pairwise judge sets no
	// Meta.JudgeScore (best_of_n's only_if_below then resamples every row).
	Mode    string `yaml:"mode"`
	Against string `yaml:"against"` // pairwise: the reference model (required)
	// Keep is which pairwise outcomes keep a row: "win" (the default: the
	// row's answer must beat the reference in both orders) or "win_or_tie".
	Keep string `yaml:"keep"`
}

// Judge modes and pairwise keep rules.
const (
	ModePointwise = "pointwise"
	ModePairwise  = "pairwise"
	KeepWin       = "win"
	KeepWinOrTie  = "win_or_tie"
)

// BestOfNConfig is the spec's best_of_n: section.
type BestOfNConfig struct {
	Model       string  `yaml:"model"`       // the teacher model (required)
	N           int     `yaml:"n"`           // samples per prompt (default 4)
	Temperature float64 `yaml:"temperature"` // default 1
	Bar         int     `yaml:"bar"`         // least judge score a replacement must have (default 7)
	Rubric      string  `yaml:"rubric"`      // default: the judge: section's rubric
	// OnlyIfBelow resamples only rows whose judge score (from the judge:
	// stage) is below it, and rows without a score; 0 resamples every row.
	OnlyIfBelow int `yaml:"only_if_below"`
	// JudgeModel scores the samples (default: the judge: section's model).
	JudgeModel string `yaml:"judge_model"`
	// OneRequestPerSample sends n requests instead of one with n=N, for
	// upstreams that reject or ignore n.
	OneRequestPerSample bool `yaml:"one_request_per_sample"`
	// Select is how the best sample is chosen: "score" (the default: the
	// judge scores each sample; the best must clear bar) or "pairwise": a
	// tournament of position-swapped comparisons picks the best sample,
	// which replaces the row's answer only if it beats it the same way
	// (rows without an answer take it). bar does not apply to pairwise.
	Select      string `yaml:"select"`
	Concurrency int    `yaml:"concurrency"` // prompts in flight (default 4)
	BaseURL     string `yaml:"base_url"`
	APIKeyEnv   string `yaml:"api_key_env"`
	Cache       string `yaml:"cache"`
	MaxTokens   int    `yaml:"max_tokens"`
	Seed        int64  `yaml:"seed"`
}

// Best-of-n selections.
const (
	SelectScore    = "score"
	SelectPairwise = "pairwise"
)

// Drop reasons and counters of the stages.
const (
	ReasonGarbage  = "judge answered garbage"
	ReasonNoAnswer = "no assistant answer to judge"

	CounterCalls        = "judge calls"
	CounterCost         = "judge cost micro-USD"
	CounterCacheHits    = "judge cache hits"
	CounterUnpriced     = "judge unpriced calls"
	CounterWins         = "wins"
	CounterTies         = "ties"
	CounterLosses       = "losses"
	CounterInconsistent = "inconsistent (position bias)"
	CounterRefCalls     = "reference calls"
	CounterRefCost      = "reference cost micro-USD"
	CounterRefCacheHits = "reference cache hits"
	CounterTeacherCalls = "teacher calls"
	CounterTeacherCost  = "teacher cost micro-USD"
	CounterReplaced     = "replaced"
	CounterKept         = "kept"
	CounterRejected     = "rejected"
	CounterGarbage      = "judge garbage samples"
)

// ReasonBelow is the judge stage's drop reason for rows scored under min.
func ReasonBelow(min int) string { return fmt.Sprintf("judge score < %d", min) }

// ReasonLost is the pairwise judge's drop reason for rows whose answer lost
// to the reference model's.
func ReasonLost(against string) string { return "lost to " + against }

// ReasonTied is the pairwise judge's drop reason, under keep: win, for rows
// whose answer tied with the reference model's (or the two orders disagreed).
func ReasonTied(against string) string { return "tied with " + against }

// Plugins returns the judge and best_of_n plug-ins for one
// dataset.Build. The best_of_n stage takes its judge model and rubric from
// the judge: section of the same spec when it names none.
func Plugins(o Options) map[string]dataset.Plugin {
	if o.DataDir == "" {
		o.DataDir = dataset.DefaultDataDir
	}
	if o.Prices == nil {
		o.Prices = pricing.New(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		// Judge and teacher calls go up to `concurrency` at a time to one
		// host: keep that many connections open between calls (the default
		// keeps 2, so most calls would open a new one, a TLS handshake each).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		o.Client = &http.Client{Transport: t}
	}
	o.caches = &caches{}
	var (
		mu   sync.Mutex
		last *JudgeConfig // the judge: section of the spec being built
	)
	return map[string]dataset.Plugin{
		"judge": func(ctx context.Context, config any) (dataset.Stage, error) {
			var c JudgeConfig
			if err := decode(config, &c); err != nil {
				return nil, err
			}
			st, err := newJudgeStage(o, c)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			last = &c
			mu.Unlock()
			return st, nil
		},
		"best_of_n": func(ctx context.Context, config any) (dataset.Stage, error) {
			var c BestOfNConfig
			if err := decode(config, &c); err != nil {
				return nil, err
			}
			mu.Lock()
			j := last
			mu.Unlock()
			if j != nil {
				if c.JudgeModel == "" {
					c.JudgeModel = j.Model
				}
				if c.Rubric == "" {
					c.Rubric = j.Rubric
				}
			}
			return newBestOfNStage(o, c)
		},
	}
}

// decode turns a decoded YAML section into c, strictly, so a misspelt
// field is an error rather than a default.
func decode(config any, c any) error {
	b, err := yaml.Marshal(config)
	if err != nil {
		return fmt.Errorf("encode section: %w", err)
	}
	if err := yaml.UnmarshalWithOptions(b, c, yaml.Strict()); err != nil {
		return errors.New(yaml.FormatError(err, false, true))
	}
	return nil
}

// endpoint is where one stage's calls go.
type endpoint struct {
	url, key, cache string
}

func (o Options) endpoint(baseURL, keyEnv, cache string) (endpoint, error) {
	e := endpoint{url: o.BaseURL, key: o.APIKey, cache: cache}
	if baseURL != "" {
		e.url = baseURL
	}
	if keyEnv != "" {
		e.key = os.Getenv(keyEnv)
		if e.key == "" {
			return e, fmt.Errorf("api_key_env: %s is not set in the environment", keyEnv)
		}
	}
	if e.url == "" {
		return e, errors.New("base_url: no endpoint for judge calls (run the gateway, or name an OpenAI-compatible base_url ending in /v1)")
	}
	if e.cache == "" {
		e.cache = filepath.Join(o.DataDir, "judge-cache.db")
	}
	return e, nil
}

func (o Options) chatter(e endpoint, tags string) *judge.HTTP {
	h := judge.NewHTTP(e.url, e.key)
	h.Tags, h.Client = tags, o.Client
	return h
}

// openCache opens the cache file, creating its directory.
func openCache(path string) (*judge.SQLiteCache, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("judge cache: %w", err)
	}
	return judge.OpenCache(path)
}

// caches shares one open cache per file between the stages of a build
// (judge: and best_of_n: use the same file by default), so a build holds one
// connection to it instead of two racing to set it up.
type caches struct {
	mu   sync.Mutex
	open map[string]*sharedCache
}

type sharedCache struct {
	c     *judge.SQLiteCache
	users int
}

// get opens path, or returns the build's open cache of it, with the
// function that releases it: the last release closes the file. On a nil
// caches (Options not made by Plugins) each call opens its own.
func (cs *caches) get(path string) (*judge.SQLiteCache, func(), error) {
	if cs == nil {
		c, err := openCache(path)
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Close() }, nil
	}
	key, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("judge cache: %w", err)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	sc := cs.open[key]
	if sc == nil {
		c, err := openCache(path)
		if err != nil {
			return nil, nil, err
		}
		sc = &sharedCache{c: c}
		if cs.open == nil {
			cs.open = map[string]*sharedCache{}
		}
		cs.open[key] = sc
	}
	sc.users++
	var once sync.Once
	return sc.c, func() {
		once.Do(func() {
			cs.mu.Lock()
			defer cs.mu.Unlock()
			if sc.users--; sc.users == 0 {
				sc.c.Close()
				delete(cs.open, key)
			}
		})
	}, nil
}

// micro converts dollars to the funnel's integer micro-dollars.
func micro(usd float64) int64 { return int64(math.Round(usd * 1e6)) }

// conversation splits an example into the messages before its answer and
// the answer; ok is false when the last message is not an assistant's.
func conversation(ex *dataset.Example) (prompt []api.Message, answer api.Message, ok bool) {
	a := ex.Answer()
	if a == nil {
		return ex.Messages, api.Message{}, false
	}
	return ex.Messages[:len(ex.Messages)-1], *a, true
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
