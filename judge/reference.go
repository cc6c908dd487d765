package judge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/pricing"
)

// ReferenceOptions configure a Reference. Chatter and Model are required.
type ReferenceOptions struct {
	Chatter Chatter // where the calls go: NewHTTP(gatewayURL, key) with Tags "teacher", or a provider
	Model   string  // the model whose answers are the reference
	// Temperature of the reference answers; 0 (the default) asks for the
	// model's most likely answer, so a re-run compares against the same one.
	Temperature float64
	Seed        int64          // sent with every call
	MaxTokens   int            // max_tokens of an answer; 0 sends none
	Concurrency int            // calls in flight at once (default 4)
	Cache       Cache          // answers by content hash; nil caches nothing
	Prices      *pricing.Table // nil: pricing.New(nil)
	Logger      *slog.Logger   // nil: slog.Default()
}

// Reference asks one model for its answer to conversations, to compare
// other answers against (a pairwise judge stage: does the captured answer
// beat the reference model's?). Answers are cached by content hash, and
// concurrent requests for the same conversation make one call. It is safe
// for concurrent use; create it with NewReference.
type Reference struct {
	o   ReferenceOptions
	sem chan struct{}

	mu       sync.Mutex
	stats    ReferenceStats
	inflight flights[refAnswer]
}

// refAnswer is one reference answer, as cached.
type refAnswer struct {
	Message api.Message `json:"message"`
	Usage   Usage       `json:"usage"`
}

// ReferenceStats are a Reference's running totals since NewReference.
type ReferenceStats struct {
	Answers   int   // answers asked for
	CacheHits int   // of which answered from the cache or by a concurrent identical call
	Spent     Usage // what this Reference's upstream calls cost
}

// NewReference returns a Reference.
func NewReference(o ReferenceOptions) (*Reference, error) {
	if o.Chatter == nil || o.Model == "" {
		return nil, errors.New("judge: a reference needs ReferenceOptions.Chatter and Model (the model to compare against)")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Prices == nil {
		o.Prices = pricing.New(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Reference{o: o, sem: make(chan struct{}, o.Concurrency)}, nil
}

// Model returns the reference model's name.
func (r *Reference) Model() string { return r.o.Model }

// Stats returns the running totals: the reference model's cost is Spent.CostUSD.
func (r *Reference) Stats() ReferenceStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Answer returns the reference model's answer to a conversation (ending
// with the turn to answer); cached is true when no upstream call was made
// for it now.
func (r *Reference) Answer(ctx context.Context, conversation []api.Message) (answer api.Message, cached bool, err error) {
	if len(conversation) == 0 {
		return api.Message{}, false, errors.New("judge: reference: empty conversation")
	}
	o := r.o
	key, err := cacheKey("reference-answer", o.Model, o.Temperature, o.Seed, o.MaxTokens, conversation)
	if err != nil {
		return api.Message{}, false, err
	}
	r.mu.Lock()
	r.stats.Answers++
	r.mu.Unlock()
	for {
		var a refAnswer
		hit, err := cacheGet(ctx, o.Cache, key, &a)
		if err != nil {
			o.Logger.WarnContext(ctx, "reference cache read failed; asking the model", "err", err)
		}
		if hit {
			r.hit()
			return a.Message, true, nil
		}
		a, shared, err := r.inflight.do(ctx, key, func() (refAnswer, error) { return r.fresh(ctx, conversation, key) })
		switch {
		case !shared:
			return a.Message, false, err
		case err == nil:
			r.hit()
			return a.Message, true, nil
		case ctx.Err() != nil:
			return api.Message{}, false, fmt.Errorf("judge: reference %s: %w", o.Model, ctx.Err())
		}
		// The other caller failed: ask again.
	}
}

func (r *Reference) hit() {
	r.mu.Lock()
	r.stats.CacheHits++
	r.mu.Unlock()
}

func (r *Reference) fresh(ctx context.Context, conversation []api.Message, key string) (refAnswer, error) {
	o := r.o
	req := &api.ChatRequest{Model: o.Model, Messages: conversation, Temperature: api.Ptr(o.Temperature), Seed: api.Ptr(o.Seed)}
	if o.MaxTokens > 0 {
		req.MaxTokens = api.Ptr(o.MaxTokens)
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return refAnswer{}, fmt.Errorf("judge: reference %s: %w", o.Model, ctx.Err())
	}
	resp, err := o.Chatter.Chat(ctx, req)
	<-r.sem
	if err != nil {
		return refAnswer{}, fmt.Errorf("judge: reference %s: %w", o.Model, err)
	}
	u := usageOf(o.Prices, o.Model, resp)
	r.mu.Lock()
	r.stats.Spent.Add(u)
	r.mu.Unlock()
	if len(resp.Choices) == 0 {
		return refAnswer{Usage: u}, fmt.Errorf("judge: reference %s answered no choices (does the endpoint return chat completions?)", o.Model)
	}
	a := refAnswer{Message: resp.Choices[0].Message, Usage: u}
	if a.Message.Role == "" {
		a.Message.Role = "assistant"
	}
	if err := cachePut(ctx, o.Cache, key, a); err != nil {
		o.Logger.WarnContext(ctx, "reference cache write failed; the answer will be paid for again on a re-run", "err", err)
	}
	return a, nil
}
