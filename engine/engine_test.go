package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
)

// wordDetok decodes token id n as "w<n> ".
var wordDetok = DecodeFunc(func(ids []int32) (string, error) {
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "w%d ", id)
	}
	return b.String(), nil
})

func newTestEngine(t *testing.T, arch string, ropts RunnerOptions, opts Options) *Engine {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := New(newTestRunner(t, arch, ropts), opts)
	t.Cleanup(func() { e.Close() })
	return e
}

func generate(t *testing.T, e *Engine, req Request) *Result {
	t.Helper()
	s, err := e.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var streamed []Token
	for tok := range s.Tokens() {
		streamed = append(streamed, tok)
	}
	res, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(streamed) != len(res.Tokens) {
		t.Fatalf("streamed %d tokens, result has %d", len(streamed), len(res.Tokens))
	}
	var text strings.Builder
	for _, tok := range streamed {
		text.WriteString(tok.Text)
	}
	if text.String() != res.Text {
		t.Fatalf("streamed text %q, result text %q", text.String(), res.Text)
	}
	if res.Usage.PromptTokens != len(req.Prompt) || res.Usage.CompletionTokens != len(res.Tokens) {
		t.Fatalf("usage %+v for a %d-token prompt and %d generated tokens", res.Usage, len(req.Prompt), len(res.Tokens))
	}
	return res
}

// TestGenerateGreedyMatchesReference: the engine's greedy generation gives
// the reference ids for every fixture architecture, with logprobs of the
// reference distribution.
func TestGenerateGreedyMatchesReference(t *testing.T) {
	for _, arch := range fixtureArchs {
		t.Run(arch, func(t *testing.T) {
			f := loadFixture(t, arch)
			e := newTestEngine(t, arch, RunnerOptions{Slots: 2, MaxContext: 64}, Options{})
			res := generate(t, e, Request{Prompt: f.InputIDs, MaxTokens: len(f.GreedyIDs), IgnoreEOS: true,
				Sampling: Sampling{Logprobs: true, TopLogprobs: 3}})
			if got := res.IDs(); !slices.Equal(got, f.GreedyIDs) {
				t.Fatalf("greedy ids %v, reference %v", got, f.GreedyIDs)
			}
			if res.FinishReason != FinishLength {
				t.Fatalf("finish %q, want length", res.FinishReason)
			}
			v := e.Runner().Config().VocabSize
			for i, tok := range res.Tokens {
				row := f.greedyLogits[i*v : (i+1)*v]
				want := float64(row[tok.ID]) - logSumExp(row)
				if math.Abs(float64(tok.Logprob)-want) > 1e-4 {
					t.Fatalf("token %d logprob %v, reference %v", i, tok.Logprob, want)
				}
				if len(tok.TopLogprobs) != 3 || tok.TopLogprobs[0].ID != tok.ID || tok.TopLogprobs[0].Logprob != tok.Logprob ||
					tok.TopLogprobs[1].Logprob > tok.TopLogprobs[0].Logprob || tok.TopLogprobs[2].Logprob > tok.TopLogprobs[1].Logprob {
					t.Fatalf("token %d (%d, %v): top logprobs %v", i, tok.ID, tok.Logprob, tok.TopLogprobs)
				}
			}
		})
	}
}

func seed(s uint64) *uint64 { return &s }

// TestConcurrentEqualsAlone runs greedy and seeded requests one at a time,
// then all at once (more than there are slots, so some queue and reuse
// slots), and expects the same tokens.
func TestConcurrentEqualsAlone(t *testing.T) {
	e := newTestEngine(t, "qwen2", RunnerOptions{Slots: 3, MaxContext: 64}, Options{Detokenizer: wordDetok})
	f := loadFixture(t, "qwen2")
	var reqs []Request
	for i := range 7 {
		prompt := slices.Clone(f.InputIDs[:4+i])
		req := Request{Prompt: prompt, MaxTokens: 6 + 2*i, IgnoreEOS: true}
		if i%2 == 1 {
			req.Sampling = Sampling{Temperature: 0.9, TopP: 0.95, Seed: seed(uint64(i))}
		}
		reqs = append(reqs, req)
	}
	alone := make([]*Result, len(reqs))
	for i, req := range reqs {
		alone[i] = generate(t, e, req)
	}
	together := make([]*Result, len(reqs))
	var wg sync.WaitGroup
	streams := make([]*Stream, len(reqs))
	for i, req := range reqs {
		s, err := e.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = s
	}
	errs := make([]error, len(reqs))
	for i, s := range streams {
		wg.Go(func() { together[i], errs[i] = s.Wait() })
	}
	wg.Wait()
	for i := range reqs {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if !slices.Equal(alone[i].IDs(), together[i].IDs()) || alone[i].Text != together[i].Text {
			t.Fatalf("request %d alone %v, batched %v", i, alone[i].IDs(), together[i].IDs())
		}
		if len(together[i].Tokens) != reqs[i].MaxTokens {
			t.Fatalf("request %d: %d tokens, want %d", i, len(together[i].Tokens), reqs[i].MaxTokens)
		}
	}
}

func TestSeededSampling(t *testing.T) {
	e := newTestEngine(t, "mistral", RunnerOptions{Slots: 2, MaxContext: 64}, Options{})
	f := loadFixture(t, "mistral")
	sampled := func(s Sampling) []int32 {
		return generate(t, e, Request{Prompt: f.InputIDs, MaxTokens: 16, IgnoreEOS: true, Sampling: s}).IDs()
	}
	a := sampled(Sampling{Temperature: 1, Seed: seed(7)})
	if b := sampled(Sampling{Temperature: 1, Seed: seed(7)}); !slices.Equal(a, b) {
		t.Fatalf("seed 7 twice: %v then %v", a, b)
	}
	if c := sampled(Sampling{Temperature: 1, Seed: seed(8)}); slices.Equal(a, c) {
		t.Fatalf("seeds 7 and 8 both gave %v", a)
	}
	if slices.Equal(a, f.GreedyIDs) {
		t.Fatalf("temperature 1 gave the greedy ids %v", a)
	}
	if k1 := sampled(Sampling{Temperature: 1, TopK: 1, Seed: seed(9)}); !slices.Equal(k1, f.GreedyIDs) {
		t.Fatalf("top-k 1 gave %v, greedy is %v", k1, f.GreedyIDs)
	}
	if p := sampled(Sampling{Temperature: 1, TopP: 1e-6, Seed: seed(10)}); !slices.Equal(p, f.GreedyIDs) {
		t.Fatalf("top-p 1e-6 gave %v, greedy is %v", p, f.GreedyIDs)
	}
	if p := sampled(Sampling{Temperature: 1, MinP: 1, Seed: seed(11)}); !slices.Equal(p, f.GreedyIDs) {
		t.Fatalf("min-p 1 gave %v, greedy is %v", p, f.GreedyIDs)
	}
}

func TestStops(t *testing.T) {
	f := loadFixture(t, "llama_linear") // greedy: 41 17 74 17 132 202 15 269 236 243 175 98 55 24 2 192 (2 is EOS)
	e := newTestEngine(t, "llama_linear", RunnerOptions{Slots: 2, MaxContext: 64}, Options{Detokenizer: wordDetok})
	t.Run("eos", func(t *testing.T) {
		res := generate(t, e, Request{Prompt: f.InputIDs, MaxTokens: 16})
		if want := f.GreedyIDs[:15]; !slices.Equal(res.IDs(), want) || res.FinishReason != FinishStop {
			t.Fatalf("got %v (%s), want %v ending with EOS (stop)", res.IDs(), res.FinishReason, want)
		}
		for i, tok := range res.Tokens {
			if tok.End != (i == 14) {
				t.Fatalf("token %d (%d) End=%v", i, tok.ID, tok.End)
			}
		}
		if want := "w41 w17 w74 w17 w132 w202 w15 w269 w236 w243 w175 w98 w55 w24 "; res.Text != want {
			t.Fatalf("text %q, want %q (no text for EOS)", res.Text, want)
		}
	})
	t.Run("stop token", func(t *testing.T) {
		res := generate(t, e, Request{Prompt: f.InputIDs, MaxTokens: 16, StopTokens: []int32{17}})
		if !slices.Equal(res.IDs(), []int32{41, 17}) || res.FinishReason != FinishStop || res.Text != "w41 " {
			t.Fatalf("got %v %q (%s), want [41 17] \"w41 \" (stop)", res.IDs(), res.Text, res.FinishReason)
		}
	})
	t.Run("stop string", func(t *testing.T) {
		res := generate(t, e, Request{Prompt: f.InputIDs, MaxTokens: 16, Stop: []string{"nope", "7 w132"}})
		if res.Text != "w41 w17 w74 w1" || res.FinishReason != FinishStop || len(res.Tokens) != 5 {
			t.Fatalf("got %q after %d tokens (%s), want \"w41 w17 w74 w1\" after 5 (stop)", res.Text, len(res.Tokens), res.FinishReason)
		}
	})
	t.Run("partial stop string released", func(t *testing.T) {
		res := generate(t, e, Request{Prompt: f.InputIDs, MaxTokens: 3, Stop: []string{"w74 w18"}})
		if res.Text != "w41 w17 w74 " || res.FinishReason != FinishLength {
			t.Fatalf("got %q (%s), want \"w41 w17 w74 \" (length)", res.Text, res.FinishReason)
		}
	})
	t.Run("max tokens", func(t *testing.T) {
		res := generate(t, e, Request{Prompt: f.InputIDs, MaxTokens: 5})
		if !slices.Equal(res.IDs(), f.GreedyIDs[:5]) || res.FinishReason != FinishLength {
			t.Fatalf("got %v (%s), want %v (length)", res.IDs(), res.FinishReason, f.GreedyIDs[:5])
		}
	})
	t.Run("context full", func(t *testing.T) {
		e := newTestEngine(t, "llama_linear", RunnerOptions{Slots: 1, MaxContext: 20}, Options{})
		res := generate(t, e, Request{Prompt: f.InputIDs, IgnoreEOS: true})
		if !slices.Equal(res.IDs(), f.GreedyIDs[:8]) || res.FinishReason != FinishLength {
			t.Fatalf("got %v (%s), want %v (length: 12 prompt + 8 = 20)", res.IDs(), res.FinishReason, f.GreedyIDs[:8])
		}
	})
}

func TestBadRequests(t *testing.T) {
	e := newTestEngine(t, "qwen3", RunnerOptions{Slots: 1, MaxContext: 32}, Options{})
	long := make([]int32, 32)
	_, err := e.Generate(context.Background(), Request{Prompt: long})
	var ce *ContextError
	if !errors.As(err, &ce) || ce.Tokens != 32 || ce.Limit != 32 || !strings.Contains(err.Error(), "at most 31 prompt tokens") {
		t.Fatalf("32-token prompt in a 32-token context: %v", err)
	}
	for name, req := range map[string]Request{
		"empty":          {},
		"out of vocab":   {Prompt: []int32{1, 300}},
		"negative":       {Prompt: []int32{-1}},
		"temperature":    {Prompt: []int32{1}, Sampling: Sampling{Temperature: -1}},
		"top_p":          {Prompt: []int32{1}, Sampling: Sampling{TopP: 2}},
		"top_logprobs":   {Prompt: []int32{1}, Sampling: Sampling{TopLogprobs: 21}},
		"max tokens":     {Prompt: []int32{1}, MaxTokens: -1},
		"stop, no detok": {Prompt: []int32{1}, Stop: []string{"x"}},
		"adapter":        {Prompt: []int32{1}, Adapter: 1},
	} {
		if _, err := e.Generate(context.Background(), req); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// The engine still serves.
	f := loadFixture(t, "qwen3")
	if res := generate(t, e, Request{Prompt: f.InputIDs, MaxTokens: 4}); !slices.Equal(res.IDs(), f.GreedyIDs[:4]) {
		t.Fatalf("after bad requests: %v, want %v", res.IDs(), f.GreedyIDs[:4])
	}
}

// TestCancelFreesSlot cancels a running request on a one-slot engine while
// a second request waits, and expects the second to run.
func TestCancelFreesSlot(t *testing.T) {
	f := loadFixture(t, "llama")
	inDecode, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	detok := DecodeFunc(func(ids []int32) (string, error) {
		once.Do(func() { close(inDecode); <-release }) // hold the scheduler on the first token
		return wordDetok(ids)
	})
	e := newTestEngine(t, "llama", RunnerOptions{Slots: 1, MaxContext: 64}, Options{Detokenizer: detok})
	ctx, cancel := context.WithCancel(context.Background())
	first, err := e.Generate(ctx, Request{Prompt: f.InputIDs, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	<-inDecode
	queued, err := e.Generate(context.Background(), Request{Prompt: f.InputIDs, MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	close(release)
	res, err := first.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request ended with %v", err)
	}
	if n := len(res.Tokens); n == 0 || n >= 64-len(f.InputIDs) {
		t.Fatalf("cancelled request made %d tokens", n)
	}
	res2, err := queued.Wait()
	if err != nil || !slices.Equal(res2.IDs(), f.GreedyIDs[:3]) {
		t.Fatalf("queued request after the cancel: %v, %v (want %v)", res2.IDs(), err, f.GreedyIDs[:3])
	}

	// A request cancelled while queued never runs.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	s, err := e.Generate(ctx2, Request{Prompt: f.InputIDs})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Wait(); !errors.Is(err, context.Canceled) || len(res.Tokens) != 0 {
		t.Fatalf("request cancelled before it ran: %d tokens, %v", len(res.Tokens), err)
	}
}

func TestClose(t *testing.T) {
	e := New(newTestRunner(t, "qwen2", RunnerOptions{Slots: 1, MaxContext: 32}), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Generate(context.Background(), Request{Prompt: []int32{1}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("generate after close: %v", err)
	}
}

// TestDetokenizerPanicFailsOneRequest: a detokenizer that panics on one
// token fails that request with an error; the engine keeps serving.
func TestDetokenizerPanicFailsOneRequest(t *testing.T) {
	f := loadFixture(t, "qwen2")
	bad := f.GreedyIDs[2]
	detok := DecodeFunc(func(ids []int32) (string, error) {
		for _, id := range ids {
			if id == bad {
				panic("no such token")
			}
		}
		return wordDetok(ids)
	})
	e := newTestEngine(t, "qwen2", RunnerOptions{Slots: 2, MaxContext: 64}, Options{Detokenizer: detok})
	s, err := e.Generate(context.Background(), Request{Prompt: f.InputIDs, MaxTokens: 8})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.Wait(); err == nil || !strings.Contains(err.Error(), "no such token") || len(res.Tokens) != 2 {
		t.Fatalf("got %d tokens and error %v, want 2 tokens and the detokenizer's panic as an error", len(res.Tokens), err)
	}
	if res := generate(t, e, Request{Prompt: f.InputIDs, MaxTokens: 2}); !slices.Equal(res.IDs(), f.GreedyIDs[:2]) {
		t.Fatalf("after the failure: %v", res.IDs())
	}
	if st := e.Stats(); st.Slots != 2 || st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
}
