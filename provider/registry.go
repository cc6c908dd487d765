package provider

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/foundryhq/foundry/api"
)

// Registry holds the configured providers and resolves a model name to one.
// Resolution order: an alias (exact name, from config), an explicit
// "provider/model", the longest matching model-name prefix, then the
// default provider. It is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex
	providers map[string]Provider
	aliases   map[string]string
	prefixes  []prefixRule
	def       string
}

type prefixRule struct{ prefix, provider string }

// DefaultPrefixes are the model-name prefixes of the hosted providers.
var DefaultPrefixes = map[string][]string{
	"openai":    {"gpt-", "chatgpt-", "o1", "o3", "o4", "text-embedding-", "davinci", "babbage", "omni-", "codex-"},
	"anthropic": {"claude-"},
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{providers: map[string]Provider{}, aliases: map[string]string{}}
}

// Register adds p (replacing one of the same name) and routes models with
// the given name prefixes to it.
func (r *Registry) Register(p Provider, prefixes ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.providers[p.Name()] = p
	for _, pre := range prefixes {
		r.prefixes = append(r.prefixes, prefixRule{pre, p.Name()})
	}
	sort.SliceStable(r.prefixes, func(i, j int) bool { return len(r.prefixes[i].prefix) > len(r.prefixes[j].prefix) })
}

// Alias makes name resolve as target (which may be "provider/model" or another model name).
func (r *Registry) Alias(name, target string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aliases[name] = target
}

// SetDefault names the provider for models no other rule matches ("" for none).
func (r *Registry) SetDefault(provider string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.def = provider
}

// Get returns a provider by name.
func (r *Registry) Get(name string) (Provider, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.providers[name]
	return p, ok
}

// Providers returns the registered providers sorted by name.
func (r *Registry) Providers() []Provider {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Provider, 0, len(r.providers))
	for _, p := range r.providers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// Aliases returns a copy of the alias table.
func (r *Registry) Aliases() map[string]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]string, len(r.aliases))
	for k, v := range r.aliases {
		out[k] = v
	}
	return out
}

// Resolve maps a model name to a provider and the upstream's model name.
// It returns a 404 *api.Error (code model_not_found) that says how to fix it.
func (r *Registry) Resolve(model string) (Target, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	name := model
	for i := 0; i < 8; i++ { // aliases may chain; bounded against cycles
		t, ok := r.aliases[name]
		if !ok {
			break
		}
		name = t
	}
	if i := strings.IndexByte(name, '/'); i > 0 {
		if p, ok := r.providers[name[:i]]; ok && len(name) > i+1 {
			return Target{Provider: p, Model: name[i+1:]}, nil
		}
	}
	for _, rule := range r.prefixes {
		if strings.HasPrefix(name, rule.prefix) {
			if p, ok := r.providers[rule.provider]; ok {
				return Target{Provider: p, Model: name}, nil
			}
		}
	}
	if p, ok := r.providers[r.def]; ok {
		return Target{Provider: p, Model: name}, nil
	}
	names := make([]string, 0, len(r.providers))
	for n := range r.providers {
		names = append(names, n)
	}
	sort.Strings(names)
	hint := "no providers are configured: set OPENAI_API_KEY / OPENAI_BASE_URL or ANTHROPIC_API_KEY, or add providers in the config file"
	if len(names) > 0 {
		hint = fmt.Sprintf("use \"provider/model\" with one of the configured providers (%s), a known prefix (gpt-*, o1*, claude-*...), or an alias from the config file", strings.Join(names, ", "))
	}
	return Target{}, &api.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Param: "model", Code: "model_not_found",
		Message: fmt.Sprintf("the model %q does not resolve to any provider: %s", model, hint)}
}
