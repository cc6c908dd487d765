// Package pricing is Foundry's one price table: USD per 1M input and output
// tokens per model, with defaults for common hosted models that a config
// file may override or extend.
package pricing

import (
	"sort"
	"strings"
	"sync"
)

// Price is a model's price in USD per 1M tokens.
type Price struct {
	Input       float64 `yaml:"input" json:"input"`
	Output      float64 `yaml:"output" json:"output"`
	CachedInput float64 `yaml:"cached_input,omitempty" json:"cached_input,omitempty"` // 0: same as Input
}

// Defaults are list prices (USD per 1M tokens) of common hosted models,
// checked in late 2025. Override them in the config's "prices" section.
var Defaults = map[string]Price{
	"gpt-5":                  {1.25, 10, 0.125},
	"gpt-5-mini":             {0.25, 2, 0.025},
	"gpt-5-nano":             {0.05, 0.40, 0.005},
	"gpt-4.1":                {2, 8, 0.5},
	"gpt-4.1-mini":           {0.40, 1.60, 0.10},
	"gpt-4.1-nano":           {0.10, 0.40, 0.025},
	"gpt-4o":                 {2.50, 10, 1.25},
	"gpt-4o-mini":            {0.15, 0.60, 0.075},
	"gpt-4-turbo":            {10, 30, 0},
	"gpt-4":                  {30, 60, 0},
	"gpt-3.5-turbo":          {0.50, 1.50, 0},
	"o1":                     {15, 60, 7.5},
	"o1-mini":                {1.10, 4.40, 0.55},
	"o3":                     {2, 8, 0.5},
	"o3-mini":                {1.10, 4.40, 0.55},
	"o4-mini":                {1.10, 4.40, 0.275},
	"text-embedding-3-small": {0.02, 0, 0},
	"text-embedding-3-large": {0.13, 0, 0},
	"text-embedding-ada-002": {0.10, 0, 0},
	"claude-opus-4-5":        {5, 25, 0.5},
	"claude-opus-4-1":        {15, 75, 1.5},
	"claude-opus-4":          {15, 75, 1.5},
	"claude-sonnet-4-5":      {3, 15, 0.3},
	"claude-sonnet-4":        {3, 15, 0.3},
	"claude-haiku-4-5":       {1, 5, 0.1},
	"claude-3-7-sonnet":      {3, 15, 0.3},
	"claude-3-5-sonnet":      {3, 15, 0.3},
	"claude-3-5-haiku":       {0.80, 4, 0.08},
	"claude-3-opus":          {15, 75, 1.5},
	"claude-3-haiku":         {0.25, 1.25, 0.03},
}

// Table looks prices up by model name. The zero value has no prices; use New.
type Table struct {
	mu     sync.RWMutex
	prices map[string]Price
	keys   []string // longest first, for prefix matching
}

// New returns a table of Defaults with overrides applied on top.
func New(overrides map[string]Price) *Table {
	t := &Table{prices: make(map[string]Price, len(Defaults)+len(overrides))}
	for k, v := range Defaults {
		t.prices[k] = v
	}
	for k, v := range overrides {
		t.prices[k] = v
	}
	t.index()
	return t
}

// Set adds or replaces one model's price.
func (t *Table) Set(model string, p Price) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.prices == nil {
		t.prices = map[string]Price{}
	}
	t.prices[model] = p
	t.index()
}

func (t *Table) index() {
	t.keys = t.keys[:0]
	for k := range t.prices {
		t.keys = append(t.keys, k)
	}
	sort.Slice(t.keys, func(i, j int) bool { return len(t.keys[i]) > len(t.keys[j]) })
}

// Lookup returns the price of model: an exact match, else the same without a
// "provider/" prefix, else the longest known name that model starts with
// followed by "-" (dated snapshots such as "gpt-4o-mini-2024-07-18").
func (t *Table) Lookup(model string) (Price, bool) {
	if t == nil {
		return Price{}, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if p, ok := t.prices[model]; ok {
		return p, true
	}
	if i := strings.IndexByte(model, '/'); i >= 0 {
		if p, ok := t.prices[model[i+1:]]; ok {
			return p, true
		}
		model = model[i+1:]
	}
	for _, k := range t.keys {
		if strings.HasPrefix(model, k) && len(model) > len(k) && (model[len(k)] == '-' || model[len(k)] == '@' || model[len(k)] == ':') {
			return t.prices[k], true
		}
	}
	return Price{}, false
}

// Cost returns the USD cost of a call; ok is false when the model has no price.
// cached is the part of prompt tokens served from the provider's prompt cache.
func (t *Table) Cost(model string, prompt, cached, completion int) (usd float64, ok bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	if cached > prompt {
		cached = prompt
	}
	ci := p.CachedInput
	if ci == 0 {
		ci = p.Input
	}
	return (float64(prompt-cached)*p.Input + float64(cached)*ci + float64(completion)*p.Output) / 1e6, true
}
