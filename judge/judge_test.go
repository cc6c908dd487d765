package judge_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/judge"
	popenai "github.com/foundryhq/foundry/provider/openai"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/upstreamtest"
)

// pricedJudge plays a judge whose reply is chosen by reply(req) and keeps
// the expected USD cost of its calls (the fake counts tokens in words).
type pricedJudge struct {
	t     *testing.T
	mu    sync.Mutex
	cost  float64
	calls int
}

func (p *pricedJudge) on(up *upstreamtest.OpenAI, reply func(req *api.ChatRequest) string) {
	up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		content := reply(req)
		in := 0
		for _, m := range req.Messages {
			in += upstreamtest.WordCount(m.Content.String())
		}
		p.mu.Lock()
		p.cost += wordCost(p.t, req.Model, in, upstreamtest.WordCount(content))
		p.calls++
		p.mu.Unlock()
		return upstreamtest.Reply{Content: content}
	})
}

func TestScoreThroughGateway(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true)
	pj := &pricedJudge{t: t}
	pj.on(e.up, func(req *api.ChatRequest) string {
		switch section(req, "## Answer to grade") {
		case "Paris.":
			return `{"score": 9, "reason": "correct and brief"}`
		case "Lyon.":
			return "```json\n{\"score\": 2, \"reason\": \"wrong city\"}\n```"
		default:
			return "Here is my grading.\n{\"score\": 5, \"reason\": \"vague\"}\nHope this helps!"
		}
	})
	j := newJudge(t, judge.NewHTTP(e.URL, "sk-client"), nil)
	conv := []api.Message{{Role: "system", Content: api.TextContent("Answer in one word.")}, user("Capital of France?")}
	ref := "Paris."
	var total float64
	for _, tc := range []struct {
		answer string
		score  int
		reason string
	}{{"Paris.", 9, "correct and brief"}, {"Lyon.", 2, "wrong city"}, {"A city in Europe.", 5, "vague"}} {
		v, err := j.Score(ctx, judge.Item{Messages: conv, Answer: assistant(tc.answer), Rubric: "Names the capital correctly.", Reference: &ref})
		if err != nil {
			t.Fatalf("score %q: %v", tc.answer, err)
		}
		if v.Score != tc.score || v.Reason != tc.reason || v.Cached || v.Usage.Calls != 1 || v.Usage.CostUSD <= 0 || v.Usage.PromptTokens == 0 {
			t.Fatalf("score %q: %+v, want %d %q", tc.answer, v, tc.score, tc.reason)
		}
		total += v.Usage.CostUSD
	}

	// The judge's own cost: priced from the upstream's usage, summed.
	st := j.Stats()
	if st.Verdicts != 3 || st.CacheHits != 0 || st.Spent.Calls != 3 || !near(st.Spent.CostUSD, pj.cost) || !near(total, pj.cost) {
		t.Fatalf("stats %+v, verdict costs %g; the fake's calls cost %g", st, total, pj.cost)
	}

	// Strict JSON at temperature 0 with the seed, the prompt and the answer in it.
	reqs := e.chatRequests(t)
	if len(reqs) != 3 {
		t.Fatalf("%d upstream calls, want 3", len(reqs))
	}
	r := reqs[0]
	if r.Model != "gpt-4o" || r.ResponseFormat == nil || r.ResponseFormat.Type != "json_object" ||
		r.Temperature == nil || *r.Temperature != 0 || r.Seed == nil || *r.Seed != 42 || r.Stream {
		t.Fatalf("judge request: %+v", r)
	}
	if section(&r, "## Rubric") != "Names the capital correctly." || section(&r, "## Reference answer") != "Paris." ||
		!strings.Contains(section(&r, "## Conversation"), "[user] Capital of France?") {
		t.Fatalf("judge prompt:\n%s", r.Messages[1].Content.String())
	}

	// Captured by the gateway, tagged as judge traffic and priced.
	if err := e.capt.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := e.st.ListRecords(ctx, store.Query{Tags: []string{"judge"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 3 {
		t.Fatalf("%d records tagged judge, want 3", len(page.Records))
	}
	for _, rec := range page.Records {
		if rec.Model != "gpt-4o" || rec.CostUSD <= 0 {
			t.Fatalf("captured judge call: %+v", rec.Record)
		}
	}
}

func TestGarbageIsRepairedOnceThenErrGarbage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	conv := []api.Message{user("Is 7 prime?")}

	t.Run("repaired", func(t *testing.T) {
		e.up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
			if len(req.Messages) > 2 {
				return upstreamtest.Reply{Content: `{"score": 8, "reason": "fixed"}`}
			}
			return upstreamtest.Reply{Content: "I'd give it a solid eight."}
		})
		before := len(e.chatRequests(t))
		j := newJudge(t, judge.NewHTTP(e.URL, ""), nil)
		v, err := j.Score(ctx, judge.Item{Messages: conv, Answer: assistant("Yes.")})
		if err != nil || v.Score != 8 || v.Usage.Calls != 2 {
			t.Fatalf("verdict %+v, err %v", v, err)
		}
		reqs := e.chatRequests(t)[before:]
		if len(reqs) != 2 {
			t.Fatalf("%d calls, want 2", len(reqs))
		}
		m := reqs[1].Messages
		if len(m) != 4 || m[2].Role != "assistant" || m[2].Content.String() != "I'd give it a solid eight." ||
			!strings.Contains(m[3].Content.String(), "no JSON object") || !strings.Contains(m[3].Content.String(), `{"score"`) {
			t.Fatalf("repair request: %+v", m)
		}
	})

	t.Run("garbage", func(t *testing.T) {
		e.up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
			return upstreamtest.Reply{Content: `{"score": 11, "reason": "amazing"}`}
		})
		cache := openCache(t, filepath.Join(t.TempDir(), "judge.db"))
		j := newJudge(t, judge.NewHTTP(e.URL, ""), cache)
		for run := 0; run < 2; run++ {
			before := len(e.chatRequests(t))
			v, err := j.Score(ctx, judge.Item{Messages: conv, Answer: assistant("Yes.")})
			if !errors.Is(err, judge.ErrGarbage) {
				t.Fatalf("run %d: err %v, want ErrGarbage", run, err)
			}
			var ge *judge.GarbageError
			if !errors.As(err, &ge) || len(ge.Answers) != 2 || ge.Answers[1] != `{"score": 11, "reason": "amazing"}` ||
				!strings.Contains(ge.Problem, "outside 1-10") || ge.Version != judge.PointwiseVersion {
				t.Fatalf("garbage error %#v", ge)
			}
			if v.Usage.Calls != 2 || v.Usage.CostUSD <= 0 {
				t.Fatalf("a garbage verdict's usage still counts: %+v", v.Usage)
			}
			// Garbage is never cached: a re-run asks again.
			if got := len(e.chatRequests(t)) - before; got != 2 {
				t.Fatalf("run %d: %d calls, want 2", run, got)
			}
		}
		if st := j.Stats(); st.Garbage != 2 || st.Verdicts != 2 || st.Spent.Calls != 4 {
			t.Fatalf("stats %+v", st)
		}
		if n, err := cache.Len(ctx); err != nil || n != 0 {
			t.Fatalf("cache holds %d entries (%v), want none", n, err)
		}
	})
}

func TestComparePositionSwap(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	j := newJudge(t, judge.NewHTTP(e.URL, ""), nil)
	conv := []api.Message{user("Write a haiku about rain.")}
	good, bad := assistant("good: soft rain on the roof"), assistant("bad: rain is wet")

	for _, tc := range []struct {
		name       string
		judge      func(first, second string) string
		a, b       api.Message
		winner     string
		consistent bool
		said       [2]string // First.Said, Swapped.Said
	}{
		{"biased to position A", func(_, _ string) string { return "A" }, good, bad, judge.Tie, false, [2]string{"A", "A"}},
		{"fair, b better", pickGood, bad, good, judge.WinnerB, true, [2]string{"B", "A"}},
		{"fair, a better", pickGood, good, bad, judge.WinnerA, true, [2]string{"A", "B"}},
		{"both ties", func(_, _ string) string { return "tie" }, good, bad, judge.Tie, true, [2]string{"tie", "tie"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var shown [][2]string
			e.up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
				if judgeKind(req) != "pairwise" {
					t.Errorf("not a pairwise judge call: %v", req.Messages[0].Content.String())
				}
				first, second := section(req, "## Answer A"), section(req, "## Answer B")
				mu.Lock()
				shown = append(shown, [2]string{first, second})
				mu.Unlock()
				return upstreamtest.Reply{Content: `{"winner": "` + tc.judge(first, second) + `", "reason": "because"}`}
			})
			p, err := j.Compare(ctx, conv, tc.a, tc.b, "A vivid haiku.")
			if err != nil {
				t.Fatal(err)
			}
			if p.Winner != tc.winner || p.Consistent != tc.consistent || p.First.Said != tc.said[0] || p.Swapped.Said != tc.said[1] {
				t.Fatalf("preference %+v, want winner %s consistent %v said %v", p, tc.winner, tc.consistent, tc.said)
			}
			if p.First.Winner != p.First.Said || p.Reason != "because" || p.Usage.Calls != 2 || p.Usage.CostUSD <= 0 {
				t.Fatalf("preference %+v", p)
			}
			// Asked twice, once in each order.
			a, b := tc.a.Content.String(), tc.b.Content.String()
			if len(shown) != 2 || !(shown[0] == [2]string{a, b} && shown[1] == [2]string{b, a} || shown[0] == [2]string{b, a} && shown[1] == [2]string{a, b}) {
				t.Fatalf("orders shown %q", shown)
			}
		})
	}
}

// pickGood is a fair judge: it picks the position of the answer marked good.
func pickGood(first, second string) string {
	switch {
	case strings.HasPrefix(first, "good"):
		return "A"
	case strings.HasPrefix(second, "good"):
		return "B"
	}
	return "tie"
}

func TestCacheHitsCostNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	e.up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		if judgeKind(req) == "pairwise" {
			return upstreamtest.Reply{Content: `{"winner": "A", "reason": "first"}`}
		}
		return upstreamtest.Reply{Content: `{"score": 6, "reason": "fine"}`}
	})
	path := filepath.Join(t.TempDir(), "judge.db")
	conv := []api.Message{user("Summarise: the cat sat on the mat.")}
	answers := []string{"A cat sat.", "The cat was on a mat.", "Mat."}
	run := func(j *judge.Judge) (cached int) {
		t.Helper()
		for _, a := range answers {
			v, err := j.Score(ctx, judge.Item{Messages: conv, Answer: assistant(a), Rubric: "faithful"})
			if err != nil || v.Score != 6 || v.Usage.Calls != 1 {
				t.Fatalf("score %q: %+v %v", a, v, err)
			}
			if v.Cached {
				cached++
			}
		}
		p, err := j.Compare(ctx, conv, assistant(answers[0]), assistant(answers[1]), "faithful")
		if err != nil || p.Winner != judge.Tie || p.Usage.Calls != 2 {
			t.Fatalf("compare: %+v %v", p, err)
		}
		if p.Cached {
			cached += 2
		}
		return cached
	}

	c1 := openCache(t, path)
	j1 := newJudge(t, judge.NewHTTP(e.URL, ""), c1)
	if got := run(j1); got != 0 {
		t.Fatalf("first run: %d cached verdicts, want 0", got)
	}
	first := len(e.chatRequests(t))
	if first != 5 {
		t.Fatalf("first run made %d calls, want 5", first)
	}
	if n, err := c1.Len(ctx); err != nil || n != 5 {
		t.Fatalf("cache holds %d (%v), want 5", n, err)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}

	// A re-run from the same file pays nothing.
	j2 := newJudge(t, judge.NewHTTP(e.URL, ""), openCache(t, path))
	if got := run(j2); got != 5 {
		t.Fatalf("second run: %d cached verdicts, want 5", got)
	}
	if n := len(e.chatRequests(t)); n != first {
		t.Fatalf("second run made %d upstream calls, want 0", n-first)
	}
	s1, s2 := j1.Stats(), j2.Stats()
	if s2.CacheHits != 5 || s2.Spent.Calls != 0 || s2.Spent.CostUSD != 0 || !near(s2.Saved.CostUSD, s1.Spent.CostUSD) || s1.Spent.CostUSD <= 0 {
		t.Fatalf("stats: first %+v, second %+v", s1, s2)
	}

	// Another rubric or another judge model is another verdict.
	if _, err := j2.Score(ctx, judge.Item{Messages: conv, Answer: assistant(answers[0]), Rubric: "brief"}); err != nil {
		t.Fatal(err)
	}
	j3, err := judge.New(judge.Options{Chatter: judge.NewHTTP(e.URL, ""), Model: "gpt-4o-mini", Cache: openCache(t, path)})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := j3.Score(ctx, judge.Item{Messages: conv, Answer: assistant(answers[0]), Rubric: "faithful"}); err != nil || v.Cached {
		t.Fatalf("other model: %+v %v", v, err)
	}
	if n := len(e.chatRequests(t)); n != first+2 {
		t.Fatalf("%d new calls, want 2", n-first)
	}
}

func TestConcurrencyLimitAcrossCalls(t *testing.T) {
	const limit, items = 3, 12
	up := upstreamtest.NewOpenAI(t)
	var inFlight, peak atomic.Int64
	arrived := make(chan struct{}, items*2)
	release := make(chan struct{})
	up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		inFlight.Add(-1)
		if judgeKind(req) == "pairwise" {
			return upstreamtest.Reply{Content: `{"winner": "tie", "reason": "same"}`}
		}
		return upstreamtest.Reply{Content: `{"score": 7, "reason": "ok"}`}
	})
	j, err := judge.New(judge.Options{Chatter: judge.NewHTTP(up.URL, "sk-judge"), Model: "gpt-4o", Concurrency: limit})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	errs := make(chan error, items)
	for i := range items {
		go func() {
			// Half scores, half pairwise comparisons (two calls each): one limit for all.
			var err error
			if i%2 == 0 {
				_, err = j.Score(ctx, judge.Item{Messages: []api.Message{user("q")}, Answer: assistant(strings.Repeat("a", i+1))})
			} else {
				_, err = j.Compare(ctx, []api.Message{user("q")}, assistant("x"), assistant(strings.Repeat("b", i+1)), "")
			}
			errs <- err
		}()
	}
	// The limit is reached...
	for range limit {
		<-arrived
	}
	// ...and no further call arrives while those are held. The timer only
	// bounds how long the test looks for a violation: a correct judge passes
	// whatever the timing, one without a limit sends all its calls at once.
	select {
	case <-arrived:
		t.Errorf("call %d reached the upstream while %d were in flight", limit+1, limit)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	for range items {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p != limit {
		t.Fatalf("peak in-flight judge calls %d, want %d", p, limit)
	}
	reqs := up.Requests()
	if len(reqs) != items/2+items/2*2 { // scores, and compares of two calls each
		t.Fatalf("%d calls", len(reqs))
	}
	for _, r := range reqs {
		if r.Header.Get("X-Foundry-Tags") != "judge" || r.Header.Get("Authorization") != "Bearer sk-judge" {
			t.Fatalf("headers %v", r.Header)
		}
	}
}

func TestUpstreamErrorIsReported(t *testing.T) {
	e := newEnv(t, false)
	e.up.Fail(upstreamtest.Fault{Status: 400, Message: "model_not_found: no such judge"})
	j := newJudge(t, judge.NewHTTP(e.URL, ""), nil)
	_, err := j.Score(context.Background(), judge.Item{Messages: []api.Message{user("q")}, Answer: assistant("a")})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(err.Error(), "no such judge") || errors.Is(err, judge.ErrGarbage) {
		t.Fatalf("err %v", err)
	}
	if st := j.Stats(); st.Failed != 1 || st.Garbage != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTally(t *testing.T) {
	var tl judge.Tally
	sum := 0.0
	for _, p := range []judge.Preference{
		{Winner: judge.WinnerA, Consistent: true}, {Winner: judge.WinnerA, Consistent: true}, {Winner: judge.WinnerB, Consistent: true},
		{Winner: judge.Tie, Consistent: true}, {Winner: judge.Tie, Consistent: false},
	} {
		tl.Add(p)
		sum += p.Points()
	}
	if tl != (judge.Tally{Wins: 2, Losses: 1, Ties: 2, Inconsistent: 1}) || tl.N() != 5 || tl.WinRate() != 0.6 || sum/5 != tl.WinRate() {
		t.Fatalf("tally %+v, win rate %g, mean points %g", tl, tl.WinRate(), sum/5)
	}
	if (judge.Tally{}).WinRate() != 0 {
		t.Fatal("empty tally")
	}
}

func TestConcurrentIdenticalVerdictsArePaidOnce(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	arrived := make(chan struct{}, 8)
	release := make(chan struct{})
	up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		arrived <- struct{}{}
		<-release
		return upstreamtest.Reply{Content: `{"score": 4, "reason": "meh"}`}
	})
	j := newJudge(t, judge.NewHTTP(up.URL, ""), openCache(t, filepath.Join(t.TempDir(), "judge.db")))
	it := judge.Item{Messages: []api.Message{user("q")}, Answer: assistant("same answer")}
	const callers = 5
	type result struct {
		v   judge.Verdict
		err error
	}
	results := make(chan result, callers)
	for range callers {
		go func() {
			v, err := j.Score(context.Background(), it)
			results <- result{v, err}
		}()
	}
	<-arrived
	close(release)
	paid := 0
	for range callers {
		r := <-results
		if r.err != nil || r.v.Score != 4 {
			t.Fatalf("%+v", r)
		}
		if !r.v.Cached {
			paid++
		}
	}
	// Each caller either waited for the first call or found its verdict in the cache.
	if n := len(up.Requests()); n != 1 || paid != 1 {
		t.Fatalf("%d upstream calls, %d verdicts paid for; want 1", n, paid)
	}
	if st := j.Stats(); st.Verdicts != callers || st.CacheHits != callers-1 || st.Spent.Calls != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A provider can be the judge directly, without HTTP to the gateway.
func TestProviderAsChatter(t *testing.T) {
	up := upstreamtest.NewOpenAI(t)
	up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		return upstreamtest.Reply{Content: `{"score": 10, "reason": "direct"}`}
	})
	j := newJudge(t, popenai.New(popenai.Options{BaseURL: up.URL, APIKey: "k"}), nil)
	v, err := j.Score(context.Background(), judge.Item{Messages: []api.Message{user("q")}, Answer: assistant("a")})
	if err != nil || v.Score != 10 || v.Reason != "direct" || v.Usage.CostUSD <= 0 {
		t.Fatalf("%+v %v", v, err)
	}
}
