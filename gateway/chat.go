package gateway

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

// StatusClientClosed is recorded when the client went away before the answer (nginx's 499).
const StatusClientClosed = 499

var bodyPool = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 4096)) }}

// readBody reads the request body within the size limit. The returned
// bytes are owned by the caller (they outlive the request in capture).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyPool.Put(buf)
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &api.Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
				Message: fmt.Sprintf("request body is larger than the %d-byte limit: send less, or raise limits.max_body_bytes in Foundry's config", s.opts.MaxBodyBytes)}
		}
		return nil, api.BadRequest("", "could not read request body: "+err.Error())
	}
	return bytes.Clone(buf.Bytes()), nil
}

// newCall starts a Call for the request: identity, tags, metadata.
func (s *Server) newCall(r *http.Request, endpoint string, body []byte) (*provider.Call, error) {
	id := IdentityFrom(r.Context())
	c := &provider.Call{ID: RequestID(r.Context()), Start: time.Now(), Endpoint: endpoint, RawBody: body,
		Project: id.Project, KeyID: id.KeyID}
	if v := r.Header.Get("X-Foundry-Tags"); v != "" {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				c.Tags = append(c.Tags, t)
			}
		}
	}
	if v := strings.TrimSpace(r.Header.Get("X-Foundry-Metadata")); v != "" {
		md, err := parseMetadataHeader(v)
		if err != nil {
			return nil, err
		}
		c.Metadata = md
	}
	if v := r.Header.Get("X-Foundry-Parent-Id"); v != "" {
		c.ParentID = v
	}
	return c, nil
}

// parseMetadataHeader accepts a JSON object of strings or "k=v,k2=v2".
func parseMetadataHeader(v string) (map[string]string, error) {
	md := map[string]string{}
	if strings.HasPrefix(v, "{") {
		var raw map[string]any
		if err := json.Unmarshal([]byte(v), &raw); err != nil {
			return nil, api.BadRequest("X-Foundry-Metadata", "X-Foundry-Metadata is not a JSON object: "+err.Error())
		}
		for k, x := range raw {
			switch x := x.(type) {
			case string:
				md[k] = x
			default:
				b, _ := json.Marshal(x)
				md[k] = string(b)
			}
		}
		return md, nil
	}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, api.BadRequest("X-Foundry-Metadata", "X-Foundry-Metadata must be a JSON object or k=v pairs separated by commas")
		}
		md[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return md, nil
}

// pre runs the plugins' PreCall hooks.
func (s *Server) pre(ctx context.Context, c *provider.Call) error {
	for _, p := range s.opts.Plugins {
		if err := p.PreCall(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// post finishes the call and runs PostCall hooks in reverse order.
func (s *Server) post(ctx context.Context, c *provider.Call) {
	c.Latency = time.Since(c.Start)
	if c.Status == 0 {
		c.Status = http.StatusOK
	}
	s.metrics.observe(c)
	ctx = context.WithoutCancel(ctx)
	for i := len(s.opts.Plugins) - 1; i >= 0; i-- {
		s.opts.Plugins[i].PostCall(ctx, c)
	}
}

// exchange is a call being answered. finish runs the PostCall hooks once,
// just before the last bytes go to the client, so that a client which reads
// its answer and then asks for the record (feedback, logs) finds it queued.
// Nothing may change the call after finish: capture reads it concurrently.
type exchange struct {
	s    *Server
	ctx  context.Context
	c    *provider.Call
	done bool
}

func (s *Server) begin(ctx context.Context, c *provider.Call) *exchange {
	return &exchange{s: s, ctx: ctx, c: c}
}

func (x *exchange) finish() {
	if !x.done {
		x.done = true
		x.s.post(x.ctx, x.c)
	}
}

// fail records err on the call, finishes it, and writes the error unless
// the client is gone.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, x *exchange, err error) {
	c := x.c
	c.Err = err
	if r.Context().Err() != nil {
		c.Status = StatusClientClosed
		x.finish()
		return
	}
	c.Status = api.StatusOf(err)
	x.finish()
	api.WriteError(w, err)
}

// accept reads, decodes and validates the request body into req and starts
// its Call; bad input is answered (and recorded) here, and ok is false.
func accept[T interface{ Validate() error }](s *Server, w http.ResponseWriter, r *http.Request, endpoint string, req T) (*provider.Call, bool) {
	body, err := s.readBody(w, r)
	if err == nil {
		err = api.DecodeStrict(body, req)
	}
	if err == nil {
		err = req.Validate()
	}
	var c *provider.Call
	if err == nil {
		c, err = s.newCall(r, endpoint, body)
	}
	if err != nil {
		s.reject(w, r, endpoint, body, err)
		return nil, false
	}
	return c, true
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	defer s.track()()
	req := new(api.ChatRequest)
	c, ok := accept(s, w, r, "chat.completions", req)
	if !ok {
		return
	}
	c.Route, c.Chat, c.Stream, c.User = req.Model, req, req.Stream, req.User
	for k, v := range req.Metadata {
		if c.Metadata == nil {
			c.Metadata = map[string]string{}
		}
		c.Metadata[k] = v
	}
	ctx := r.Context()
	x := s.begin(ctx, c)
	defer x.finish()
	if err := s.pre(ctx, c); err != nil {
		s.fail(w, r, x, err)
		return
	}
	if req.Stream {
		s.stream(w, r, x)
		return
	}
	resp, err := s.invoke.Chat(ctx, c)
	if err != nil {
		s.fail(w, r, x, err)
		return
	}
	c.ChatResponse = resp
	b, err := json.Marshal(resp)
	if err != nil {
		s.fail(w, r, x, fmt.Errorf("encode response: %w", err))
		return
	}
	c.TTFT = time.Since(c.Start)
	c.ResponseBody = b
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Foundry-Provider", c.Provider)
	c.Status = http.StatusOK
	x.finish()
	_, _ = w.Write(b) // a client gone at this point has its answer recorded as sent
}

// track counts a request as in flight (for graceful shutdown and metrics)
// until the returned func is called.
func (s *Server) track() func() {
	s.inflight.Add(1)
	s.metrics.inflight.Inc()
	return func() {
		s.metrics.inflight.Dec()
		s.inflight.Done()
	}
}

// reject answers a request that never became a call (bad input) and
// still records it, so that bad traffic is visible too.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, endpoint string, body []byte, err error) {
	reason := "bad_request"
	if api.StatusOf(err) == http.StatusRequestEntityTooLarge {
		reason = "too_large"
	}
	s.metrics.reject(reason)
	c := &provider.Call{ID: RequestID(r.Context()), Start: time.Now(), Endpoint: endpoint, RawBody: body}
	id := IdentityFrom(r.Context())
	c.Project, c.KeyID = id.Project, id.KeyID
	s.fail(w, r, s.begin(r.Context(), c), err)
}

// stream relays a streaming completion as SSE and reassembles it for capture.
// The upstream is always asked for the final usage chunk; it is passed on
// only when the client asked for it.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, x *exchange) {
	ctx, c := r.Context(), x.c
	clientUsage := c.Chat.IncludeUsage()
	up := *c.Chat
	opts := api.StreamOptions{IncludeUsage: true}
	if c.Chat.StreamOptions != nil {
		opts = *c.Chat.StreamOptions
		opts.IncludeUsage = true
	}
	up.StreamOptions = &opts
	c.Chat = &up

	st, err := s.invoke.ChatStream(ctx, c)
	if err != nil {
		s.fail(w, r, x, err)
		return
	}
	defer st.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Foundry-Provider", c.Provider)
	w.WriteHeader(http.StatusOK)
	c.Status = http.StatusOK
	flusher, _ := w.(http.Flusher)
	var acc api.Accumulator
	buf := bodyPool.Get().(*bytes.Buffer)
	defer bodyPool.Put(buf)
	// finish records the call (with what was streamed so far) before the
	// last event goes out.
	finish := func() {
		if acc.Chunks() > 0 {
			c.ChatResponse = acc.Response()
		}
		x.finish()
	}
	for {
		chunk, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			c.Err = err
			if ctx.Err() != nil {
				c.Status = StatusClientClosed
				finish()
				return
			}
			// Headers are gone: report in-band as OpenAI does, and keep the status.
			c.Status = api.StatusOf(err)
			finish()
			b, _ := api.AsError(err).MarshalJSON()
			_ = api.WriteSSE(w, b)
			if flusher != nil {
				flusher.Flush()
			}
			return
		}
		if acc.Chunks() == 0 {
			c.TTFT = time.Since(c.Start)
		}
		acc.Add(chunk)
		if chunk.Usage != nil && !clientUsage {
			if len(chunk.Choices) == 0 {
				continue
			}
			cc := *chunk
			cc.Usage = nil
			chunk = &cc
		}
		b, err := json.Marshal(chunk)
		if err != nil {
			c.Err = fmt.Errorf("encode chunk: %w", err)
			c.Status = http.StatusInternalServerError
			finish()
			return
		}
		buf.Reset()
		buf.WriteString("data: ")
		buf.Write(b)
		buf.WriteString("\n\n")
		if _, err := w.Write(buf.Bytes()); err != nil {
			c.Err, c.Status = err, StatusClientClosed
			finish()
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
	finish()
	_, _ = w.Write(api.DoneEvent)
	if flusher != nil {
		flusher.Flush()
	}
}

func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	defer s.track()()
	req := new(api.EmbeddingRequest)
	c, ok := accept(s, w, r, "embeddings", req)
	if !ok {
		return
	}
	c.Route, c.Embedding, c.User = req.Model, req, req.User
	ctx := r.Context()
	x := s.begin(ctx, c)
	defer x.finish()
	if err := s.pre(ctx, c); err != nil {
		s.fail(w, r, x, err)
		return
	}
	resp, err := s.invoke.Embeddings(ctx, c)
	if err != nil {
		s.fail(w, r, x, err)
		return
	}
	c.EmbeddingResponse = resp
	c.TTFT = time.Since(c.Start)
	c.Status = http.StatusOK
	x.finish()
	api.WriteJSON(w, http.StatusOK, resp)
}

// handleModels lists every provider's models (a provider that fails is
// skipped and logged) plus the configured aliases.
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	provs := s.reg.Providers()
	results := make([][]api.Model, len(provs))
	var wg sync.WaitGroup
	for i, p := range provs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms, err := p.Models(ctx)
			if err != nil {
				s.log.Warn("list models", "provider", p.Name(), "err", err)
				return
			}
			for j := range ms {
				if ms[j].OwnedBy == "" {
					ms[j].OwnedBy = p.Name()
				}
				ms[j].Object = "model"
			}
			results[i] = ms
		}()
	}
	wg.Wait()
	list := api.ModelList{Object: "list", Data: []api.Model{}}
	seen := map[string]bool{}
	for _, ms := range results {
		for _, m := range ms {
			if !seen[m.ID] {
				seen[m.ID] = true
				list.Data = append(list.Data, m)
			}
		}
	}
	for alias := range s.reg.Aliases() {
		if !seen[alias] {
			seen[alias] = true
			list.Data = append(list.Data, api.Model{ID: alias, Object: "model", OwnedBy: "foundry"})
		}
	}
	api.WriteJSON(w, http.StatusOK, list)
}
