package gateway

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/provider"
)

// invoker is the innermost provider.Invoker: it resolves the call's route
// and its fallback chain and calls each target with the one retry policy.
type invoker struct{ s *Server }

// targets lists the model names to try for route: itself, then its fallbacks.
func (v *invoker) targets(route string) []string {
	fb := v.s.opts.Fallbacks[route]
	out := make([]string, 0, 1+len(fb))
	return append(append(out, route), fb...)
}

// try runs fn against each target with retries until one succeeds, a
// non-retryable error occurs, or ctx ends.
func (v *invoker) try(ctx context.Context, c *provider.Call, fn func(ctx context.Context, t provider.Target) error) error {
	var last error
	for i, name := range v.targets(c.Route) {
		t, err := v.s.reg.Resolve(name)
		if err != nil {
			if i == 0 {
				last = err
				if len(v.s.opts.Fallbacks[c.Route]) == 0 {
					return err
				}
			}
			continue
		}
		for attempt := 0; ; attempt++ {
			c.Attempts++
			c.Provider, c.Model = t.Provider.Name(), t.Model
			err = fn(ctx, t)
			if err == nil {
				return nil
			}
			last = err
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ue *provider.UpstreamError
			if !errors.As(err, &ue) {
				return err // not an upstream failure: ours or the client's
			}
			v.s.metrics.upstreamError(ue)
			if !ue.Retryable() {
				return err // the request itself is wrong; another target will not help
			}
			if attempt >= v.s.opts.MaxRetries {
				break
			}
			d := v.backoff(attempt, ue.RetryAfter)
			if d < 0 {
				break // Retry-After longer than we wait: go to the fallback
			}
			v.s.log.Debug("retrying upstream", "id", c.ID, "provider", c.Provider, "attempt", attempt+1, "wait", d, "err", err)
			tm := time.NewTimer(d)
			select {
			case <-ctx.Done():
				tm.Stop()
				return ctx.Err()
			case <-tm.C:
			}
		}
	}
	return last
}

// backoff returns the wait before retry attempt+1: exponential with full
// jitter in [d/2, d], or the upstream's Retry-After when longer; -1 when
// Retry-After exceeds RetryMax.
func (v *invoker) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := v.s.opts.RetryBase << attempt
	if d > v.s.opts.RetryMax {
		d = v.s.opts.RetryMax
	}
	d = d/2 + rand.N(d/2+1)
	if retryAfter > 0 {
		if retryAfter > v.s.opts.RetryMax {
			return -1
		}
		if retryAfter > d {
			d = retryAfter
		}
	}
	return d
}

func withModel(req *api.ChatRequest, model string) *api.ChatRequest {
	r := *req
	r.Model = model
	return &r
}

func (v *invoker) Chat(ctx context.Context, c *provider.Call) (*api.ChatResponse, error) {
	var resp *api.ChatResponse
	err := v.try(ctx, c, func(ctx context.Context, t provider.Target) error {
		var err error
		resp, err = t.Provider.Chat(ctx, withModel(c.Chat, t.Model))
		return err
	})
	return resp, err
}

// ChatStream opens the stream and reads its first chunk before returning,
// so that a failure before the first byte reaches the client is retried.
func (v *invoker) ChatStream(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	var out provider.Stream
	err := v.try(ctx, c, func(ctx context.Context, t provider.Target) error {
		st, err := t.Provider.ChatStream(ctx, withModel(c.Chat, t.Model))
		if err != nil {
			return err
		}
		first, err := st.Next()
		if err != nil && err != io.EOF {
			st.Close()
			return err
		}
		out = &peeked{Stream: st, first: first, firstErr: err}
		return nil
	})
	return out, err
}

func (v *invoker) Embeddings(ctx context.Context, c *provider.Call) (*api.EmbeddingResponse, error) {
	var resp *api.EmbeddingResponse
	err := v.try(ctx, c, func(ctx context.Context, t provider.Target) error {
		r := *c.Embedding
		r.Model = t.Model
		var err error
		resp, err = t.Provider.Embeddings(ctx, &r)
		return err
	})
	return resp, err
}

// peeked replays the chunk read ahead by ChatStream.
type peeked struct {
	provider.Stream
	first    *api.ChatChunk
	firstErr error
	used     bool
}

func (p *peeked) Next() (*api.ChatChunk, error) {
	if !p.used {
		p.used = true
		if p.firstErr != nil {
			return nil, p.firstErr
		}
		return p.first, nil
	}
	return p.Stream.Next()
}
