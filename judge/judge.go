// Package judge is LLM-as-judge through any OpenAI-compatible endpoint (in
// Foundry, the gateway itself, so judge calls are captured and priced like
// all traffic): pointwise rubric scores (Score), pairwise preferences with
// position swap (Compare), and best-of-n sampling from a teacher (BestOfN).
//
// Prompts are versioned constants; verdicts are cached by a content hash
// that includes the prompt version, so re-runs and resumed runs never pay
// twice. The judge is asked for strict JSON at temperature 0 with a fixed
// seed; an answer that cannot be parsed is retried once with a repair
// instruction and then reported as ErrGarbage, never guessed at.
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

// Chatter makes one non-streaming chat completion. *HTTP implements it
// against an OpenAI-compatible URL (the gateway); every provider.Provider
// implements it too.
type Chatter interface {
	Chat(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error)
}

// Winners of a pairwise comparison.
const (
	WinnerA = "A"
	WinnerB = "B"
	Tie     = "tie"
)

// Options configure a Judge. Chatter and Model are required.
type Options struct {
	Chatter Chatter // where judge calls go: NewHTTP(gatewayURL, key) or a provider
	Model   string  // the judge model, e.g. "gpt-4o"
	Cache   Cache   // verdicts by content hash; nil caches nothing
	// Concurrency is the most judge calls in flight at once, across all
	// goroutines using this Judge (default 4).
	Concurrency int
	Seed        int64          // sent with every call so verdicts are reproducible where upstreams honour it
	MaxTokens   int            // max_tokens of a judge answer; 0 sends none
	Prices      *pricing.Table // prices the judge's usage; nil: pricing.New(nil)
	Logger      *slog.Logger   // nil: slog.Default()
}

// Judge scores and compares answers with a judge model. It is safe for
// concurrent use; create it with New.
type Judge struct {
	chat   Chatter
	model  string
	cache  Cache
	sem    chan struct{}
	seed   int64
	maxTok int
	prices *pricing.Table
	log    *slog.Logger

	mu       sync.Mutex
	stats    Stats
	inflight flights[raw] // verdicts being asked for, by cache key
}

// New returns a Judge.
func New(opts Options) (*Judge, error) {
	if opts.Chatter == nil {
		return nil, errors.New("judge: Options.Chatter is required: use judge.NewHTTP(gatewayURL, apiKey) or a provider")
	}
	if opts.Model == "" {
		return nil, errors.New("judge: Options.Model is required: name the judge model, e.g. \"gpt-4o\"")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Prices == nil {
		opts.Prices = pricing.New(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Judge{chat: opts.Chatter, model: opts.Model, cache: opts.Cache, sem: make(chan struct{}, opts.Concurrency),
		seed: opts.Seed, maxTok: opts.MaxTokens, prices: opts.Prices, log: opts.Logger}, nil
}

// Model returns the judge model's name.
func (j *Judge) Model() string { return j.model }

// Usage is what upstream calls consumed.
type Usage struct {
	Calls            int     `json:"calls"` // upstream calls, repair requests included
	PromptTokens     int     `json:"prompt_tokens"`
	CachedTokens     int     `json:"cached_tokens,omitempty"` // the part of PromptTokens from the provider's prompt cache
	CompletionTokens int     `json:"completion_tokens"`
	CostUSD          float64 `json:"cost_usd"`
	Unpriced         int     `json:"unpriced,omitempty"` // calls whose model has no price (not in CostUSD)
}

// Add adds o to u.
func (u *Usage) Add(o Usage) {
	u.Calls += o.Calls
	u.PromptTokens += o.PromptTokens
	u.CachedTokens += o.CachedTokens
	u.CompletionTokens += o.CompletionTokens
	u.CostUSD += o.CostUSD
	u.Unpriced += o.Unpriced
}

// usageOf prices one response's usage, by the model the upstream reports
// (a dated snapshot) when it has a price, else by the model asked for.
func usageOf(prices *pricing.Table, asked string, resp *api.ChatResponse) Usage {
	u := Usage{Calls: 1}
	if resp.Usage == nil {
		u.Unpriced = 1
		return u
	}
	u.PromptTokens, u.CompletionTokens = resp.Usage.PromptTokens, resp.Usage.CompletionTokens
	if d := resp.Usage.PromptTokensDetails; d != nil {
		u.CachedTokens = d.CachedTokens
	}
	cost, ok := prices.Cost(resp.Model, u.PromptTokens, u.CachedTokens, u.CompletionTokens)
	if !ok {
		cost, ok = prices.Cost(asked, u.PromptTokens, u.CachedTokens, u.CompletionTokens)
	}
	if ok {
		u.CostUSD = cost
	} else {
		u.Unpriced = 1
	}
	return u
}

// Stats are a Judge's running totals since New.
type Stats struct {
	Verdicts  int   // verdicts asked for (a Compare asks for two)
	CacheHits int   // of which answered from the cache, or by a concurrent identical call
	Garbage   int   // of which ended in ErrGarbage
	Failed    int   // of which failed otherwise (upstream errors, cancellation)
	Spent     Usage // what this Judge's upstream calls cost
	Saved     Usage // what the cache hits had cost when first made
}

// Stats returns the running totals: the judge's own cost is Spent.CostUSD.
func (j *Judge) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stats
}

func (j *Judge) count(f func(s *Stats)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f(&j.stats)
}

// Item is one answer to score.
type Item struct {
	Messages  []api.Message // the conversation the answer replies to
	Answer    api.Message   // the assistant's answer
	Rubric    string        // what a good answer is; "" uses a generic helpfulness rubric
	Reference *string       // a reference answer to grade against, if any
}

// Verdict is a pointwise judgement.
type Verdict struct {
	Score  int    `json:"score"` // 1 (useless) to 10 (perfect)
	Reason string `json:"reason"`
	Cached bool   `json:"-"` // answered from the cache or a concurrent identical call: no upstream call was made for it
	// Usage is what the verdict cost when it was made (also when Cached).
	Usage Usage `json:"usage"`
}

// Score grades one answer against a rubric. On error the verdict still
// carries the usage spent; an unusable judge answer is a *GarbageError
// (errors.Is(err, ErrGarbage)).
func (j *Judge) Score(ctx context.Context, it Item) (Verdict, error) {
	if len(it.Messages) == 0 {
		return Verdict{}, errors.New("judge: score: the item has no conversation messages")
	}
	key, err := cacheKey("pointwise", PointwiseVersion, PointwiseV1, j.model, it.Rubric, it.Reference, it.Messages, it.Answer)
	if err != nil {
		return Verdict{}, err
	}
	r, err := j.ask(ctx, PointwiseVersion, PointwiseV1, pointwiseUser(it), key, `{"score": <integer 1-10>, "reason": "..."}`,
		func(text string) (raw, string) {
			s, reason, problem := parseScore(text)
			return raw{Score: s, Reason: reason}, problem
		})
	return Verdict{Score: r.Score, Reason: r.Reason, Cached: r.cached, Usage: r.Usage}, err
}

// PairVerdict is one of the two judge calls of a Compare.
type PairVerdict struct {
	Said   string // the winner as the judge named it, by position: "A" is the answer shown first
	Winner string // the same in the caller's labels: "A" is Compare's a
	Reason string
	Cached bool
}

// Preference is a pairwise judgement with position swap.
type Preference struct {
	// Winner is "A" or "B" when both orders agree, else "tie"; also "tie"
	// when both orders call it a tie.
	Winner     string
	Consistent bool        // both orders gave the same winner
	Reason     string      // the judge's reason in the first order
	First      PairVerdict // a shown as "A", b as "B"
	Swapped    PairVerdict // b shown as "A", a as "B"
	Cached     bool        // both verdicts came from the cache
	Usage      Usage       // both verdicts' cost when they were made
}

// Compare asks which of two answers to a conversation better satisfies the
// rubric, twice with the answers' positions swapped, so that a judge biased
// to a position yields a tie rather than a false winner.
func (j *Judge) Compare(ctx context.Context, conversation []api.Message, a, b api.Message, rubric string) (Preference, error) {
	if len(conversation) == 0 {
		return Preference{}, errors.New("judge: compare: no conversation messages")
	}
	type result struct {
		r   raw
		err error
	}
	ask := func(first, second api.Message) result {
		key, err := cacheKey("pairwise", PairwiseVersion, PairwiseV1, j.model, rubric, conversation, first, second)
		if err != nil {
			return result{err: err}
		}
		r, err := j.ask(ctx, PairwiseVersion, PairwiseV1, pairwiseUser(conversation, first, second, rubric), key,
			`{"winner": "A" | "B" | "tie", "reason": "..."}`,
			func(text string) (raw, string) {
				w, reason, problem := parseWinner(text)
				return raw{Winner: w, Reason: reason}, problem
			})
		return result{r, err}
	}
	swapped := make(chan result, 1)
	go func() { swapped <- ask(b, a) }()
	r1 := ask(a, b)
	r2 := <-swapped

	p := Preference{Usage: r1.r.Usage}
	p.Usage.Add(r2.r.Usage)
	if err := errors.Join(r1.err, r2.err); err != nil {
		return p, fmt.Errorf("judge: compare: %w", err)
	}
	p.First = PairVerdict{Said: r1.r.Winner, Winner: r1.r.Winner, Reason: r1.r.Reason, Cached: r1.r.cached}
	p.Swapped = PairVerdict{Said: r2.r.Winner, Winner: flip(r2.r.Winner), Reason: r2.r.Reason, Cached: r2.r.cached}
	p.Cached = r1.r.cached && r2.r.cached
	p.Reason = p.First.Reason
	p.Consistent = p.First.Winner == p.Swapped.Winner
	p.Winner = Tie
	if p.Consistent {
		p.Winner = p.First.Winner
	}
	return p, nil
}

// Points is the preference from a's side, for win rates and their
// confidence intervals: 1 when a won, 0.5 for a tie, 0 when b won.
func (p Preference) Points() float64 {
	switch p.Winner {
	case WinnerA:
		return 1
	case WinnerB:
		return 0
	}
	return 0.5
}

// Tally counts the preferences of a candidate (Compare's a) against a
// baseline (b). The zero value is an empty tally.
type Tally struct {
	Wins, Losses, Ties int
	Inconsistent       int // of the Ties, those where the two orders disagreed (position bias)
}

// Add counts one preference.
func (t *Tally) Add(p Preference) {
	switch p.Winner {
	case WinnerA:
		t.Wins++
	case WinnerB:
		t.Losses++
	default:
		t.Ties++
		if !p.Consistent {
			t.Inconsistent++
		}
	}
}

// N is the number of preferences counted.
func (t Tally) N() int { return t.Wins + t.Losses + t.Ties }

// WinRate is the candidate's win rate with ties counted as half a win;
// 0 for an empty tally.
func (t Tally) WinRate() float64 {
	if t.N() == 0 {
		return 0
	}
	return (float64(t.Wins) + float64(t.Ties)/2) / float64(t.N())
}

func flip(w string) string {
	switch w {
	case WinnerA:
		return WinnerB
	case WinnerB:
		return WinnerA
	}
	return w
}

// raw is one parsed judge answer, as cached.
type raw struct {
	Score  int    `json:"score,omitempty"`
	Winner string `json:"winner,omitempty"`
	Reason string `json:"reason"`
	Usage  Usage  `json:"usage"`
	cached bool
}

// ask gets one verdict: from the cache, else from a concurrent call asking
// for the same verdict, else from the judge model.
func (j *Judge) ask(ctx context.Context, version, system, user, key, shape string, parse func(string) (raw, string)) (raw, error) {
	j.count(func(s *Stats) { s.Verdicts++ })
	for {
		var r raw
		hit, err := cacheGet(ctx, j.cache, key, &r)
		if err != nil {
			j.log.WarnContext(ctx, "judge cache read failed; asking the judge", "err", err)
		}
		if hit {
			r.cached = true
			j.count(func(s *Stats) { s.CacheHits++; s.Saved.Add(r.Usage) })
			return r, nil
		}

		r, shared, err := j.inflight.do(ctx, key, func() (raw, error) {
			return j.fresh(ctx, version, system, user, key, shape, parse)
		})
		switch {
		case !shared:
			return r, err
		case err == nil:
			r.cached = true
			j.count(func(s *Stats) { s.CacheHits++; s.Saved.Add(r.Usage) })
			return r, nil
		case errors.Is(err, ErrGarbage):
			j.count(func(s *Stats) { s.Garbage++ })
			return raw{}, err
		case ctx.Err() != nil:
			j.count(func(s *Stats) { s.Failed++ })
			return raw{}, fmt.Errorf("judge %s (%s): %w", j.model, version, ctx.Err())
		}
		// The other caller failed (its context, an upstream error): ask again.
	}
}

// fresh asks the judge model, with one repair request when the first
// answer does not parse, and caches a valid verdict.
func (j *Judge) fresh(ctx context.Context, version, system, user, key, shape string, parse func(string) (raw, string)) (raw, error) {
	msgs := []api.Message{
		{Role: "system", Content: api.TextContent(system)},
		{Role: "user", Content: api.TextContent(user)},
	}
	var used Usage
	var answers []string
	problem := ""
	for attempt := 0; attempt < 2; attempt++ {
		req := &api.ChatRequest{Model: j.model, Messages: msgs, ResponseFormat: &api.ResponseFormat{Type: "json_object"},
			Temperature: api.Ptr(0.0), Seed: api.Ptr(j.seed)}
		if j.maxTok > 0 {
			req.MaxTokens = api.Ptr(j.maxTok)
		}
		resp, err := j.call(ctx, req)
		if err != nil {
			j.count(func(s *Stats) { s.Failed++ })
			return raw{Usage: used}, fmt.Errorf("judge %s (%s): %w", j.model, version, err)
		}
		u := usageOf(j.prices, j.model, resp)
		used.Add(u)
		j.count(func(s *Stats) { s.Spent.Add(u) })
		text := ""
		if len(resp.Choices) > 0 {
			text = messageText(resp.Choices[0].Message)
		}
		answers = append(answers, text)
		var got raw
		got, problem = parse(text)
		if problem == "" {
			got.Usage = used
			if err := cachePut(ctx, j.cache, key, got); err != nil {
				j.log.WarnContext(ctx, "judge cache write failed; the verdict will be paid for again on a re-run", "err", err)
			}
			return got, nil
		}
		j.log.DebugContext(ctx, "judge answer unusable", "model", j.model, "version", version, "attempt", attempt+1, "problem", problem)
		msgs = append(msgs,
			api.Message{Role: "assistant", Content: api.TextContent(text)},
			api.Message{Role: "user", Content: api.TextContent(fmt.Sprintf(repairV1, problem, shape))})
	}
	j.count(func(s *Stats) { s.Garbage++ })
	return raw{Usage: used}, &GarbageError{Model: j.model, Version: version, Problem: problem, Answers: answers}
}

// call makes one upstream call within the concurrency limit.
func (j *Judge) call(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
	select {
	case j.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-j.sem }()
	return j.chat.Chat(ctx, req)
}
