package judgestage_test

import (
	"strings"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/dataset/judgestage"
	"github.com/foundryhq/foundry/judge"
)

const pairwiseSpec = `name: pairwise
sources: [{file: testdata/rows.jsonl}]
judge: {model: gpt-4o-mini, mode: pairwise, against: gpt-4o, keep: KEEP, concurrency: CONC}
skip: [dedupe]
split: {train: 1, val: 0, test: 0}
`

func pairwise(keep, concurrency string) string {
	return strings.NewReplacer("KEEP", keep, "CONC", concurrency).Replace(pairwiseSpec)
}

// TestPairwiseJudge keeps the rows whose answer beats the reference
// model's answer (quality 6) in both orders, then, from the cache alone,
// those that tie too.
func TestPairwiseJudge(t *testing.T) {
	f := newFake(t)
	f.teacherQ = func(string, int64) int { return 6 }
	dataDir := t.TempDir()
	b, err := build(t, f, dataDir, pairwise("win", "4"))
	if err != nil {
		t.Fatal(err)
	}
	logFunnel(t, b.Manifest.Funnel)
	j := b.Manifest.Funnel.Stage("judge")
	// q=9, 8, 7, 10 win; q=3, 2, 5 lose; q=6 ties (the judge prefers
	// whichever is shown first); two rows are garbage to the judge.
	if j == nil || j.In != 10 || j.Out != 4 {
		t.Fatalf("judge stage: %+v, want 10 in, 4 out", j)
	}
	for reason, want := range map[string]int64{judgestage.ReasonLost("gpt-4o"): 3, judgestage.ReasonTied("gpt-4o"): 1, judgestage.ReasonGarbage: 2} {
		if got := j.DroppedFor(reason); int64(got) != want {
			t.Errorf("dropped %d rows for %q, want %d", got, reason, want)
		}
	}
	for name, want := range map[string]int64{
		judgestage.CounterWins: 4, judgestage.CounterLosses: 3, judgestage.CounterTies: 1, judgestage.CounterInconsistent: 1,
		// Two verdicts per row; a garbage verdict is two calls (the answer and the repair).
		judgestage.CounterCalls: 8*2 + 2*2*2,
		// Nine distinct prompts: the two password rows share theirs.
		judgestage.CounterRefCalls: 9, judgestage.CounterRefCacheHits: 1,
	} {
		if got := j.Counters[name]; got != want {
			t.Errorf("judge %s = %d, want %d", name, got, want)
		}
	}
	wantCost(t, j, judgestage.CounterCost, f.judgeCost)
	wantCost(t, j, judgestage.CounterRefCost, f.teachCost)
	for _, d := range j.Dropped {
		if d.Reason == judgestage.ReasonTied("gpt-4o") && (len(d.Samples) != 1 || !strings.Contains(d.Samples[0].Detail, "the orders disagreed")) {
			t.Errorf("tie samples %+v, want the position-biased tie explained", d.Samples)
		}
	}
	kept := answers(t, b)
	for _, want := range []string{"Four. [q=9]", "Paris is the capital of France. [q=8]"} {
		found := false
		for _, a := range kept {
			found = found || a == want
		}
		if !found {
			t.Errorf("kept answers %q lack the winner %q", kept, want)
		}
	}

	// keep: win_or_tie from the cache: only the garbage rows are asked again
	// (garbage verdicts are not cached).
	before := len(f.up.Requests())
	b2, err := build(t, f, dataDir, strings.Replace(pairwise("win_or_tie", "4"), "name: pairwise", "name: pairwise-ties", 1))
	if err != nil {
		t.Fatal(err)
	}
	j2 := b2.Manifest.Funnel.Stage("judge")
	if j2.Out != 5 || j2.Counters[judgestage.CounterRefCalls] != 0 || j2.Counters[judgestage.CounterRefCacheHits] != 10 {
		t.Errorf("win_or_tie: %d out, counters %v; want 5 out, every reference answer from the cache", j2.Out, j2.Counters)
	}
	if n := len(f.up.Requests()) - before; n != 8 {
		t.Errorf("the re-run made %d upstream calls, want 8 (two garbage rows, two orders, two attempts)", n)
	}
}

// TestResumePairwise plants a reference-model failure part-way; the same
// build again finishes, asking only for what the first run lacked.
func TestResumePairwise(t *testing.T) {
	f := newFake(t)
	f.teacherQ = func(string, int64) int { return 6 }
	f.failFirst = func(req *api.ChatRequest) bool {
		return req.Messages[0].Content.String() != judge.PairwiseV1 &&
			strings.Contains(req.Messages[len(req.Messages)-1].Content.String(), "HTTP caching")
	}
	dir := t.TempDir()
	spec := pairwise("win", "1")
	buildFails(t, f, dir, spec)
	b, err := build(t, f, dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	logFunnel(t, b.Manifest.Funnel)
	j := b.Manifest.Funnel.Stage("judge")
	// HTTP caching is row 8 of 10: rows 1-7 were finished (the garbage rows
	// 5 and 6 are not cached); rows 8-10 are judged now, row 10 from row
	// 9's reference answer.
	for name, want := range map[string]int64{
		judgestage.CounterRefCalls: 2, judgestage.CounterRefCacheHits: 8,
		judgestage.CounterCalls: 2*2*2 + 3*2, judgestage.CounterCacheHits: 5 * 2,
	} {
		if got := j.Counters[name]; got != want {
			t.Errorf("the resumed run: %s = %d, want %d", name, got, want)
		}
	}
	if j.Out != 4 {
		t.Errorf("the resumed run kept %d rows, want 4", j.Out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for body, n := range f.answered {
		if n != 1 && !strings.Contains(body, "[garbage]") {
			t.Errorf("asked %d times: %s", n, body)
		}
	}
}

// TestBestOfNPairwise picks each prompt's best sample by a tournament
// (qualities 5, 8, 7: the second wins) and replaces the answers it beats.
func TestBestOfNPairwise(t *testing.T) {
	f := newFake(t)
	f.teacherQ = func(_ string, seed int64) int { return []int{5, 8, 7}[seed] }
	b, err := build(t, f, t.TempDir(), `name: tournament
sources: [{file: testdata/rows.jsonl}]
best_of_n: {model: gpt-4o, judge_model: gpt-4o-mini, n: 3, select: pairwise, one_request_per_sample: true, concurrency: 1}
skip: [dedupe]
split: {train: 1, val: 0, test: 0}
`)
	if err != nil {
		t.Fatal(err)
	}
	logFunnel(t, b.Manifest.Funnel)
	bn := b.Manifest.Funnel.Stage("best_of_n")
	// The q=8 winner replaces q=3, 2, 6, 5 and 7; q=9 and q=10 beat it, q=8
	// ties it (the judge favours the first shown: the orders disagree), and
	// the two garbage rows are garbage to the judge, so kept.
	for name, want := range map[string]int64{
		judgestage.CounterReplaced: 5, judgestage.CounterKept: 5, judgestage.CounterGarbage: 2,
		// Nine distinct prompts, three samples each.
		judgestage.CounterTeacherCalls: 27,
		// Per distinct prompt two rounds of two verdicts (36), the second
		// password row's from the cache; per row the winner against its
		// answer (2 verdicts; 4 calls for each garbage row, repairs included).
		judgestage.CounterCalls: 36 + 8*2 + 2*4, judgestage.CounterCacheHits: 4,
	} {
		if got := bn.Counters[name]; got != want {
			t.Errorf("best_of_n %s = %d, want %d", name, got, want)
		}
	}
	wantCost(t, bn, judgestage.CounterTeacherCost, f.teachCost)
	wantCost(t, bn, judgestage.CounterCost, f.judgeCost)
	a := answers(t, b)
	for prompt, want := range map[string]string{
		"Explain how DNS resolution works.": "seed 1 [q=8]",  // replaced by the tournament's winner
		"What is two plus two?":             "Four. [q=9]",   // beat the winner
		"What is the capital of France?":    "France. [q=8]", // tied: kept
	} {
		if !strings.Contains(a[prompt], want) {
			t.Errorf("%q: answer %q, want it to contain %q", prompt, a[prompt], want)
		}
	}
}
