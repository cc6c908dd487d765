// Package openai is the provider for OpenAI and any OpenAI-compatible server
// (Together, Groq, vLLM, Ollama, llama.cpp server...). Requests are passed
// through faithfully: fields Foundry does not know travel in api.Extra.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
)

// Options configure a provider. The zero value talks to api.openai.com
// without a key and with the default timeouts.
type Options struct {
	Name    string // registry name; default "openai"
	BaseURL string // e.g. "https://api.openai.com/v1" (the default) or "http://127.0.0.1:11434/v1"
	APIKey  string // sent as "Authorization: Bearer"; never logged
	// Headers are added to every upstream request (e.g. OpenAI-Organization).
	Headers map[string]string

	ConnectTimeout   time.Duration // TCP+TLS connect; default 10s
	FirstByteTimeout time.Duration // request sent → response headers; default 60s
	TotalTimeout     time.Duration // whole call, streams included; default 10m
	// Client replaces the HTTP client built from the timeouts above (tests).
	Client *http.Client
}

// Provider is an OpenAI-compatible upstream.
type Provider struct {
	name    string
	base    string
	auth    string
	headers map[string]string
	total   time.Duration
	client  *http.Client
}

// New returns a provider for opts.
func New(opts Options) *Provider {
	p := &Provider{name: opts.Name, base: strings.TrimRight(opts.BaseURL, "/"), headers: opts.Headers, total: opts.TotalTimeout, client: opts.Client}
	if p.name == "" {
		p.name = "openai"
	}
	if p.base == "" {
		p.base = "https://api.openai.com/v1"
	}
	if opts.APIKey != "" {
		p.auth = "Bearer " + opts.APIKey
	}
	if p.total == 0 {
		p.total = 10 * time.Minute
	}
	if p.client == nil {
		p.client = provider.NewHTTPClient(opts.ConnectTimeout, opts.FirstByteTimeout)
	}
	return p
}

// Name returns the registry name.
func (p *Provider) Name() string { return p.name }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// do sends body to path and returns the response when its status is 2xx;
// otherwise an *provider.UpstreamError. cancel must be called when done with the body.
func (p *Provider) do(ctx context.Context, method, path string, body any, stream bool) (*http.Response, context.CancelFunc, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.total)
	var rd io.Reader
	var buf *bytes.Buffer
	if body != nil {
		buf = bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		if err := json.NewEncoder(buf).Encode(body); err != nil {
			cancel()
			bufPool.Put(buf)
			return nil, nil, &provider.UpstreamError{Provider: p.name, Status: http.StatusBadRequest, Message: "encode request: " + err.Error()}
		}
		rd = bytes.NewReader(buf.Bytes())
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
	if p.auth != "" {
		req.Header.Set("Authorization", p.auth)
	}
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if buf != nil {
		bufPool.Put(buf) // the transport has consumed the body once Do returns
	}
	if err != nil {
		cancel()
		return nil, nil, p.connErr(parent, err)
	}
	if resp.StatusCode/100 != 2 {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		ue := &provider.UpstreamError{Provider: p.name, Status: resp.StatusCode,
			RetryAfter: provider.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
		if e, ok := api.ParseError(resp.StatusCode, b); ok {
			ue.Message, ue.Type, ue.Code = e.Message, e.Type, e.Code
		} else {
			ue.Message = strings.TrimSpace(string(b))
			if len(ue.Message) > 500 {
				ue.Message = ue.Message[:500] + "..."
			}
			if ue.Message == "" {
				ue.Message = http.StatusText(resp.StatusCode)
			}
		}
		return nil, nil, ue
	}
	return resp, cancel, nil
}

// connErr classifies a transport error; ctx is the caller's context.
func (p *Provider) connErr(ctx context.Context, err error) error {
	return provider.ConnError(ctx, p.name, err)
}

// Chat makes a non-streaming chat completion.
func (p *Provider) Chat(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
	r := *req
	r.Stream, r.StreamOptions = false, nil
	var out api.ChatResponse
	if err := p.roundTrip(ctx, http.MethodPost, "/chat/completions", &r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Embeddings computes embeddings.
func (p *Provider) Embeddings(ctx context.Context, req *api.EmbeddingRequest) (*api.EmbeddingResponse, error) {
	var out api.EmbeddingResponse
	if err := p.roundTrip(ctx, http.MethodPost, "/embeddings", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Models lists the upstream's models.
func (p *Provider) Models(ctx context.Context) ([]api.Model, error) {
	var out api.ModelList
	if err := p.roundTrip(ctx, http.MethodGet, "/models", nil, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

func (p *Provider) roundTrip(ctx context.Context, method, path string, body, out any) error {
	resp, cancel, err := p.do(ctx, method, path, body, false)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return p.connErr(ctx, err)
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		return &provider.UpstreamError{Provider: p.name, Status: http.StatusBadGateway, Message: "upstream answered with invalid JSON: " + err.Error()}
	}
	return nil
}

// ChatStream starts a streaming chat completion.
func (p *Provider) ChatStream(ctx context.Context, req *api.ChatRequest) (provider.Stream, error) {
	r := *req
	r.Stream = true
	resp, cancel, err := p.do(ctx, http.MethodPost, "/chat/completions", &r, true)
	if err != nil {
		return nil, err
	}
	return &stream{p: p, ctx: ctx, resp: resp, cancel: cancel, sse: api.NewSSEReader(resp.Body)}, nil
}

type stream struct {
	p      *Provider
	ctx    context.Context
	resp   *http.Response
	cancel context.CancelFunc
	sse    *api.SSEReader
	done   bool
}

// Next returns the next chunk; io.EOF after "[DONE]" or a clean end.
func (s *stream) Next() (*api.ChatChunk, error) {
	if s.done {
		return nil, io.EOF
	}
	for {
		ev, err := s.sse.Next()
		if err == io.EOF {
			s.done = true
			return nil, io.EOF
		}
		if err != nil {
			s.done = true
			if s.ctx.Err() != nil && errors.Is(s.ctx.Err(), context.Canceled) {
				return nil, s.ctx.Err()
			}
			return nil, &provider.UpstreamError{Provider: s.p.name, Message: "stream broke: " + err.Error(), Err: err}
		}
		if api.IsDone(ev.Data) {
			s.done = true
			return nil, io.EOF
		}
		if ev.Name == "error" || bytes.HasPrefix(bytes.TrimSpace(ev.Data), []byte(`{"error"`)) {
			s.done = true
			ue := &provider.UpstreamError{Provider: s.p.name, Status: http.StatusBadGateway, Message: string(ev.Data)}
			if e, ok := api.ParseError(0, ev.Data); ok {
				ue.Message, ue.Type, ue.Code = e.Message, e.Type, e.Code
			}
			return nil, ue
		}
		var c api.ChatChunk
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			s.done = true
			return nil, &provider.UpstreamError{Provider: s.p.name, Status: http.StatusBadGateway, Message: "upstream sent an invalid stream chunk: " + err.Error()}
		}
		return &c, nil
	}
}

// Close aborts or releases the stream.
func (s *stream) Close() error {
	s.done = true
	s.cancel()
	return s.resp.Body.Close()
}
