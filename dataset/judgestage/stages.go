package judgestage

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/pricing"
)

// judgeStage scores every row's answer, sets Meta.JudgeScore and drops rows
// under MinScore and rows the judge answered garbage about.
type judgeStage struct {
	o Options
	c JudgeConfig
	e endpoint
}

func newJudgeStage(o Options, c JudgeConfig) (*judgeStage, error) {
	if c.Model == "" {
		return nil, errors.New("model: name the judge model, e.g. model: gpt-4o-mini")
	}
	if c.MinScore < 0 || c.MinScore > 10 {
		return nil, fmt.Errorf("min_score %d: the judge scores 1-10 (0 keeps every row)", c.MinScore)
	}
	if c.Concurrency < 0 {
		return nil, fmt.Errorf("concurrency %d must not be negative", c.Concurrency)
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	switch c.Mode {
	case "", ModePointwise:
		c.Mode = ModePointwise
		if c.Against != "" || c.Keep != "" {
			return nil, errors.New("against and keep belong to mode: pairwise (the default mode, pointwise, drops by min_score)")
		}
	case ModePairwise:
		if c.Against == "" {
			return nil, errors.New("against: name the model whose answers the rows must beat, e.g. against: gpt-4o-mini")
		}
		if c.MinScore != 0 {
			return nil, errors.New("min_score: a pairwise judge gives no score; choose keep: win or keep: win_or_tie")
		}
		switch c.Keep {
		case "":
			c.Keep = KeepWin
		case KeepWin, KeepWinOrTie:
		default:
			return nil, fmt.Errorf("keep %q: want %s or %s", c.Keep, KeepWin, KeepWinOrTie)
		}
	default:
		return nil, fmt.Errorf("mode %q: want %s (the default) or %s", c.Mode, ModePointwise, ModePairwise)
	}
	e, err := o.endpoint(c.BaseURL, c.APIKeyEnv, c.Cache)
	if err != nil {
		return nil, err
	}
	return &judgeStage{o: o, c: c, e: e}, nil
}

func (s *judgeStage) Name() string { return "judge" }

func (s *judgeStage) Run(ctx context.Context, in <-chan *dataset.Example, out *dataset.Out) error {
	cache, release, err := s.o.caches.get(s.e.cache)
	if err != nil {
		return err
	}
	defer release()
	j, err := judge.New(judge.Options{Chatter: s.o.chatter(s.e, "judge,dataset"), Model: s.c.Model, Cache: cache,
		Concurrency: s.c.Concurrency, Seed: s.c.Seed, MaxTokens: s.c.MaxTokens, Prices: s.o.Prices, Logger: s.o.Logger})
	if err != nil {
		return err
	}
	defer countJudge(out, j)
	if s.c.Mode == ModePairwise {
		return s.runPairwise(ctx, j, cache, in, out)
	}
	return dataset.RowStage{StageName: s.Name(), Workers: s.c.Concurrency, Batch: 1,
		Decide: func(ctx context.Context, ex *dataset.Example, out *dataset.Out) (string, string, error) {
			prompt, answer, ok := conversation(ex)
			if !ok || len(prompt) == 0 {
				return ReasonNoAnswer, "", nil
			}
			v, err := j.Score(ctx, judge.Item{Messages: prompt, Answer: answer, Rubric: s.c.Rubric})
			if errors.Is(err, judge.ErrGarbage) {
				return ReasonGarbage, garbageDetail(err), nil
			}
			if err != nil {
				return "", "", fmt.Errorf("row %s: %w (run the build again to resume: finished verdicts are cached in %s)", ex.Meta.ID, err, s.e.cache)
			}
			score := float64(v.Score)
			ex.Meta.JudgeScore = &score
			if v.Score < s.c.MinScore {
				return ReasonBelow(s.c.MinScore), fmt.Sprintf("score %d: %s", v.Score, clip(v.Reason, 160)), nil
			}
			return "", "", nil
		}}.Run(ctx, in, out)
}

// runPairwise asks the reference model for its answer to every row's
// prompt and keeps the rows whose own answer the judge prefers (in both
// orders), or that tie under keep: win_or_tie.
func (s *judgeStage) runPairwise(ctx context.Context, j *judge.Judge, cache judge.Cache, in <-chan *dataset.Example, out *dataset.Out) error {
	ref, err := judge.NewReference(judge.ReferenceOptions{Chatter: s.o.chatter(s.e, "teacher,dataset"), Model: s.c.Against,
		Seed: s.c.Seed, MaxTokens: s.c.MaxTokens, Concurrency: s.c.Concurrency, Cache: cache, Prices: s.o.Prices, Logger: s.o.Logger})
	if err != nil {
		return err
	}
	defer func() {
		st := ref.Stats()
		out.Count(CounterRefCalls, int64(st.Spent.Calls))
		out.Count(CounterRefCost, micro(st.Spent.CostUSD))
		out.Count(CounterRefCacheHits, int64(st.CacheHits))
		if st.Spent.Unpriced > 0 {
			out.Count("reference unpriced calls", int64(st.Spent.Unpriced))
		}
	}()
	return dataset.RowStage{StageName: s.Name(), Workers: s.c.Concurrency, Batch: 1,
		Decide: func(ctx context.Context, ex *dataset.Example, out *dataset.Out) (string, string, error) {
			prompt, answer, ok := conversation(ex)
			if !ok || len(prompt) == 0 {
				return ReasonNoAnswer, "", nil
			}
			theirs, _, err := ref.Answer(ctx, prompt)
			if err != nil {
				return "", "", fmt.Errorf("row %s: %w (run the build again to resume: finished answers and verdicts are cached in %s)", ex.Meta.ID, err, s.e.cache)
			}
			p, err := j.Compare(ctx, prompt, answer, theirs, s.c.Rubric)
			if errors.Is(err, judge.ErrGarbage) {
				return ReasonGarbage, garbageDetail(err), nil
			}
			if err != nil {
				return "", "", fmt.Errorf("row %s: %w (run the build again to resume: finished answers and verdicts are cached in %s)", ex.Meta.ID, err, s.e.cache)
			}
			switch p.Winner {
			case judge.WinnerA:
				out.Count(CounterWins, 1)
				return "", "", nil
			case judge.WinnerB:
				out.Count(CounterLosses, 1)
				return ReasonLost(s.c.Against), clip(p.Reason, 160), nil
			}
			out.Count(CounterTies, 1)
			detail := clip(p.Reason, 160)
			if !p.Consistent {
				out.Count(CounterInconsistent, 1)
				detail = fmt.Sprintf("the orders disagreed (shown first, the judge preferred %s; swapped, %s): %s",
					side(p.First.Winner, s.c.Against), side(p.Swapped.Winner, s.c.Against), detail)
			}
			if s.c.Keep == KeepWinOrTie {
				return "", "", nil
			}
			return ReasonTied(s.c.Against), detail, nil
		}}.Run(ctx, in, out)
}

// side names a pairwise winner: the row's answer (A) or the reference's (B).
func side(w, against string) string {
	switch w {
	case judge.WinnerA:
		return "the row's answer"
	case judge.WinnerB:
		return against + "'s"
	}
	return "neither"
}

// countJudge reports what the judge's calls cost in this run; verdicts
// from the cache cost nothing now.
func countJudge(out *dataset.Out, j *judge.Judge) {
	st := j.Stats()
	out.Count(CounterCalls, int64(st.Spent.Calls))
	out.Count(CounterCost, micro(st.Spent.CostUSD))
	out.Count(CounterCacheHits, int64(st.CacheHits))
	if st.Spent.Unpriced > 0 {
		out.Count(CounterUnpriced, int64(st.Spent.Unpriced))
	}
}

// garbageDetail is what the funnel shows of a garbage verdict: why it was
// rejected and what the judge said.
func garbageDetail(err error) string {
	var ge *judge.GarbageError
	if !errors.As(err, &ge) {
		return err.Error()
	}
	last := ""
	if len(ge.Answers) > 0 {
		last = ge.Answers[len(ge.Answers)-1]
	}
	return fmt.Sprintf("%s; answered %q", ge.Problem, clip(last, 120))
}

// bestOfNStage resamples rows' answers from a teacher and keeps the judge's
// best sample when it clears the bar.
type bestOfNStage struct {
	o Options
	c BestOfNConfig
	e endpoint
}

// ReasonNoSample drops a row that has no answer of its own when no sample
// cleared the bar.
const ReasonNoSample = "best-of-n: no sample cleared the bar"

func newBestOfNStage(o Options, c BestOfNConfig) (*bestOfNStage, error) {
	if c.Model == "" {
		return nil, errors.New("model: name the teacher model, e.g. model: gpt-4o")
	}
	if c.JudgeModel == "" {
		return nil, errors.New("judge_model: name the model that scores the samples (or add a judge: section, whose model is used)")
	}
	if c.OnlyIfBelow < 0 || c.OnlyIfBelow > 10 {
		return nil, fmt.Errorf("only_if_below %d: the judge scores 1-10 (0 resamples every row)", c.OnlyIfBelow)
	}
	if c.Concurrency < 0 {
		return nil, fmt.Errorf("concurrency %d must not be negative", c.Concurrency)
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.N < 0 || c.N > 128 {
		return nil, fmt.Errorf("n %d: sample 1 to 128 answers per prompt (default 4)", c.N)
	}
	if c.Bar < 0 || c.Bar > 10 {
		return nil, fmt.Errorf("bar %d: the judge scores 1-10 (default 7)", c.Bar)
	}
	switch c.Select {
	case "":
		c.Select = SelectScore
	case SelectScore:
	case SelectPairwise:
		if c.Bar != 0 {
			return nil, fmt.Errorf("bar %d: select: pairwise gives no score to bar (the tournament's winner replaces an answer it beats)", c.Bar)
		}
	default:
		return nil, fmt.Errorf("select %q: want %s (the default) or %s", c.Select, SelectScore, SelectPairwise)
	}
	if c.Temperature < 0 || c.Temperature > 2 {
		return nil, fmt.Errorf("temperature %v: want 0 to 2 (0 means 1)", c.Temperature)
	}
	e, err := o.endpoint(c.BaseURL, c.APIKeyEnv, c.Cache)
	if err != nil {
		return nil, err
	}
	return &bestOfNStage{o: o, c: c, e: e}, nil
}

func (s *bestOfNStage) Name() string { return "best_of_n" }

func (s *bestOfNStage) Run(ctx context.Context, in <-chan *dataset.Example, out *dataset.Out) error {
	cache, release, err := s.o.caches.get(s.e.cache)
	if err != nil {
		return err
	}
	defer release()
	j, err := judge.New(judge.Options{Chatter: s.o.chatter(s.e, "judge,dataset"), Model: s.c.JudgeModel, Cache: cache,
		Concurrency: s.c.Concurrency, Seed: s.c.Seed, Prices: s.o.Prices, Logger: s.o.Logger})
	if err != nil {
		return err
	}
	teacher := &meter{next: s.o.chatter(s.e, "teacher,dataset"), prices: s.o.Prices}
	c := s.c
	b, err := judge.NewBestOfN(j, judge.BestOfNOptions{Teacher: teacher, Model: c.Model, N: c.N, Temperature: c.Temperature, Bar: c.Bar,
		Rubric: c.Rubric, OneRequestPerSample: c.OneRequestPerSample, Concurrency: c.Concurrency, MaxTokens: c.MaxTokens, Seed: c.Seed,
		Pairwise: c.Select == SelectPairwise})
	if err != nil {
		return err
	}
	defer func() {
		countJudge(out, j)
		u := teacher.usage()
		out.Count(CounterTeacherCalls, int64(u.Calls))
		out.Count(CounterTeacherCost, micro(u.CostUSD))
	}()
	return dataset.RowStage{StageName: s.Name(), Workers: s.c.Concurrency, Batch: 1,
		Decide: func(ctx context.Context, ex *dataset.Example, out *dataset.Out) (string, string, error) {
			if s.c.OnlyIfBelow > 0 && ex.Meta.JudgeScore != nil && *ex.Meta.JudgeScore >= float64(s.c.OnlyIfBelow) {
				out.Count(CounterKept, 1)
				return "", "", nil
			}
			prompt, own, hasAnswer := conversation(ex)
			if len(prompt) == 0 {
				out.Count(CounterKept, 1)
				return "", "", nil
			}
			best, err := b.Run(ctx, prompt)
			if err != nil {
				return "", "", fmt.Errorf("row %s: %w (run the build again to resume: finished samples and verdicts are cached in %s)", ex.Meta.ID, err, s.e.cache)
			}
			garbage := 0
			for _, sm := range best.Samples {
				if errors.Is(sm.Err, judge.ErrGarbage) {
					garbage++
				}
			}
			if best.Tournament != nil {
				garbage += best.Tournament.Garbage
			}
			if garbage > 0 {
				out.Count(CounterGarbage, int64(garbage))
			}
			if s.c.Select == SelectPairwise && best.Accepted && hasAnswer {
				p, err := j.Compare(ctx, prompt, best.Answer, own, c.Rubric)
				switch {
				case errors.Is(err, judge.ErrGarbage):
					out.Count(CounterGarbage, 1)
					out.Count(CounterKept, 1)
					return "", "", nil
				case err != nil:
					return "", "", fmt.Errorf("row %s: %w (run the build again to resume: finished samples and verdicts are cached in %s)", ex.Meta.ID, err, s.e.cache)
				case p.Winner != judge.WinnerA:
					out.Count(CounterKept, 1) // the row's own answer is at least as good
					return "", "", nil
				}
				ex.Messages[len(ex.Messages)-1] = best.Answer
				ex.Meta.JudgeScore = nil // a score of the replaced answer, if any, is not this one's
				out.Count(CounterReplaced, 1)
				return "", "", nil
			}
			switch {
			case !best.Accepted && !hasAnswer:
				return ReasonNoSample, clip(best.Reason, 160), nil
			case !best.Accepted:
				out.Count(CounterRejected, 1)
				return "", "", nil
			case hasAnswer && ex.Meta.JudgeScore != nil && *ex.Meta.JudgeScore >= float64(best.Score):
				out.Count(CounterKept, 1) // the row's own answer is at least as good
				return "", "", nil
			}
			if hasAnswer {
				ex.Messages[len(ex.Messages)-1] = best.Answer
			} else {
				ex.Messages = append(ex.Messages, best.Answer)
			}
			if s.c.Select == SelectScore {
				score := float64(best.Score)
				ex.Meta.JudgeScore = &score
			}
			out.Count(CounterReplaced, 1)
			return "", "", nil
		}}.Run(ctx, in, out)
}

// meter is a Chatter that counts and prices the calls it passes on, so the
// funnel reports what the teacher cost in this run (cached samples cost
// nothing now).
type meter struct {
	next   judge.Chatter
	prices *pricing.Table
	mu     sync.Mutex
	u      judge.Usage
}

func (m *meter) Chat(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
	resp, err := m.next.Chat(ctx, req)
	if err != nil {
		return resp, err
	}
	u := judge.Usage{Calls: 1}
	if resp.Usage != nil {
		u.PromptTokens, u.CompletionTokens = resp.Usage.PromptTokens, resp.Usage.CompletionTokens
		if d := resp.Usage.PromptTokensDetails; d != nil {
			u.CachedTokens = d.CachedTokens
		}
		cost, ok := m.prices.Cost(resp.Model, u.PromptTokens, u.CachedTokens, u.CompletionTokens)
		if !ok {
			cost, ok = m.prices.Cost(req.Model, u.PromptTokens, u.CachedTokens, u.CompletionTokens)
		}
		u.CostUSD = cost
		if !ok {
			u.Unpriced = 1
		}
	} else {
		u.Unpriced = 1
	}
	m.mu.Lock()
	m.u.Add(u)
	m.mu.Unlock()
	return resp, nil
}

func (m *meter) usage() judge.Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.u
}
