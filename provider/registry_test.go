package provider

import (
	"context"
	"testing"
	"time"

	"github.com/foundryhq/foundry/api"
)

type named string

func (n named) Name() string { return string(n) }
func (n named) Chat(context.Context, *api.ChatRequest) (*api.ChatResponse, error) {
	return nil, nil
}
func (n named) ChatStream(context.Context, *api.ChatRequest) (Stream, error) { return nil, nil }
func (n named) Embeddings(context.Context, *api.EmbeddingRequest) (*api.EmbeddingResponse, error) {
	return nil, nil
}
func (n named) Models(context.Context) ([]api.Model, error) { return nil, nil }

func TestResolve(t *testing.T) {
	r := NewRegistry()
	r.Register(named("openai"), DefaultPrefixes["openai"]...)
	r.Register(named("anthropic"), DefaultPrefixes["anthropic"]...)
	r.Register(named("engine"))
	r.Alias("support-bot", "engine/qwen-0.5b+support-v3")
	r.Alias("fast", "gpt-4o-mini")
	cases := []struct{ in, prov, model string }{
		{"gpt-4o-mini", "openai", "gpt-4o-mini"},
		{"o3-mini", "openai", "o3-mini"},
		{"text-embedding-3-small", "openai", "text-embedding-3-small"},
		{"claude-3-5-haiku-latest", "anthropic", "claude-3-5-haiku-latest"},
		{"anthropic/claude-x", "anthropic", "claude-x"},
		{"openai/meta-llama/Llama-3-8b", "openai", "meta-llama/Llama-3-8b"},
		{"support-bot", "engine", "qwen-0.5b+support-v3"},
		{"fast", "openai", "gpt-4o-mini"},
	}
	for _, c := range cases {
		got, err := r.Resolve(c.in)
		if err != nil || got.Provider.Name() != c.prov || got.Model != c.model {
			t.Errorf("Resolve(%q) = %v/%q, %v; want %s/%s", c.in, got.Provider, got.Model, err, c.prov, c.model)
		}
	}
	if _, err := r.Resolve("llama3.2"); err == nil || api.AsError(err).Status != 404 {
		t.Fatalf("unknown model: %v", err)
	}
	r.SetDefault("openai")
	if got, err := r.Resolve("meta-llama/Llama-3-8b"); err != nil || got.Provider.Name() != "openai" || got.Model != "meta-llama/Llama-3-8b" {
		t.Fatalf("default: %v %v", got, err)
	}
}

func TestUpstreamErrorMapping(t *testing.T) {
	cases := []struct {
		e         UpstreamError
		status    int
		retryable bool
	}{
		{UpstreamError{Status: 429, RetryAfter: 1500 * time.Millisecond}, 429, true},
		{UpstreamError{Status: 500}, 502, true},
		{UpstreamError{Status: 401}, 502, false},
		{UpstreamError{Status: 400}, 400, false},
		{UpstreamError{Timeout: true}, 504, true},
		{UpstreamError{}, 502, true},
	}
	for _, c := range cases {
		ae := c.e.APIError()
		if ae.Status != c.status || c.e.Retryable() != c.retryable {
			t.Errorf("%+v: status %d retryable %v", c.e, ae.Status, c.e.Retryable())
		}
	}
	if got := (&UpstreamError{Status: 429, RetryAfter: 1500 * time.Millisecond}).APIError().RetryAfter; got != 2 {
		t.Errorf("retry-after rounds up: %d", got)
	}
	now := time.Now()
	if d := ParseRetryAfter("2", now); d != 2*time.Second {
		t.Errorf("ParseRetryAfter = %v", d)
	}
}
