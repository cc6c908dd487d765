// Package engine is the provider that serves chat completions from local
// models on Foundry's built-in engine: it renders the messages with the
// model's chat template, encodes them with its tokenizer, generates on an
// engine.Engine (continuous batching over the model's slots) and answers in
// OpenAI's format, streaming or not.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/foundryhq/foundry/api"
	core "github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/tokenizer"
	"github.com/foundryhq/foundry/train/lora"
)

// Model is one local model the provider serves: a base model, or a LoRA
// adapter over one (then it shares the base's Engine and Tokenizer).
type Model struct {
	// Name is the model name clients send.
	Name      string
	Engine    *core.Engine
	Tokenizer *tokenizer.Tokenizer
	// Adapter is the LoRA adapter's index in the Engine (0: the base model).
	Adapter int
	// Created is reported by /v1/models (Unix seconds).
	Created int64
}

// Options configure a Provider.
type Options struct {
	Name   string // registry name; default "engine"
	Models []Model
}

// Provider serves chat completions from local models. It is safe for concurrent use.
type Provider struct {
	name string

	mu     sync.RWMutex
	models map[string]Model
}

var _ provider.Provider = (*Provider)(nil)

// New returns a provider serving opts.Models.
func New(opts Options) (*Provider, error) {
	p := &Provider{name: opts.Name, models: map[string]Model{}}
	if p.name == "" {
		p.name = "engine"
	}
	for _, m := range opts.Models {
		if m.Name == "" || m.Engine == nil || m.Tokenizer == nil {
			return nil, fmt.Errorf("engine provider: model %q needs a name, an engine and a tokenizer", m.Name)
		}
		if _, dup := p.models[m.Name]; dup {
			return nil, fmt.Errorf("engine provider: model %q is listed twice", m.Name)
		}
		p.models[m.Name] = m
	}
	return p, nil
}

// LoadOptions configure Load.
type LoadOptions struct {
	Runner core.RunnerOptions
	Logger *slog.Logger
	// Warmup compiles every bucket's graphs before serving (worth it on XLA).
	Warmup bool
}

// Load opens the model directory dir (config.json, safetensors,
// tokenizer.json, tokenizer_config.json with its chat template) and starts
// an engine for it on b, served as name. Close the returned Engine when done.
func Load(ctx context.Context, b *core.Backend, name, dir string, opts LoadOptions) (Model, error) {
	m, err := model.Load(dir)
	if err != nil {
		return Model{}, err
	}
	defer m.Close()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return Model{}, err
	}
	if tok.VocabSize() > m.Config.VocabSize {
		return Model{}, fmt.Errorf("load %s: the tokenizer has %d tokens but the model's vocabulary is %d (are they from the same model?)", dir, tok.VocabSize(), m.Config.VocabSize)
	}
	r, err := core.NewRunner(ctx, b, m, opts.Runner)
	if err != nil {
		return Model{}, err
	}
	if opts.Warmup {
		if err := r.Warmup(ctx); err != nil {
			return Model{}, fmt.Errorf("load %s: %w", dir, err)
		}
	}
	eng := core.New(r, core.Options{Detokenizer: Detokenizer(tok), EOS: StopIDs(m.Config, tok), Logger: opts.Logger})
	return Model{Name: name, Engine: eng, Tokenizer: tok, Created: time.Now().Unix()}, nil
}

// LoadAdapter loads the PEFT LoRA adapter in dir into base's engine and
// returns it as a model named name, sharing base's weights and batches.
// The engine must have been loaded with room for it (RunnerOptions.MaxAdapters).
func LoadAdapter(base Model, name, dir string) (Model, error) {
	a, err := lora.LoadAdapter(dir, base.Engine.Runner().Config())
	if err != nil {
		return Model{}, fmt.Errorf("adapter %q over %q: %w", name, base.Name, err)
	}
	i, err := base.Engine.LoadAdapter(name, a)
	if err != nil {
		return Model{}, fmt.Errorf("adapter %q over %q: %w", name, base.Name, err)
	}
	return Model{Name: name, Engine: base.Engine, Tokenizer: base.Tokenizer, Adapter: i, Created: time.Now().Unix()}, nil
}

// AddAdapter loads the PEFT LoRA adapter in dir over the served base model
// named base and serves it as name, without a restart: it shares the base's
// weights and decode batches.
func (p *Provider) AddAdapter(base, name, dir string) error {
	p.mu.RLock()
	b, ok := p.models[base]
	_, taken := p.models[name]
	p.mu.RUnlock()
	switch {
	case !ok:
		return fmt.Errorf("adapter %q: no engine model %q to put it on (serving %v)", name, base, p.names())
	case b.Adapter != 0:
		return fmt.Errorf("adapter %q: %q is itself an adapter; put it on a base model", name, base)
	case taken || name == "":
		return fmt.Errorf("adapter %q: the engine already serves a model of that name; pick another", name)
	}
	m, err := LoadAdapter(b, name, dir)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, taken := p.models[name]; taken { // added meanwhile
		_ = m.Engine.UnloadAdapter(name)
		return fmt.Errorf("adapter %q: the engine already serves a model of that name; pick another", name)
	}
	p.models[name] = m
	return nil
}

// RemoveAdapter stops serving the adapter name and unloads it from its
// base's engine; its requests in flight fail.
func (p *Provider) RemoveAdapter(name string) error {
	p.mu.Lock()
	m, ok := p.models[name]
	if !ok || m.Adapter == 0 {
		p.mu.Unlock()
		return fmt.Errorf("remove adapter %q: the engine serves no adapter of that name", name)
	}
	delete(p.models, name)
	p.mu.Unlock()
	return m.Engine.UnloadAdapter(name)
}

// Detokenizer adapts a tokenizer to the engine, skipping special tokens.
func Detokenizer(tok *tokenizer.Tokenizer) core.Detokenizer {
	return core.DecodeFunc(func(ids []int32) (string, error) {
		return tok.Decode(ints(ids), true), nil
	})
}

// StopIDs are the model's end-of-sequence ids and the tokenizer's stop ids
// (tokenizer_config.json, generation_config.json).
func StopIDs(cfg model.Config, tok *tokenizer.Tokenizer) []int32 {
	var out []int32
	seen := map[int]bool{}
	for _, id := range append(append([]int(nil), cfg.EOSTokenIDs...), tok.StopIDs()...) {
		if !seen[id] {
			seen[id] = true
			out = append(out, int32(id))
		}
	}
	return out
}

// Name returns the registry name.
func (p *Provider) Name() string { return p.name }

// Models lists the served models.
func (p *Provider) Models(context.Context) ([]api.Model, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []api.Model
	for _, m := range p.models {
		out = append(out, api.Model{ID: m.Name, Object: "model", Created: m.Created, OwnedBy: "foundry"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Embeddings is not offered by the engine.
func (p *Provider) Embeddings(context.Context, *api.EmbeddingRequest) (*api.EmbeddingResponse, error) {
	return nil, provider.Unsupported(p.name, "embeddings")
}

// Chat generates a whole completion.
func (p *Provider) Chat(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
	m, greq, err := p.prepare(req)
	if err != nil {
		return nil, err
	}
	s, err := m.Engine.Generate(ctx, greq)
	if err != nil {
		return nil, p.generateErr(err)
	}
	res, err := s.Wait()
	if err != nil {
		return nil, p.generateErr(err)
	}
	choice := api.Choice{Message: api.Message{Role: "assistant", Content: api.TextContent(res.Text)}, FinishReason: string(res.FinishReason)}
	if greq.Sampling.Logprobs {
		choice.Logprobs = &api.Logprobs{Content: logprobs(m.Tokenizer, res.Tokens)}
	}
	return &api.ChatResponse{ID: newID(), Object: "chat.completion", Created: time.Now().Unix(), Model: req.Model,
		Choices: []api.Choice{choice}, Usage: usage(res.Usage)}, nil
}

// ChatStream generates a completion chunk by chunk. Closing the stream
// cancels the generation and frees its slot.
func (p *Provider) ChatStream(ctx context.Context, req *api.ChatRequest) (provider.Stream, error) {
	m, greq, err := p.prepare(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s, err := m.Engine.Generate(ctx, greq)
	if err != nil {
		cancel()
		return nil, p.generateErr(err)
	}
	return &stream{p: p, m: m, s: s, cancel: cancel, logprobs: greq.Sampling.Logprobs, usage: req.IncludeUsage(),
		base: api.ChatChunk{ID: newID(), Object: "chat.completion.chunk", Created: time.Now().Unix(), Model: req.Model}}, nil
}

// prepare checks req, renders and encodes its messages, and maps its parameters.
func (p *Provider) prepare(req *api.ChatRequest) (Model, core.Request, error) {
	p.mu.RLock()
	m, ok := p.models[req.Model]
	p.mu.RUnlock()
	if !ok {
		return Model{}, core.Request{}, p.badRequest(fmt.Sprintf("model %q is not served by the engine (serving %v)", req.Model, p.names()))
	}
	if err := req.Validate(); err != nil {
		return Model{}, core.Request{}, p.badRequest(err.Error())
	}
	switch {
	case req.N != nil && *req.N != 1:
		return Model{}, core.Request{}, p.badRequest("the engine makes one choice per request: n must be 1")
	case len(req.Tools) > 0:
		return Model{}, core.Request{}, p.badRequest("the engine does not call tools yet: send the request without tools")
	case req.ResponseFormat != nil && req.ResponseFormat.Type != "" && req.ResponseFormat.Type != "text":
		return Model{}, core.Request{}, p.badRequest(fmt.Sprintf("the engine has no constrained decoding yet: response_format %q is not supported", req.ResponseFormat.Type))
	case req.FrequencyPenalty != nil && *req.FrequencyPenalty != 0:
		return Model{}, core.Request{}, p.badRequest("the engine does not apply frequency_penalty yet: leave it out or 0")
	case req.PresencePenalty != nil && *req.PresencePenalty != 0:
		return Model{}, core.Request{}, p.badRequest("the engine does not apply presence_penalty yet: leave it out or 0")
	case req.TopLogprobs != nil && (req.Logprobs == nil || !*req.Logprobs):
		return Model{}, core.Request{}, p.badRequest("top_logprobs needs logprobs: true")
	}
	msgs := make([]tokenizer.Message, len(req.Messages))
	for i, msg := range req.Messages {
		role := msg.Role
		if role == "developer" {
			role = "system"
		}
		msgs[i] = tokenizer.Message{Role: role, Content: msg.Content.String(), Name: msg.Name, ToolCallID: msg.ToolCallID}
	}
	rendered, err := m.Tokenizer.ApplyChatTemplate(tokenizer.ChatRequest{Messages: msgs, AddGenerationPrompt: true})
	if err != nil {
		return Model{}, core.Request{}, p.badRequest(fmt.Sprintf("render the messages with %s's chat template: %v", req.Model, err))
	}
	// The template writes the special tokens itself (transformers' apply_chat_template).
	g := core.Request{Prompt: int32s(m.Tokenizer.Encode(rendered, tokenizer.EncodeOptions{})), MaxTokens: req.MaxOutputTokens(), Stop: req.Stop,
		Adapter: m.Adapter}
	g.Sampling.Temperature = 1 // OpenAI's default
	if req.Temperature != nil {
		g.Sampling.Temperature = *req.Temperature
	}
	if req.TopP != nil {
		g.Sampling.TopP = *req.TopP
	}
	if req.Seed != nil {
		s := uint64(*req.Seed)
		g.Sampling.Seed = &s
	}
	if req.Logprobs != nil && *req.Logprobs {
		g.Sampling.Logprobs = true
		if req.TopLogprobs != nil {
			g.Sampling.TopLogprobs = *req.TopLogprobs
		}
	}
	// vLLM's extensions, accepted by many OpenAI-compatible servers.
	if err := extraNumber(req.Extra, "top_k", &g.Sampling.TopK); err != nil {
		return Model{}, core.Request{}, p.badRequest(err.Error())
	}
	if err := extraNumber(req.Extra, "min_p", &g.Sampling.MinP); err != nil {
		return Model{}, core.Request{}, p.badRequest(err.Error())
	}
	if g.MaxTokens < 0 {
		return Model{}, core.Request{}, p.badRequest("max_tokens must be ≥ 1")
	}
	return m, g, nil
}

func extraNumber[T int | float64](extra api.Extra, key string, into *T) error {
	raw, ok := extra[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("%s must be a number, got %s", key, raw)
	}
	return nil
}

func (p *Provider) names() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []string
	for n := range p.models {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (p *Provider) badRequest(msg string) error {
	return &provider.UpstreamError{Provider: p.name, Status: http.StatusBadRequest, Type: "invalid_request_error", Message: msg}
}

// generateErr maps an engine error: bad requests are 400s (the context
// length with OpenAI's code), cancellation passes through, the rest are
// 500s (the gateway may fall back).
func (p *Provider) generateErr(err error) error {
	var ce *core.ContextError
	switch {
	case errors.As(err, &ce):
		return &provider.UpstreamError{Provider: p.name, Status: http.StatusBadRequest, Type: "invalid_request_error",
			Code: "context_length_exceeded", Message: err.Error(), Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, core.ErrClosed):
		return &provider.UpstreamError{Provider: p.name, Status: http.StatusServiceUnavailable, Type: "api_error", Message: err.Error(), Err: err}
	case isInvalid(err):
		return &provider.UpstreamError{Provider: p.name, Status: http.StatusBadRequest, Type: "invalid_request_error", Message: err.Error(), Err: err}
	default:
		return &provider.UpstreamError{Provider: p.name, Status: http.StatusInternalServerError, Type: "api_error", Message: err.Error(), Err: err}
	}
}

// isInvalid reports errors Generate returns for the request itself.
func isInvalid(err error) bool {
	var re *core.RequestError
	return errors.As(err, &re)
}

func usage(u core.Usage) *api.Usage {
	return &api.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens}
}

// logprobs renders the tokens' logprobs in OpenAI's form (end tokens left out, as OpenAI does).
func logprobs(tok *tokenizer.Tokenizer, tokens []core.Token) []api.TokenLogprob {
	out := []api.TokenLogprob{}
	for _, t := range tokens {
		if t.End {
			continue
		}
		text := tok.Decode([]int{int(t.ID)}, false)
		lp := api.TokenLogprob{Token: text, Logprob: float64(t.Logprob), Bytes: bytesOf(text), TopLogprobs: []api.TopLogprob{}}
		for _, alt := range t.TopLogprobs {
			s := tok.Decode([]int{int(alt.ID)}, false)
			lp.TopLogprobs = append(lp.TopLogprobs, api.TopLogprob{Token: s, Logprob: float64(alt.Logprob), Bytes: bytesOf(s)})
		}
		out = append(out, lp)
	}
	return out
}

func bytesOf(s string) []int {
	out := make([]int, len(s))
	for i := range len(s) {
		out[i] = int(s[i])
	}
	return out
}

// stream adapts an engine stream to provider.Stream.
type stream struct {
	p        *Provider
	m        Model
	s        *core.Stream
	cancel   context.CancelFunc
	base     api.ChatChunk
	logprobs bool
	usage    bool

	// started: the role chunk is out; drained: every token is; finished:
	// the finish chunk is; done: nothing more but io.EOF.
	started, drained, finished, done bool
	closeOnce                        sync.Once
}

func (st *stream) chunk(c api.ChunkChoice) *api.ChatChunk {
	ch := st.base
	ch.Choices = []api.ChunkChoice{c}
	return &ch
}

// Next returns the role chunk, then a chunk per token with text (or
// logprobs), then the finish chunk, then the usage chunk when asked.
func (st *stream) Next() (*api.ChatChunk, error) {
	if !st.started {
		st.started = true
		empty := ""
		return st.chunk(api.ChunkChoice{Delta: api.Delta{Role: "assistant", Content: &empty}}), nil
	}
	for !st.drained {
		t, ok := <-st.s.Tokens()
		if !ok {
			st.drained = true
			break
		}
		if t.End || (t.Text == "" && !st.logprobs) {
			continue
		}
		text := t.Text
		c := api.ChunkChoice{Delta: api.Delta{Content: &text}}
		if st.logprobs {
			c.Logprobs = &api.Logprobs{Content: logprobs(st.m.Tokenizer, []core.Token{t})}
		}
		return st.chunk(c), nil
	}
	if st.done {
		return nil, io.EOF
	}
	res, err := st.s.Wait()
	if err != nil {
		st.done = true
		st.Close()
		return nil, st.p.generateErr(err)
	}
	if !st.finished {
		st.finished = true
		reason := string(res.FinishReason)
		return st.chunk(api.ChunkChoice{FinishReason: &reason}), nil
	}
	st.done = true
	st.Close()
	if st.usage {
		ch := st.base
		ch.Choices = []api.ChunkChoice{}
		ch.Usage = usage(res.Usage)
		return &ch, nil
	}
	return nil, io.EOF
}

// Close cancels the generation if it is still running.
func (st *stream) Close() error {
	st.closeOnce.Do(st.cancel)
	return nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

func ints(ids []int32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}

func int32s(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
