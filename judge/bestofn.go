package judge

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/foundryhq/foundry/api"
)

// BestOfNOptions configure best-of-n sampling. Teacher and Model are required.
type BestOfNOptions struct {
	Teacher Chatter // where samples come from: NewHTTP(gatewayURL, key) with Tags "teacher", or a provider
	Model   string  // the teacher model
	N       int     // samples per prompt (default 4)
	// Temperature of sampling; 0 means 1.0 (n samples at temperature 0 would be one answer n times).
	Temperature float64
	Bar         int    // the least judge score (1-10) a kept answer must have; 0 means 7
	Rubric      string // what the judge scores; "" uses a generic helpfulness rubric
	// OneRequestPerSample sends N requests without "n" instead of one
	// request with n=N, for upstreams that reject n. An upstream that ignores
	// n (answers fewer choices) is topped up with single requests anyway.
	OneRequestPerSample bool
	Concurrency         int   // teacher calls in flight at once across all Run calls (default 4)
	MaxTokens           int   // max_tokens of a sample; 0 sends none
	Seed                int64 // base seed; sample i of a one-per-request run uses Seed+i
	// Pairwise picks the best sample by a pairwise tournament (see
	// Judge.Tournament) instead of pointwise scores; Bar does not apply and
	// Best.Score is 0. Any sample the judge could read is accepted: compare
	// the winner with the answer it would replace (Judge.Compare).
	Pairwise bool
}

// BestOfN samples n teacher answers per prompt and keeps the judge's best
// when it clears a bar. Samples and verdicts are cached (in the Judge's
// Cache), so a run that failed part-way redoes only the unfinished calls.
// It is safe for concurrent use; create it with NewBestOfN.
type BestOfN struct {
	judge *Judge
	opts  BestOfNOptions
	sem   chan struct{}
}

// NewBestOfN returns a best-of-n sampler judged by j. Samples are cached
// in j's Cache; without one a resumed run samples and judges again.
func NewBestOfN(j *Judge, opts BestOfNOptions) (*BestOfN, error) {
	if j == nil {
		return nil, errors.New("judge: best-of-n needs a Judge to score the samples")
	}
	if opts.Teacher == nil || opts.Model == "" {
		return nil, errors.New("judge: best-of-n needs BestOfNOptions.Teacher and Model (the teacher model to sample from)")
	}
	if opts.N <= 0 {
		opts.N = 4
	}
	if opts.N > 128 {
		return nil, fmt.Errorf("judge: best-of-n: N=%d is more than the 128 samples an OpenAI request allows", opts.N)
	}
	if opts.Temperature == 0 {
		opts.Temperature = 1
	}
	if opts.Bar == 0 && !opts.Pairwise {
		opts.Bar = 7
	}
	if opts.Pairwise && opts.Bar != 0 {
		return nil, fmt.Errorf("judge: best-of-n: Bar=%d with Pairwise: a tournament gives no score to bar; leave Bar 0", opts.Bar)
	}
	if !opts.Pairwise && (opts.Bar < 1 || opts.Bar > 10) {
		return nil, fmt.Errorf("judge: best-of-n: Bar=%d is outside the judge's 1-10 scale", opts.Bar)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	return &BestOfN{judge: j, opts: opts, sem: make(chan struct{}, opts.Concurrency)}, nil
}

// Sample is one teacher answer and its judgement.
type Sample struct {
	Answer  api.Message
	Verdict Verdict // zero when Err is set
	Err     error   // why the sample has no verdict (an empty answer, or a *GarbageError)
}

// Best is the outcome of best-of-n for one prompt.
type Best struct {
	Accepted bool        // the best sample's score is at least the bar
	Answer   api.Message // the best-scored answer (valid when Index >= 0)
	Index    int         // index of the best-scored sample; -1 when none was scored
	Score    int         // its score
	// Reason is the judge's reason for the best answer, or, when not
	// Accepted, why the prompt was rejected.
	Reason  string
	Samples []Sample
	Teacher Usage // the samples' cost when they were made
	Judge   Usage // the verdicts' cost when they were made
	Cached  bool  // everything came from the cache: no upstream call was made now
	// Tournament is the pairwise tournament that picked Index (Pairwise only).
	Tournament *TournamentResult
}

// samples are one prompt's teacher answers, as cached.
type samples struct {
	Answers []api.Message `json:"answers"`
	Usage   Usage         `json:"usage"`
}

// Run samples the teacher for one conversation (ending with the user turn
// to answer), judges every sample and returns the best. A teacher or judge
// failure (other than garbage verdicts, which reject single samples) is
// returned as an error; running the prompt again resumes from the cache.
func (b *BestOfN) Run(ctx context.Context, conversation []api.Message) (Best, error) {
	if len(conversation) == 0 {
		return Best{Index: -1}, errors.New("judge: best-of-n: empty conversation")
	}
	s, cached, err := b.sample(ctx, conversation)
	if err != nil {
		return Best{Index: -1, Teacher: s.Usage}, err
	}
	best := Best{Index: -1, Teacher: s.Usage, Samples: make([]Sample, len(s.Answers))}
	if b.opts.Pairwise {
		return b.tournament(ctx, conversation, s, cached, best)
	}

	var wg sync.WaitGroup
	errs := make([]error, len(s.Answers))
	first := map[string]int{} // answer text -> first sample with it: identical samples are judged once
	for i, a := range s.Answers {
		best.Samples[i].Answer = a
		text := messageText(a)
		if text == "" {
			best.Samples[i].Err = errors.New("the teacher's answer is empty")
			continue
		}
		if _, dup := first[text]; dup {
			continue
		}
		first[text] = i
		wg.Go(func() {
			v, err := b.judge.Score(ctx, Item{Messages: conversation, Answer: a, Rubric: b.opts.Rubric})
			best.Samples[i].Verdict = v
			if errors.Is(err, ErrGarbage) {
				best.Samples[i].Err = err
			} else {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	for i, a := range s.Answers {
		if f, ok := first[messageText(a)]; ok && f != i {
			// A duplicate shares the verdict but not its cost.
			v := best.Samples[f].Verdict
			v.Usage = Usage{}
			best.Samples[i].Verdict, best.Samples[i].Err, errs[i] = v, best.Samples[f].Err, nil
		}
	}
	allCached := cached
	garbage := 0
	for i, sm := range best.Samples {
		best.Judge.Add(sm.Verdict.Usage)
		if sm.Err != nil || errs[i] != nil {
			allCached = false
			if errors.Is(sm.Err, ErrGarbage) {
				garbage++
			}
			continue
		}
		allCached = allCached && sm.Verdict.Cached
		if best.Index < 0 || sm.Verdict.Score > best.Score {
			best.Index, best.Score, best.Reason, best.Answer = i, sm.Verdict.Score, sm.Verdict.Reason, sm.Answer
		}
	}
	if err := errors.Join(errs...); err != nil {
		return best, fmt.Errorf("judge: best-of-n: %w", err)
	}
	best.Cached = allCached
	switch {
	case best.Index < 0:
		best.Reason = fmt.Sprintf("no sample could be judged (%d of %d answers were garbage to the judge, the rest empty)", garbage, len(best.Samples))
	case best.Score < b.opts.Bar:
		best.Reason = fmt.Sprintf("best of %d samples scored %d, under the bar of %d: %s", len(best.Samples), best.Score, b.opts.Bar, best.Reason)
	default:
		best.Accepted = true
	}
	return best, nil
}

// tournament picks the best sample by pairwise comparison.
func (b *BestOfN) tournament(ctx context.Context, conversation []api.Message, s samples, cached bool, best Best) (Best, error) {
	for i, a := range s.Answers {
		best.Samples[i].Answer = a
		if messageText(a) == "" {
			best.Samples[i].Err = errors.New("the teacher's answer is empty")
		}
	}
	t, err := b.judge.Tournament(ctx, conversation, s.Answers, b.opts.Rubric)
	best.Tournament, best.Judge = &t, t.Usage
	if err != nil {
		return best, fmt.Errorf("judge: best-of-n: %w", err)
	}
	best.Cached = cached && t.Cached
	if t.Winner < 0 {
		best.Reason = fmt.Sprintf("all %d samples were empty", len(s.Answers))
		return best, nil
	}
	best.Index, best.Answer, best.Accepted = t.Winner, s.Answers[t.Winner], true
	best.Reason = fmt.Sprintf("sample %d won a tournament of %d rounds", t.Winner+1, len(t.Rounds))
	if len(t.Rounds) > 0 {
		best.Reason += ": " + t.Rounds[len(t.Rounds)-1].Reason
	}
	return best, nil
}

// sample returns N teacher answers for the conversation, from the cache
// when a previous run got them.
func (b *BestOfN) sample(ctx context.Context, conversation []api.Message) (samples, bool, error) {
	o := b.opts
	key, err := cacheKey("teacher-samples", o.Model, o.N, o.Temperature, o.Seed, o.MaxTokens, o.OneRequestPerSample, conversation)
	if err != nil {
		return samples{}, false, err
	}
	var s samples
	if hit, err := cacheGet(ctx, b.judge.cache, key, &s); err != nil {
		b.judge.log.WarnContext(ctx, "best-of-n cache read failed; sampling again", "err", err)
	} else if hit && len(s.Answers) == o.N {
		return s, true, nil
	}
	s = samples{}

	request := func(n int, seed int64) *api.ChatRequest {
		req := &api.ChatRequest{Model: o.Model, Messages: conversation, Temperature: api.Ptr(o.Temperature), Seed: api.Ptr(seed)}
		if n > 1 {
			req.N = api.Ptr(n)
		}
		if o.MaxTokens > 0 {
			req.MaxTokens = api.Ptr(o.MaxTokens)
		}
		return req
	}
	add := func(resp *api.ChatResponse) {
		s.Usage.Add(usageOf(b.judge.prices, o.Model, resp))
		for _, c := range resp.Choices {
			if len(s.Answers) < o.N {
				s.Answers = append(s.Answers, c.Message)
			}
		}
	}
	if !o.OneRequestPerSample && o.N > 1 {
		resp, err := b.call(ctx, request(o.N, o.Seed))
		if err != nil {
			return s, false, fmt.Errorf("judge: best-of-n: teacher %s (n=%d): %w", o.Model, o.N, err)
		}
		add(resp)
	}
	// One request per missing sample: all of them in one-per-request mode,
	// the shortfall when the upstream ignored n.
	missing := o.N - len(s.Answers)
	base := int64(len(s.Answers))
	var wg sync.WaitGroup
	errs := make([]error, missing)
	resps := make([]*api.ChatResponse, missing)
	for i := range missing {
		wg.Go(func() { resps[i], errs[i] = b.call(ctx, request(1, o.Seed+base+int64(i))) })
	}
	wg.Wait()
	for _, resp := range resps {
		if resp != nil {
			add(resp) // in request order, so sample i is the same on every run
		}
	}
	if err := errors.Join(errs...); err != nil {
		return s, false, fmt.Errorf("judge: best-of-n: teacher %s: %w", o.Model, err)
	}
	if len(s.Answers) < o.N {
		return s, false, fmt.Errorf("judge: best-of-n: teacher %s answered %d of %d samples (does it return choices?)", o.Model, len(s.Answers), o.N)
	}
	if err := cachePut(ctx, b.judge.cache, key, s); err != nil {
		b.judge.log.WarnContext(ctx, "best-of-n cache write failed; the samples will be paid for again on a re-run", "err", err)
	}
	return s, false, nil
}

func (b *BestOfN) call(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-b.sem }()
	return b.opts.Teacher.Chat(ctx, req)
}
