package judge_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/upstreamtest"
)

// teacherAndJudge scripts the fake: teacher calls answer "quality Q for
// <prompt>" with Q = quality(prompt, seed); judge calls score an answer by
// its Q. It sums the expected cost of each role.
type teacherAndJudge struct {
	t       *testing.T
	quality func(prompt string, seed int64) int
	mu      sync.Mutex
	teacher float64
	judge   float64
}

func (f *teacherAndJudge) install(up *upstreamtest.OpenAI) {
	up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		var content string
		if judgeKind(req) == "pointwise" {
			var q int
			var prompt string
			if _, err := fmt.Sscanf(section(req, "## Answer to grade"), "quality %d for %s", &q, &prompt); err != nil {
				f.t.Errorf("judge got an answer it cannot read: %v\n%s", err, req.Messages[1].Content.String())
			}
			content = fmt.Sprintf(`{"score": %d, "reason": "quality %d"}`, q, q)
		} else {
			prompt := req.Messages[len(req.Messages)-1].Content.String()
			content = fmt.Sprintf("quality %d for %s seed %d", f.quality(prompt, *req.Seed), prompt, *req.Seed)
		}
		in := 0
		for _, m := range req.Messages {
			in += upstreamtest.WordCount(m.Content.String())
		}
		cost := wordCost(f.t, req.Model, in, upstreamtest.WordCount(content))
		f.mu.Lock()
		if judgeKind(req) != "" {
			f.judge += cost
		} else {
			f.teacher += cost
		}
		f.mu.Unlock()
		return upstreamtest.Reply{Content: content}
	})
}

func teacherRequests(t *testing.T, e *env) []api.ChatRequest {
	var out []api.ChatRequest
	for _, r := range e.chatRequests(t) {
		if judgeKind(&r) == "" {
			out = append(out, r)
		}
	}
	return out
}

func newBestOfN(t *testing.T, j *judge.Judge, teacher judge.Chatter, o judge.BestOfNOptions) *judge.BestOfN {
	t.Helper()
	o.Teacher, o.Model = teacher, "gpt-4o-mini"
	b, err := judge.NewBestOfN(j, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func teacherHTTP(url string) *judge.HTTP {
	h := judge.NewHTTP(url, "")
	h.Tags = "teacher"
	return h
}

func TestBestOfNKeepsTheBestAndRejectsBelowBar(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	qualities := map[string][]int{"good-prompt": {3, 9, 6}, "weak-prompt": {2, 4, 5}}
	f := &teacherAndJudge{t: t, quality: func(p string, seed int64) int { return qualities[p][seed-100] }}
	f.install(e.up)
	j := newJudge(t, judge.NewHTTP(e.URL, ""), nil)
	b := newBestOfN(t, j, teacherHTTP(e.URL), judge.BestOfNOptions{N: 3, Temperature: 0.7, Bar: 7, Seed: 100, OneRequestPerSample: true, Rubric: "high quality"})

	good, err := b.Run(ctx, []api.Message{user("good-prompt")})
	if err != nil {
		t.Fatal(err)
	}
	if !good.Accepted || good.Index != 1 || good.Score != 9 || good.Answer.Content.String() != "quality 9 for good-prompt seed 101" || good.Reason != "quality 9" || len(good.Samples) != 3 {
		t.Fatalf("good prompt: %+v", good)
	}
	for i, want := range qualities["good-prompt"] {
		if s := good.Samples[i]; s.Err != nil || s.Verdict.Score != want {
			t.Fatalf("sample %d: %+v, want score %d", i, s, want)
		}
	}
	weak, err := b.Run(ctx, []api.Message{user("weak-prompt")})
	if err != nil {
		t.Fatal(err)
	}
	if weak.Accepted || weak.Index != 2 || weak.Score != 5 || !strings.Contains(weak.Reason, "scored 5, under the bar of 7") {
		t.Fatalf("weak prompt: %+v", weak)
	}

	// N requests without n, at temperature T, seeds Seed..Seed+N-1.
	reqs := teacherRequests(t, e)
	if len(reqs) != 6 {
		t.Fatalf("%d teacher requests, want 6", len(reqs))
	}
	seeds := map[int64]int{}
	for _, r := range reqs {
		if r.N != nil || r.Temperature == nil || *r.Temperature != 0.7 || r.Model != "gpt-4o-mini" || r.ResponseFormat != nil {
			t.Fatalf("teacher request %+v", r)
		}
		seeds[*r.Seed]++
	}
	if seeds[100] != 2 || seeds[101] != 2 || seeds[102] != 2 {
		t.Fatalf("seeds %v", seeds)
	}

	// Teacher and judge costs, each as the upstream's usage prices them.
	teacher, judgeCost := good.Teacher.CostUSD+weak.Teacher.CostUSD, good.Judge.CostUSD+weak.Judge.CostUSD
	if !near(teacher, f.teacher) || !near(judgeCost, f.judge) || good.Teacher.Calls != 3 || good.Judge.Calls != 3 || teacher <= 0 {
		t.Fatalf("teacher %g (fake %g), judge %g (fake %g); %+v %+v", teacher, f.teacher, judgeCost, f.judge, good.Teacher, good.Judge)
	}
	if !near(j.Stats().Spent.CostUSD, f.judge) {
		t.Fatalf("judge stats %+v, fake %g", j.Stats(), f.judge)
	}
}

// firstChoiceOnly is an upstream that ignores n.
type firstChoiceOnly struct{ judge.Chatter }

func (c firstChoiceOnly) Chat(ctx context.Context, req *api.ChatRequest) (*api.ChatResponse, error) {
	resp, err := c.Chatter.Chat(ctx, req)
	if err == nil && len(resp.Choices) > 1 {
		resp.Choices = resp.Choices[:1]
	}
	return resp, err
}

func TestBestOfNOneRequestWithN(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		teacher  func(url string) judge.Chatter
		ns       []int // n of each teacher request (0: absent)
		verdicts int   // judge calls: identical samples are judged once
	}{
		// The fake answers n identical choices.
		{"upstream supports n", func(url string) judge.Chatter { return teacherHTTP(url) }, []int{3}, 1},
		{"upstream ignores n", func(url string) judge.Chatter { return firstChoiceOnly{teacherHTTP(url)} }, []int{3, 0, 0}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, false)
			f := &teacherAndJudge{t: t, quality: func(string, int64) int { return 8 }}
			f.install(e.up)
			b := newBestOfN(t, newJudge(t, judge.NewHTTP(e.URL, ""), nil), tc.teacher(e.URL), judge.BestOfNOptions{N: 3})
			best, err := b.Run(ctx, []api.Message{user("p")})
			if err != nil {
				t.Fatal(err)
			}
			if !best.Accepted || best.Score != 8 || len(best.Samples) != 3 || best.Teacher.Calls != len(tc.ns) || best.Judge.Calls != tc.verdicts {
				t.Fatalf("%+v", best)
			}
			reqs := teacherRequests(t, e)
			var ns []int
			for _, r := range reqs {
				n := 0
				if r.N != nil {
					n = *r.N
				}
				ns = append(ns, n)
				if *r.Temperature != 1 {
					t.Fatalf("default temperature %v, want 1", *r.Temperature)
				}
			}
			if fmt.Sprint(ns) != fmt.Sprint(tc.ns) {
				t.Fatalf("teacher requests' n %v, want %v", ns, tc.ns)
			}
			for i, s := range best.Samples {
				if s.Err != nil || s.Verdict.Score != 8 {
					t.Fatalf("sample %d: %+v", i, s)
				}
			}
		})
	}
}

func TestBestOfNResumesAfterFailure(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	f := &teacherAndJudge{t: t, quality: func(string, int64) int { return 8 }}
	f.install(e.up)
	path := filepath.Join(t.TempDir(), "judge.db")
	prompts := make([][]api.Message, 5)
	for i := range prompts {
		prompts[i] = []api.Message{user(fmt.Sprintf("prompt-%d", i))}
	}
	// Each prompt costs 4 calls (two teacher samples, then two verdicts);
	// call 11, a verdict of the third prompt, fails.
	e.up.Fail(make([]upstreamtest.Fault, 10)...)
	e.up.Fail(upstreamtest.Fault{Status: 500, Message: "judge overloaded"})

	runAll := func() (done int, results []judge.Best, err error) {
		c := openCache(t, path)
		defer c.Close()
		j := newJudge(t, judge.NewHTTP(e.URL, ""), c)
		b := newBestOfN(t, j, teacherHTTP(e.URL), judge.BestOfNOptions{N: 2, Bar: 7, OneRequestPerSample: true})
		for _, p := range prompts {
			best, err := b.Run(ctx, p)
			if err != nil {
				return done, results, err
			}
			results = append(results, best)
			done++
		}
		return done, results, nil
	}

	done, _, err := runAll()
	if err == nil || done != 2 || !strings.Contains(err.Error(), "judge overloaded") {
		t.Fatalf("first run: %d done, err %v; want a failure on the third prompt", done, err)
	}
	before := len(e.chatRequests(t))
	if before != 12 {
		t.Fatalf("first run made %d calls, want 12", before)
	}

	done, results, err := runAll()
	if err != nil || done != 5 {
		t.Fatalf("resumed run: %d done, %v", done, err)
	}
	resumed := e.chatRequests(t)[before:]
	// The third prompt redoes only its failed verdict; the last two run in full.
	if len(resumed) != 1+4+4 {
		t.Fatalf("resumed run made %d calls, want 9", len(resumed))
	}
	for _, r := range resumed {
		text := r.Messages[len(r.Messages)-1].Content.String()
		if strings.Contains(text, "prompt-0") || strings.Contains(text, "prompt-1") {
			t.Fatalf("a finished prompt was paid for again: %s", text)
		}
	}
	for i, r := range results {
		if !r.Accepted || r.Score != 8 || r.Cached != (i < 2) {
			t.Fatalf("prompt %d: %+v", i, r)
		}
	}
	// Cached results still report what they cost when made.
	if results[0].Teacher.CostUSD <= 0 || results[0].Judge.CostUSD <= 0 {
		t.Fatalf("cached result lost its cost: %+v", results[0])
	}
}
