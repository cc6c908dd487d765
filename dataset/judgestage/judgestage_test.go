package judgestage_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/foundryhq/foundry/gateway/gatewaytest"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/capture"
	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/dataset/judgestage"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/upstreamtest"
)

// fake is the real gateway in front of a fake OpenAI upstream that plays
// judge and teacher. The judge scores an answer by its "[q=N]" marker and
// answers garbage about answers marked "[garbage]"; the teacher answers
// with the quality teacherQ gives the prompt and the sample's seed.
type fake struct {
	t   *testing.T
	up  *upstreamtest.OpenAI
	url string // the gateway's /v1 base

	mu        sync.Mutex
	judgeCost float64 // what the judge calls answered so far cost, by the price table
	teachCost float64
	calls     int // chat calls answered or failed
	failOn    int // fail this call (1-based) with a 500; 0: none
	// failFirst, when set, fails the first call it matches with a 500.
	failFirst func(req *api.ChatRequest) bool
	answered  map[string]int
	teacherQ  func(prompt string, seed int64) int

	st   store.Store // with newFakeStore: calls through the gateway are captured here
	capt *capture.Capturer
}

var marker = regexp.MustCompile(`\[q=(\d+)\]`)

func newFake(t *testing.T) *fake { return startFake(t, false) }

// newFakeStore is newFake with the gateway capturing into a SQLite store.
func newFakeStore(t *testing.T) *fake { return startFake(t, true) }

func startFake(t *testing.T, withStore bool) *fake {
	t.Helper()
	f := &fake{t: t, up: upstreamtest.NewOpenAI(t), answered: map[string]int{}}
	// No gateway retries: the fake's count is then exactly the calls the stages made.
	g := gatewaytest.Start(t, gatewaytest.Options{Upstream: f.up.URL, Capture: withStore, Retries: -1})
	f.url, f.st, f.capt = g.URL, g.Store, g.Capture
	f.up.OnChat(f.reply)
	return f
}

func (f *fake) reply(req *api.ChatRequest) upstreamtest.Reply {
	body, _ := json.Marshal(req)
	f.mu.Lock()
	f.calls++
	if f.failFirst != nil && f.failFirst(req) {
		f.failFirst = nil
		f.mu.Unlock()
		return upstreamtest.Reply{Fault: upstreamtest.Fault{Status: 500, Message: "planted failure"}}
	}
	if f.calls == f.failOn {
		f.mu.Unlock()
		return upstreamtest.Reply{Fault: upstreamtest.Fault{Status: 500, Message: "planted failure"}}
	}
	f.answered[string(body)]++
	f.mu.Unlock()

	system := ""
	if len(req.Messages) > 0 {
		system = req.Messages[0].Content.String()
	}
	isJudge := system == judge.PointwiseV1 || system == judge.PairwiseV1
	var content string
	if system == judge.PairwiseV1 {
		content = f.prefer(req.Messages[1].Content.String())
	} else if isJudge {
		user := req.Messages[1].Content.String()
		answer := user[strings.Index(user, "## Answer to grade"):]
		switch m := marker.FindStringSubmatch(answer); {
		case strings.Contains(answer, "[garbage]"):
			content = "This answer seems fine to me overall."
		case m != nil:
			content = fmt.Sprintf(`{"score": %s, "reason": "quality %s"}`, m[1], m[1])
		default:
			f.t.Errorf("the judge got an answer without a marker: %s", answer)
		}
	} else if f.teacherQ == nil { // an app's call
		prompt := req.Messages[len(req.Messages)-1].Content.String()
		content = "An app's answer to " + prompt
		if m := marker.FindStringSubmatch(prompt); m != nil {
			content += " [q=" + m[1] + "]"
		}
	} else {
		prompt := req.Messages[len(req.Messages)-1].Content.String()
		content = fmt.Sprintf("Teacher answer about %q seed %d [q=%d]", prompt, *req.Seed, f.teacherQ(prompt, *req.Seed))
	}
	in := 0
	for _, m := range req.Messages {
		in += upstreamtest.WordCount(m.Content.String())
	}
	cost, ok := pricing.New(nil).Cost(req.Model, in, 0, upstreamtest.WordCount(content))
	if !ok {
		f.t.Errorf("no price for %s", req.Model)
	}
	f.mu.Lock()
	if isJudge {
		f.judgeCost += cost
	} else {
		f.teachCost += cost
	}
	f.mu.Unlock()
	return upstreamtest.Reply{Content: content}
}

// prefer is the pairwise judge: the answer with the higher "[q=N]" wins;
// for equal ones it is biased to the answer shown first, so the two orders
// disagree. An answer marked "[garbage]" gets a garbage verdict.
func (f *fake) prefer(user string) string {
	ia, ib := strings.Index(user, "## Answer A"), strings.Index(user, "## Answer B")
	if ia < 0 || ib < ia {
		f.t.Errorf("pairwise prompt without its answers: %s", user)
		return "?"
	}
	a, b := user[ia:ib], user[ib:]
	if strings.Contains(a, "[garbage]") || strings.Contains(b, "[garbage]") {
		return "Both answers look reasonable."
	}
	ma, mb := marker.FindStringSubmatch(a), marker.FindStringSubmatch(b)
	if ma == nil || mb == nil {
		f.t.Errorf("the pairwise judge got an answer without a marker: %s", user)
		return "?"
	}
	qa, _ := strconv.Atoi(ma[1])
	qb, _ := strconv.Atoi(mb[1])
	w := "A"
	if qb > qa {
		w = "B"
	}
	return fmt.Sprintf(`{"winner": %q, "reason": "quality %d against %d"}`, w, qa, qb)
}

func build(t *testing.T, f *fake, dataDir, spec string) (*dataset.Built, error) {
	t.Helper()
	s, err := dataset.ParseSpec("spec.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	return dataset.Build(context.Background(), s, dataset.BuildOptions{DataDir: dataDir, Store: f.st,
		Plugins: judgestage.Plugins(judgestage.Options{BaseURL: f.url, DataDir: dataDir})})
}

// buildFails runs a build that a planted upstream failure must stop, with
// an error that says how to resume.
func buildFails(t *testing.T, f *fake, dataDir, spec string) {
	t.Helper()
	if _, err := build(t, f, dataDir, spec); err == nil || !strings.Contains(err.Error(), "run the build again to resume") {
		t.Fatalf("the planted failure: err = %v, want a failed build that says how to resume", err)
	}
}

// rows reads every split of a built version.
func rows(t *testing.T, b *dataset.Built) []api.FineTuneExample {
	t.Helper()
	var out []api.FineTuneExample
	for _, sp := range dataset.Splits {
		fh, err := os.Open(filepath.Join(b.Dir, sp+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var ex api.FineTuneExample
			if err := json.Unmarshal(sc.Bytes(), &ex); err != nil {
				t.Fatal(err)
			}
			out = append(out, ex)
		}
		fh.Close()
	}
	return out
}

func answers(t *testing.T, b *dataset.Built) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, ex := range rows(t, b) {
		m[ex.Messages[1].Content.String()] = ex.Messages[2].Content.String()
	}
	return m
}

func logFunnel(t *testing.T, f dataset.Funnel) {
	t.Helper()
	for _, r := range f {
		t.Logf("%-10s in %2d out %2d %v", r.Stage, r.In, r.Out, r.Counters)
		for _, d := range r.Dropped {
			t.Logf("           %s: %d %+v", d.Reason, d.Count, d.Samples)
		}
	}
}

func wantCost(t *testing.T, rep *dataset.StageReport, counter string, usd float64) {
	t.Helper()
	got := rep.Counters[counter]
	if got <= 0 || math.Abs(float64(got)-usd*1e6) > 1 {
		t.Errorf("%s: %s = %d, want %.1f", rep.Stage, counter, got, usd*1e6)
	}
}

func TestJudgeStage(t *testing.T) {
	f := newFake(t)
	dataDir := t.TempDir()
	b, err := build(t, f, dataDir, `name: judged
sources: [{file: testdata/rows.jsonl}]
judge: {model: gpt-4o-mini, rubric: "A correct answer.", min_score: 7, concurrency: 4}
split: {train: 1, val: 0, test: 0}
`)
	if err != nil {
		t.Fatal(err)
	}
	fn := b.Manifest.Funnel
	logFunnel(t, fn)
	j := fn.Stage("judge")
	if j == nil || j.In != 10 || j.Out != 4 {
		t.Fatalf("judge stage: %+v, want 10 in, 4 out", j)
	}
	if n := j.DroppedFor(judgestage.ReasonBelow(7)); n != 4 {
		t.Errorf("dropped %d rows below 7, want 4 (q=3, q=2, q=6, q=5)", n)
	}
	var garbage *dataset.Reason
	for _, r := range j.Dropped {
		if r.Reason == judgestage.ReasonGarbage {
			garbage = r
		}
	}
	if garbage == nil || garbage.Count != 2 || len(garbage.Samples) != 2 || !strings.Contains(garbage.Samples[0].Detail, "seems fine") {
		t.Errorf("garbage verdicts: %+v, want 2 with the judge's answer as examples", garbage)
	}
	// Two calls per garbage row (the answer and the repair), one per other row.
	if got := j.Counters[judgestage.CounterCalls]; got != 12 {
		t.Errorf("judge calls %d, want 12", got)
	}
	wantCost(t, j, judgestage.CounterCost, f.judgeCost)

	// Dedupe kept the better-judged of the two near-duplicate password rows.
	if d := fn.Stage("dedupe"); d.DroppedFor(dataset.ReasonNearDuplicate) != 1 {
		t.Errorf("dedupe dropped %d near duplicates, want 1", d.DroppedFor(dataset.ReasonNearDuplicate))
	}
	got := rows(t, b)
	if len(got) != 3 {
		t.Fatalf("%d rows out, want 3", len(got))
	}
	pw := 0
	for _, ex := range got {
		if a := ex.Messages[2].Content.String(); strings.Contains(a, "recovery code") {
			pw++
			if !strings.Contains(a, "[q=10]") {
				t.Errorf("dedupe kept the worse-judged duplicate: %s", a)
			}
		}
	}
	if pw != 1 {
		t.Errorf("%d password rows kept, want 1", pw)
	}
	for _, s := range b.Manifest.Sample {
		if s.Judge == nil {
			t.Errorf("sample row %s has no judge score", s.ID)
		}
	}

	// The same build again pays for nothing: every verdict is cached.
	before := len(f.up.Requests())
	if _, err := build(t, f, dataDir, `name: judged
sources: [{file: testdata/rows.jsonl}]
judge: {model: gpt-4o-mini, rubric: "A correct answer.", min_score: 7, concurrency: 4}
split: {train: 1, val: 0, test: 0}
`); err != nil {
		t.Fatal(err)
	}
	// Garbage verdicts are not cached, so those two rows are asked again.
	if n := len(f.up.Requests()) - before; n != 4 {
		t.Errorf("a re-run made %d upstream calls, want 4 (the two garbage rows, twice each)", n)
	}
}

func TestBestOfN(t *testing.T) {
	f := newFake(t)
	// Sample qualities by seed (samples 0, 1, 2).
	f.teacherQ = func(prompt string, seed int64) int {
		switch {
		case strings.Contains(prompt, "DNS"):
			return []int{4, 9, 6}[seed]
		case strings.Contains(prompt, "HTTP"):
			return []int{3, 5, 6}[seed]
		case strings.Contains(prompt, "password"):
			return []int{8, 7, 2}[seed]
		}
		f.t.Errorf("the teacher was asked about %q, which scored at least only_if_below", prompt)
		return 1
	}
	dataDir := t.TempDir()
	b, err := build(t, f, dataDir, `name: best
sources: [{file: testdata/rows.jsonl}]
judge: {model: gpt-4o-mini, min_score: 5}
best_of_n: {model: gpt-4o, n: 3, temperature: 0.8, bar: 8, only_if_below: 8, one_request_per_sample: true}
skip: [dedupe]
split: {train: 1, val: 0, test: 0}
`)
	if err != nil {
		t.Fatal(err)
	}
	fn := b.Manifest.Funnel
	logFunnel(t, fn)
	bn := fn.Stage("best_of_n")
	// In: q=9, q=8, q=6 (DNS), q=5 (HTTP), q=7 and q=10 (password).
	if bn == nil || bn.In != 6 || bn.Out != 6 {
		t.Fatalf("best_of_n stage: %+v, want 6 in and out", bn)
	}
	for name, want := range map[string]int64{judgestage.CounterReplaced: 2, judgestage.CounterKept: 3, judgestage.CounterRejected: 1} {
		if got := bn.Counters[name]; got != want {
			t.Errorf("best_of_n %s = %d, want %d", name, got, want)
		}
	}
	// Three prompts, three samples each, one request per sample; every
	// sample has its own text, so nine verdicts.
	if got := bn.Counters[judgestage.CounterTeacherCalls]; got != 9 {
		t.Errorf("teacher calls %d, want 9", got)
	}
	if got := bn.Counters[judgestage.CounterCalls]; got != 9 {
		t.Errorf("best_of_n judge calls %d, want 9", got)
	}
	wantCost(t, bn, judgestage.CounterTeacherCost, f.teachCost)
	total := fn.Stage("judge").Counters[judgestage.CounterCost] + bn.Counters[judgestage.CounterCost]
	if bn.Counters[judgestage.CounterCost] <= 0 || math.Abs(float64(total)-f.judgeCost*1e6) > 2 {
		t.Errorf("judge cost of both stages %d micro-USD, want %.1f", total, f.judgeCost*1e6)
	}

	a := answers(t, b)
	for prompt, want := range map[string]string{
		"Explain how DNS resolution works.": "seed 1 [q=9]",               // replaced by the best sample
		"Explain how HTTP caching works.":   "Caches cache things. [q=5]", // no sample cleared 8: kept
		"What is two plus two?":             "Four. [q=9]",                // scored 9: not resampled
	} {
		if !strings.Contains(a[prompt], want) {
			t.Errorf("%q: answer %q, want it to contain %q", prompt, a[prompt], want)
		}
	}
	// The password prompt's q=7 row got the teacher's 8; the q=10 row kept its own.
	var pw []string
	for _, ex := range rows(t, b) {
		if strings.Contains(ex.Messages[1].Content.String(), "password") {
			pw = append(pw, ex.Messages[2].Content.String())
		}
	}
	if len(pw) != 2 || !strings.Contains(strings.Join(pw, "|"), "seed 0 [q=8]") || !strings.Contains(strings.Join(pw, "|"), "audit log [q=10]") {
		t.Errorf("password rows: %q", pw)
	}
}

// TestResume plants an upstream failure part-way through the judge stage;
// the build fails, and the same build again finishes without asking for
// any verdict the first run got.
func TestResume(t *testing.T) {
	for _, concurrency := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency=%d", concurrency), func(t *testing.T) { testResume(t, concurrency) })
	}
}

func testResume(t *testing.T, concurrency int) {
	f := newFake(t)
	dir := t.TempDir()
	var lines []string
	for i := range 40 {
		msgs := []api.Message{{Role: "user", Content: api.TextContent(fmt.Sprintf("Question number %d about topic %d?", i, i*7))},
			{Role: "assistant", Content: api.TextContent(fmt.Sprintf("Answer %d. [q=%d]", i, 1+i%10))}}
		b, _ := json.Marshal(api.FineTuneExample{Messages: msgs})
		lines = append(lines, string(b))
	}
	src := filepath.Join(dir, "rows.jsonl")
	if err := os.WriteFile(src, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`name: resumed
sources: [{file: %q}]
judge: {model: gpt-4o-mini, min_score: 6, concurrency: %d}
skip: [dedupe]
`, src, concurrency)
	f.failOn = 17
	buildFails(t, f, dir, spec)
	f.mu.Lock()
	firstCalls, firstAnswered := f.calls, len(f.answered)
	f.mu.Unlock()
	if concurrency == 1 && (firstCalls != 17 || firstAnswered != 16) {
		t.Fatalf("the first run made %d calls (%d answered); want it to stop at the failure, call 17", firstCalls, firstAnswered)
	}

	b, err := build(t, f, dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	logFunnel(t, b.Manifest.Funnel)
	j := b.Manifest.Funnel.Stage("judge")
	if j.In != 40 || j.Out != 20 || j.DroppedFor(judgestage.ReasonBelow(6)) != 20 {
		t.Errorf("judge: in %d out %d, want 40 in, 20 out", j.In, j.Out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// A call the upstream answered while the failed run was cancelling
	// never reached the cache; at most the other workers' calls are that.
	repeats := 0
	for _, n := range f.answered {
		if n > 1 {
			repeats += n - 1
		}
	}
	if repeats > concurrency-1 {
		t.Errorf("%d verdicts asked again, want at most %d (calls in flight at the failure)", repeats, concurrency-1)
	}
	if len(f.answered) != 40 {
		t.Errorf("%d distinct verdicts answered, want 40", len(f.answered))
	}
	hits, calls := j.Counters[judgestage.CounterCacheHits], j.Counters[judgestage.CounterCalls]
	if hits != int64(firstAnswered-repeats) || hits+calls != 40 {
		t.Errorf("second run: %d cache hits and %d calls, want %d and %d", hits, calls, firstAnswered-repeats, 40-(firstAnswered-repeats))
	}
	t.Logf("first run: %d calls, %d answered; second: %d cache hits, %d calls, %d repeats", firstCalls, firstAnswered, hits, calls, repeats)
}

// TestFromGatewayTraffic fills the store through the gateway, judges the
// captured calls through the same gateway, and builds again: the judge's
// own calls, captured too, are not selected as training rows.
func TestFromGatewayTraffic(t *testing.T) {
	ctx := context.Background()
	f := newFakeStore(t)
	app := judge.NewHTTP(f.url, "")
	app.Tags = "prod"
	for i := range 12 {
		q := fmt.Sprintf("Question %d about topic %d? [q=%d]", i, i*i, 1+i%10)
		if _, err := app.Chat(ctx, &api.ChatRequest{Model: "gpt-4o-mini", Messages: []api.Message{{Role: "user", Content: api.TextContent(q)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.capt.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	spec := `name: traffic
sources: [{store: {routes: [gpt-4o-mini]}}]
judge: {model: gpt-4o-mini, min_score: 6}
`
	dataDir := t.TempDir()
	b, err := build(t, f, dataDir, spec)
	if err != nil {
		t.Fatal(err)
	}
	logFunnel(t, b.Manifest.Funnel)
	j := b.Manifest.Funnel.Stage("judge")
	if j.In != 12 || j.Out != 5 || j.Counters[judgestage.CounterCalls] != 12 {
		t.Fatalf("judge: %d in, %d out, %d calls; want 12, 5, 12", j.In, j.Out, j.Counters[judgestage.CounterCalls])
	}
	if err := f.capt.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before := len(f.up.Requests())
	// Another name, so the build stores its own manifest with this run's funnel.
	b2, err := build(t, f, dataDir, strings.Replace(spec, "name: traffic", "name: traffic-again", 1))
	if err != nil {
		t.Fatal(err)
	}
	logFunnel(t, b2.Manifest.Funnel)
	sel := b2.Manifest.Funnel.Stage("select")
	if sel.In != 24 || sel.Out != 12 || sel.DroppedFor("not selected: a judge or teacher call") != 12 {
		t.Errorf("select: %d in, %d out; want the 12 judge calls captured by the first build skipped", sel.In, sel.Out)
	}
	if j := b2.Manifest.Funnel.Stage("judge"); j.Counters[judgestage.CounterCacheHits] != 12 || j.Counters[judgestage.CounterCalls] != 0 {
		t.Errorf("the rebuild's judge: %v, want 12 cache hits and no calls", j.Counters)
	}
	if n := len(f.up.Requests()) - before; n != 0 {
		t.Errorf("the rebuild made %d upstream calls, want 0", n)
	}
	if b2.Manifest.Hash != b.Manifest.Hash {
		t.Errorf("the rebuild has other rows (%s, was %s)", b2.Manifest.Short(), b.Manifest.Short())
	}
}

// TestResumeBestOfN plants a teacher failure part-way through best-of-n;
// the same build again finishes, asking only for what the first run lacked.
func TestResumeBestOfN(t *testing.T) {
	f := newFake(t)
	f.teacherQ = func(string, int64) int { return 9 }
	isTeacher := func(req *api.ChatRequest) bool { return req.Messages[0].Content.String() != judge.PointwiseV1 }
	f.failFirst = func(req *api.ChatRequest) bool {
		return isTeacher(req) && strings.Contains(req.Messages[len(req.Messages)-1].Content.String(), "HTTP caching")
	}
	dir := t.TempDir()
	spec := `name: resampled
sources: [{file: testdata/rows.jsonl}]
best_of_n: {model: gpt-4o, judge_model: gpt-4o-mini, n: 3, bar: 8, concurrency: 1}
skip: [dedupe]
`
	buildFails(t, f, dir, spec)
	b, err := build(t, f, dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	logFunnel(t, b.Manifest.Funnel)
	bn := b.Manifest.Funnel.Stage("best_of_n")
	// HTTP caching is row 8 of 10: rows 1-7 were finished and cached; row 8
	// and the two rows sharing the password prompt are sampled (one request
	// with n=3: the three samples are one text, judged once) now, the
	// second password row from the first one's cached samples and verdict.
	if bn.Counters[judgestage.CounterReplaced] != 10 || bn.Counters[judgestage.CounterTeacherCalls] != 2 ||
		bn.Counters[judgestage.CounterCalls] != 2 || bn.Counters[judgestage.CounterCacheHits] != 8 {
		t.Errorf("the resumed run: %v; want 10 replaced, 2 teacher and 2 judge calls, 8 cache hits", bn.Counters)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for body, n := range f.answered {
		if n != 1 {
			t.Errorf("asked %d times: %s", n, body)
		}
	}
	if len(f.answered) != 18 {
		t.Errorf("%d calls answered in all, want 18 (a teacher and a judge call per distinct prompt)", len(f.answered))
	}
}
