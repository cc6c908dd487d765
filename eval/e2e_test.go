package eval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/foundryhq/foundry/gateway/gatewaytest"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/eval"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/upstreamtest"
)

// fakeModels answers as three models behind one fake upstream:
//   - "teacher" always gives the reference answer;
//   - "student" gives it for examples i with i%10 < 7 (70%), otherwise the
//     right id with the wrong label (half the fields right);
//   - "judge" prefers the answer without a wrong label, ties otherwise.
type fakeModels struct {
	failStudent atomic.Int64 // example number whose student call fails with 400; -1 for none
	inflight    atomic.Int64
	maxInflight atomic.Int64
	mu          sync.Mutex
	calls       map[string]int // by model
}

func reference(i int) string { return fmt.Sprintf(`{"id": %d, "label": "L%d"}`, i, i%3) }

func exampleNumber(req *api.ChatRequest) int {
	var i int
	fmt.Sscanf(req.Messages[len(req.Messages)-1].Content.String(), "ticket %d:", &i)
	return i
}

func between(s, from, to string) string {
	_, s, _ = strings.Cut(s, from)
	if to != "" {
		s, _, _ = strings.Cut(s, to)
	}
	return s
}

func (f *fakeModels) reply(req *api.ChatRequest) upstreamtest.Reply {
	if req.Model != "judge" { // the judge has its own limit
		n := f.inflight.Add(1)
		defer f.inflight.Add(-1)
		for {
			m := f.maxInflight.Load()
			if n <= m || f.maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
	}
	f.mu.Lock()
	f.calls[req.Model]++
	f.mu.Unlock()
	switch req.Model {
	case "teacher":
		return upstreamtest.Reply{Content: reference(exampleNumber(req))}
	case "student":
		i := exampleNumber(req)
		if int64(i) == f.failStudent.Load() {
			return upstreamtest.Reply{Fault: upstreamtest.Fault{Status: 400, Message: "planted failure"}}
		}
		if i%10 < 7 {
			return upstreamtest.Reply{Content: reference(i)}
		}
		return upstreamtest.Reply{Content: fmt.Sprintf(`{"id": %d, "label": "wrong"}`, i)}
	case "judge":
		if req.Messages[0].Content.String() != judge.PairwiseV1 {
			return upstreamtest.Reply{Content: "not a pairwise judge call"}
		}
		u := req.Messages[1].Content.String()
		a, b := between(u, "## Answer A", "## Answer B"), between(u, "## Answer B", "")
		w := "tie"
		switch {
		case strings.Contains(a, "wrong") && !strings.Contains(b, "wrong"):
			w = "B"
		case strings.Contains(b, "wrong") && !strings.Contains(a, "wrong"):
			w = "A"
		}
		return upstreamtest.Reply{Content: fmt.Sprintf(`{"winner": %q, "reason": "fake"}`, w)}
	}
	return upstreamtest.Reply{Fault: upstreamtest.Fault{Status: 404, Message: "no model " + req.Model}}
}

func (f *fakeModels) count() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.calls {
		out[k] = v
	}
	return out
}

func TestEvalThroughGateway(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The real gateway, capturing into SQLite, in front of the fake models.
	up := upstreamtest.NewOpenAI(t)
	fm := &fakeModels{calls: map[string]int{}}
	fm.failStudent.Store(0)
	up.OnChat(fm.reply)
	g := gatewaytest.Start(t, gatewaytest.Options{Upstream: up.URL, AnyModel: true, Capture: true, Retries: -1})
	st, capt, base := g.Store, g.Capture, g.URL

	// 40 test examples in a dataset's test.jsonl.
	const n = 40
	data := filepath.Join(t.TempDir(), "test.jsonl")
	var lines []string
	for i := range n {
		ft := api.FineTuneExample{Messages: []api.Message{
			{Role: "system", Content: api.TextContent("Classify the ticket as JSON.")},
			{Role: "user", Content: api.TextContent(fmt.Sprintf("ticket %d: my order is late", i))},
			{Role: "assistant", Content: api.TextContent(reference(i))},
		}}
		b, _ := json.Marshal(ft)
		lines = append(lines, string(b))
	}
	if err := os.WriteFile(data, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	examples, err := eval.ReadExamples(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) != n {
		t.Fatalf("read %d examples, want %d", len(examples), n)
	}

	// Prices for the fake models: teacher $0.15/$0.60 per 1M tokens; the
	// student has none (self-hosted).
	prices := pricing.New(map[string]pricing.Price{"teacher": {Input: 0.15, Output: 0.60}, "judge": {Input: 2.5, Output: 10}})
	jcache, err := judge.OpenCache(filepath.Join(t.TempDir(), "judge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jcache.Close() })
	j, err := judge.New(judge.Options{Chatter: eval.NewHTTP(base, "", "judge,eval"), Model: "judge", Cache: jcache, Prices: prices, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const concurrency = 3
	opts := eval.Options{Dir: dir, Data: data, Chatter: eval.NewHTTP(base, "", "eval"), Candidates: []string{"student", "teacher"},
		Reference: "teacher", Judge: j, Concurrency: concurrency, Temperature: api.Ptr(0.0), Seed: 1, Prices: prices, Logger: quiet}

	// First run: the student's call on example 0 fails.
	s, err := eval.Run(ctx, examples, opts)
	if err != nil {
		t.Fatal(err)
	}
	calls := fm.count()
	// 40 answers each; the judge compares 39 student answers (the failed one
	// loses without a call) in two orders each, except that when both
	// answers are the same text both orders are one verdict (the judge's
	// cache key): 27 identical pairs + 12 different pairs × 2 = 51 calls.
	if calls["student"] != n || calls["teacher"] != n || calls["judge"] != 27+2*12 {
		t.Fatalf("calls %v, want student %d, teacher %d, judge %d", calls, n, n, 27+2*12)
	}
	if m := fm.maxInflight.Load(); m > concurrency {
		t.Errorf("%d calls in flight at once, over the limit of %d", m, concurrency)
	}
	stu := s.Candidate("student")
	if stu.Errors != 1 || stu.Requests != n {
		t.Errorf("student: %d errors of %d requests, want 1 of %d", stu.Errors, stu.Requests, n)
	}
	// Example 0 is one the student gets right: 27 of 40 after the failure.
	if stu.ExactMatch.Mean != 27.0/n {
		t.Errorf("student exact match %v, want 27/40", stu.ExactMatch.Mean)
	}

	// Second run: only the failed call is asked again (and judged).
	fm.failStudent.Store(-1)
	s, err = eval.Run(ctx, examples, opts)
	if err != nil {
		t.Fatal(err)
	}
	again := fm.count()
	if d := again["student"] - calls["student"]; d != 1 || again["teacher"] != calls["teacher"] || again["judge"]-calls["judge"] != 1 {
		t.Fatalf("re-run after a failure made calls %v (before %v): want exactly 1 student and 1 judge call (identical answers)", again, calls)
	}
	// Third run: everything is cached; no calls at all.
	before := len(up.Requests())
	s, err = eval.Run(ctx, examples, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(up.Requests()) - before; got != 0 {
		t.Fatalf("resumed eval made %d upstream calls, want 0", got)
	}

	stu, tea := s.Candidate("student"), s.Candidate("teacher")
	// Teacher: everything exact. Student: 28 of 40 exact; the 12 wrong ones
	// have 1 of 2 fields right, so field accuracy 28/40 + 12/40·½ = 0.85,
	// the id field always right and the label field 0.7.
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"teacher exact", tea.ExactMatch.Mean, 1},
		{"teacher field accuracy", tea.FieldAccuracy.Mean, 1},
		{"student exact", stu.ExactMatch.Mean, 0.7},
		{"student JSON valid", stu.JSONValid.Mean, 1},
		{"student field accuracy", stu.FieldAccuracy.Mean, 0.85},
		{"student id field", stu.Fields["id"].Mean, 1},
		{"student label field", stu.Fields["label"].Mean, 0.7},
		// The judge ties the 28 right answers and prefers the teacher over
		// the 12 wrong ones in both orders: (0 + 28·½)/40 = 0.35.
		{"student win rate", stu.WinRate.Mean, 0.35},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if stu.Errors != 0 || *stu.Tally != (eval.WinTally{Wins: 0, Losses: 12, Ties: 28}) {
		t.Errorf("student errors %d, tally %+v; want 0 and 12 losses, 28 ties", stu.Errors, *stu.Tally)
	}
	if tea.WinRate != nil {
		t.Error("the reference has a win rate against itself")
	}
	// Intervals: around the mean, inside [0,1], not degenerate for the student.
	for name, st := range map[string]eval.Stat{"exact": stu.ExactMatch, "win": *stu.WinRate, "rouge": stu.RougeL} {
		if !(st.Lo < st.Mean && st.Mean < st.Hi && st.Lo >= 0 && st.Hi <= 1) {
			t.Errorf("student %s interval [%v, %v] around %v", name, st.Lo, st.Hi, st.Mean)
		}
	}
	if tea.ExactMatch.Lo != 1 || tea.ExactMatch.Hi != 1 {
		t.Errorf("teacher exact interval [%v, %v], want [1, 1]", tea.ExactMatch.Lo, tea.ExactMatch.Hi)
	}
	if stu.LatencyP50MS <= 0 || stu.LatencyP95MS < stu.LatencyP50MS {
		t.Errorf("student latency p50 %v p95 %v", stu.LatencyP50MS, stu.LatencyP95MS)
	}
	// Cost: the fake counts tokens in words. Prompt: "Classify the ticket as
	// JSON." (5) + "ticket N: my order is late" (6) = 11; the answer
	// `{"id": N, "label": "LK"}` is 4 words. Per call 11·0.15/1e6 +
	// 4·0.60/1e6 = 4.05e-6 USD, so $0.00405 per 1k requests.
	if math.Abs(tea.CostPer1K.Mean-0.00405) > 1e-12 || tea.Unpriced != 0 {
		t.Errorf("teacher cost per 1k %v (unpriced %d), want 0.00405", tea.CostPer1K.Mean, tea.Unpriced)
	}
	if stu.Unpriced != n || stu.CostPer1K.N != 0 {
		t.Errorf("student: %d unpriced, cost stat %+v; want all %d unpriced", stu.Unpriced, stu.CostPer1K, n)
	}

	// The eval's calls are captured, tagged and labelled with its id.
	if err := capt.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cnt, err := st.CountRecords(ctx, store.Query{Tags: []string{"eval"}, Metadata: map[string]string{"eval_id": s.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2*n + 1 + 27 + 1 + 24); cnt != want { // answers + the retried one + judge calls
		t.Errorf("%d captured calls tagged eval with eval_id %s, want %d", cnt, s.ID, want)
	}
	rec, err := st.ListRecords(ctx, store.Query{Tags: []string{"judge"}, Limit: 1})
	if err != nil || len(rec.Records) != 1 || rec.Records[0].Metadata["eval_candidate"] != "student" {
		t.Errorf("judge calls not labelled with the candidate: %v %+v", err, rec.Records)
	}

	// Files and reports.
	evalDir := filepath.Join(dir, s.ID)
	if os.Getenv("EVAL_KEEP") != "" {
		os.CopyFS(os.Getenv("EVAL_KEEP"), os.DirFS(evalDir))
	}
	for _, f := range []string{eval.ResultsFile, eval.JudgementsFile, eval.SummaryFile, eval.MarkdownFile, eval.HTMLFile} {
		if _, err := os.Stat(filepath.Join(evalDir, f)); err != nil {
			t.Errorf("eval file: %v", err)
		}
	}
	loaded, err := eval.Load(dir, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Candidate("student").ExactMatch != stu.ExactMatch {
		t.Errorf("summary.json round trip: %+v vs %+v", loaded.Candidate("student").ExactMatch, stu.ExactMatch)
	}
	md, _ := os.ReadFile(filepath.Join(evalDir, eval.MarkdownFile))
	for _, want := range []string{
		"# Eval " + s.ID,
		"| teacher (reference) | 40 | 0 | 1.000 [1.000, 1.000] |",
		"| student | 40 | 0 | 0.700 [",
		"win rate vs teacher",
		"| student | 0 | 12 | 28 | 0 | 0 | 0.350 [",
		"| label |",
		`{"id": 7, "label": "wrong"}`, // a sample where the student missed
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	page, _ := os.ReadFile(filepath.Join(evalDir, eval.HTMLFile))
	for _, want := range []string{"<svg", `class="whisker"`, "<del>&#34;L1&#34;}</del> <ins>&#34;wrong&#34;}</ins>", "latency p50 and p95"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(string(page), "<script") || strings.Contains(string(page), "http://") && strings.Contains(string(page), "src=") {
		t.Error("report.html is not self-contained")
	}

	// A second eval with a worse student compares against the first.
	var cmp strings.Builder
	worse := *s
	worse.ID = "eval-worse"
	worse.Candidates = append([]eval.CandidateSummary(nil), s.Candidates...)
	worse.Candidates[0].ExactMatch = eval.Stat{Mean: 0.2, Lo: 0.1, Hi: 0.3, N: n}
	if err := eval.Compare(&cmp, s, &worse); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cmp.String(), "| student | exact match | 0.700 [") || !strings.Contains(cmp.String(), "-0.500 *") {
		t.Errorf("compare:\n%s", cmp.String())
	}
}
