// Package anthropic is the provider for Anthropic's Messages API. It
// translates OpenAI chat completions to POST /v1/messages and the answers,
// streamed or not, back to OpenAI's format.
//
// Translation choices, where the two APIs differ:
//   - max_tokens is required by Anthropic: max_completion_tokens, else
//     max_tokens, else Options.DefaultMaxTokens (4096) is sent.
//   - system and developer messages become the top-level system prompt
//     (joined with blank lines); consecutive messages of one role are merged
//     into one turn; tool messages become tool_result blocks of a user turn.
//   - response_format json_object / json_schema have no parameter in the
//     Messages API: an instruction (with the schema) is appended to the
//     system prompt. The output is then JSON by instruction, not by
//     constrained decoding, so clients should still validate it.
//   - n > 1 and logprobs are rejected with a 400 (Anthropic has neither);
//     seed, frequency/presence penalties, logit_bias and other OpenAI-only
//     fields are dropped; top_k and thinking in the request's extra fields
//     are passed on. Message names are dropped.
//   - thinking blocks come back as the message's "reasoning_content"
//     (streamed as delta.reasoning_content); signatures are not kept.
//   - streams always end with a usage chunk (empty choices).
package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
)

// DefaultVersion is the anthropic-version header sent when Options.Version is empty.
const DefaultVersion = "2023-06-01"

// DefaultMaxTokens is the max_tokens sent when a request sets no output limit.
const DefaultMaxTokens = 4096

// Options configure a provider. The zero value talks to api.anthropic.com
// without a key and with the default timeouts.
type Options struct {
	Name    string // registry name; default "anthropic"
	BaseURL string // default "https://api.anthropic.com"; a trailing "/v1" is accepted
	APIKey  string // sent as x-api-key; never logged
	Version string // anthropic-version header; default DefaultVersion
	// Headers are added to every upstream request (e.g. anthropic-beta).
	Headers map[string]string
	// DefaultMaxTokens is max_tokens for requests without max_tokens or
	// max_completion_tokens; default DefaultMaxTokens.
	DefaultMaxTokens int

	ConnectTimeout   time.Duration // TCP+TLS connect; default 10s
	FirstByteTimeout time.Duration // request sent → response headers; default 60s
	TotalTimeout     time.Duration // whole call, streams included; default 10m
	// Client replaces the HTTP client built from the timeouts above (tests).
	Client *http.Client
	// Logger receives debug lines about upstream calls; default slog.Default().
	Logger *slog.Logger
}

// Provider is an Anthropic Messages API upstream. It is safe for concurrent use.
type Provider struct {
	name      string
	base      string
	apiKey    string
	version   string
	headers   map[string]string
	maxTokens int
	total     time.Duration
	client    *http.Client
	log       *slog.Logger
}

// New returns a provider for opts.
func New(opts Options) *Provider {
	p := &Provider{name: opts.Name, base: strings.TrimRight(opts.BaseURL, "/"), apiKey: opts.APIKey, version: opts.Version,
		headers: opts.Headers, maxTokens: opts.DefaultMaxTokens, total: opts.TotalTimeout, client: opts.Client, log: opts.Logger}
	if p.name == "" {
		p.name = "anthropic"
	}
	if p.base == "" {
		p.base = "https://api.anthropic.com"
	}
	p.base = strings.TrimSuffix(p.base, "/v1")
	if p.version == "" {
		p.version = DefaultVersion
	}
	if p.maxTokens <= 0 {
		p.maxTokens = DefaultMaxTokens
	}
	if p.total == 0 {
		p.total = 10 * time.Minute
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.client == nil {
		p.client = provider.NewHTTPClient(opts.ConnectTimeout, opts.FirstByteTimeout)
	}
	return p
}

// Name returns the registry name.
func (p *Provider) Name() string { return p.name }

// Chat makes a non-streaming chat completion.
func (p *Provider) Chat(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
	mr, err := p.toMessagesRequest(req, p.maxTokens)
	if err != nil {
		return nil, err
	}
	var out messagesResponse
	if err := p.roundTrip(ctx, http.MethodPost, "/v1/messages", mr, &out); err != nil {
		return nil, err
	}
	return toChatResponse(&out, time.Now().Unix()), nil
}

// ChatStream starts a streaming chat completion.
func (p *Provider) ChatStream(ctx context.Context, req *api.ChatRequest) (provider.Stream, error) {
	mr, err := p.toMessagesRequest(req, p.maxTokens)
	if err != nil {
		return nil, err
	}
	mr.Stream = true
	resp, cancel, err := p.do(ctx, http.MethodPost, "/v1/messages", mr, true)
	if err != nil {
		return nil, err
	}
	s := newStream(ctx, p.name, resp.Body, cancel, time.Now().Unix())
	// Read up to the first chunk, so that an error event sent right after the
	// 200 (overloaded_error is common) is returned here, where the gateway
	// can still retry or fall back.
	first, err := s.Next()
	if err != nil && err != io.EOF {
		s.Close()
		return nil, err
	}
	s.unread(first)
	return s, nil
}

// Embeddings is not offered by Anthropic.
func (p *Provider) Embeddings(ctx context.Context, req *api.EmbeddingRequest) (*api.EmbeddingResponse, error) {
	return nil, provider.Unsupported(p.name, "embeddings")
}

// modelPage is one page of GET /v1/models.
type modelPage struct {
	Data []struct {
		ID          string    `json:"id"`
		DisplayName string    `json:"display_name"`
		CreatedAt   time.Time `json:"created_at"`
	} `json:"data"`
	HasMore bool   `json:"has_more"`
	LastID  string `json:"last_id"`
}

// Models lists the upstream's models, following pagination.
func (p *Provider) Models(ctx context.Context) ([]api.Model, error) {
	var out []api.Model
	after := ""
	for page := 0; page < 100; page++ { // bounded against an upstream that never ends
		path := "/v1/models?limit=1000"
		if after != "" {
			path += "&after_id=" + url.QueryEscape(after)
		}
		var mp modelPage
		if err := p.roundTrip(ctx, http.MethodGet, path, nil, &mp); err != nil {
			return nil, err
		}
		for _, m := range mp.Data {
			var created int64
			if !m.CreatedAt.IsZero() {
				created = m.CreatedAt.Unix()
			}
			out = append(out, api.Model{ID: m.ID, Object: "model", Created: created, OwnedBy: p.name})
		}
		if !mp.HasMore || mp.LastID == "" || mp.LastID == after {
			break
		}
		after = mp.LastID
	}
	return out, nil
}

// errorFields is the "error" of Anthropic's error body {"type":"error","error":{...}}.
type errorFields struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// do sends body to path and returns the response when its status is 2xx;
// otherwise an *provider.UpstreamError. cancel must be called when done with the body.
func (p *Provider) do(ctx context.Context, method, path string, body any, stream bool) (*http.Response, context.CancelFunc, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.total)
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			cancel()
			return nil, nil, &provider.UpstreamError{Provider: p.name, Status: http.StatusBadRequest, Message: "encode request: " + err.Error()}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("build request to %s: %w", p.name, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("anthropic-version", p.version)
	if p.apiKey != "" {
		req.Header.Set("x-api-key", p.apiKey)
	}
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		cancel()
		p.log.DebugContext(parent, "upstream call failed", "provider", p.name, "path", path, "err", err)
		return nil, nil, p.connErr(parent, err)
	}
	p.log.DebugContext(parent, "upstream answered", "provider", p.name, "path", path, "status", resp.StatusCode,
		"request_id", resp.Header.Get("request-id"), "elapsed", time.Since(start))
	if resp.StatusCode/100 != 2 {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, nil, p.statusErr(resp, b)
	}
	return resp, cancel, nil
}

// statusErr turns a non-2xx answer into an *provider.UpstreamError.
func (p *Provider) statusErr(resp *http.Response, body []byte) error {
	ue := &provider.UpstreamError{Provider: p.name, Status: resp.StatusCode,
		RetryAfter: provider.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var eb struct {
		Error *errorFields `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil {
		ue.Type, ue.Message = eb.Error.Type, eb.Error.Message
	} else if e, ok := api.ParseError(resp.StatusCode, body); ok { // an OpenAI-style proxy in front
		ue.Message, ue.Type, ue.Code = e.Message, e.Type, e.Code
	} else {
		ue.Message = truncate(strings.TrimSpace(string(body)), 500)
	}
	if ue.Message == "" {
		ue.Message = http.StatusText(resp.StatusCode)
	}
	return ue
}

// connErr classifies a transport error; ctx is the caller's context.
func (p *Provider) connErr(ctx context.Context, err error) error {
	return provider.ConnError(ctx, p.name, err)
}

func (p *Provider) roundTrip(ctx context.Context, method, path string, body, out any) error {
	resp, cancel, err := p.do(ctx, method, path, body, false)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return p.connErr(ctx, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &provider.UpstreamError{Provider: p.name, Status: http.StatusBadGateway, Message: "upstream answered with invalid JSON: " + err.Error()}
	}
	return nil
}
