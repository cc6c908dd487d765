package quickstart

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/econ"
	"github.com/foundryhq/foundry/route"
)

// ticketRequest is the app's request for one ticket.
func ticketRequest(model string, t Ticket) *api.ChatRequest {
	maxTok, temp := 64, 0.0
	return &api.ChatRequest{Model: model, User: t.Customer, MaxTokens: &maxTok, Temperature: &temp,
		Messages: []api.Message{{Role: "system", Content: api.TextContent(SystemPrompt)}, {Role: "user", Content: api.TextContent(t.Text)}}}
}

// chance is a deterministic uniform number in [0,1) for (seed, i, salt).
func chance(seed uint64, i int, salt string) float64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%s", seed, i, salt)
	return float64(h.Sum64()>>11) / (1 << 53)
}

// parallel runs f(i) for i in [0, n) on workers goroutines, stopping at the
// first error.
func parallel(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func pct(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(of))
}

// replay sends the app's traffic through the gateway, with feedback on some
// of the answers (thumbs down on about half the wrong ones, thumbs up on a
// few right ones), as users of a help desk give it.
func (q *run) replay(ctx context.Context) error {
	g := NewGenerator(q.o.Seed)
	tickets := make([]Ticket, q.sz.calls)
	for i := range tickets {
		tickets[i] = g.Next()
		q.truth[tickets[i].Text] = tickets[i].Labels
	}
	var wrong, invalid, down, up atomic.Int64
	bar := newProgress(q.o.Progress, len(tickets), "app calls")
	t0 := time.Now()
	err := parallel(ctx, len(tickets), 16, func(ctx context.Context, i int) error {
		t := tickets[i]
		r, err := q.stack.chat(ctx, ticketRequest(Route, t), []string{"quickstart", "support", "prod"},
			map[string]string{"app": "helpdesk", "quickstart_run": q.runID})
		if err != nil {
			return err
		}
		l, ok := ParseLabels(r.Answer)
		bad := !ok || l != t.Labels
		if !ok {
			invalid.Add(1)
		} else if bad {
			wrong.Add(1)
		}
		switch c := chance(q.o.Seed, i, "feedback"); {
		case bad && c < 0.5:
			if err := q.stack.feedback(ctx, r.RequestID, 0, "thumbs_down"); err != nil {
				return err
			}
			down.Add(1)
		case !bad && c < 0.1:
			if err := q.stack.feedback(ctx, r.RequestID, 1, "thumbs_up"); err != nil {
				return err
			}
			up.Add(1)
		}
		bar.add(1)
		return nil
	})
	bar.finish()
	if err != nil {
		return fmt.Errorf("replay traffic: %w", err)
	}
	if err := q.stack.capt.Flush(ctx); err != nil {
		return fmt.Errorf("flush capture: %w", err)
	}
	n := len(tickets)
	q.res.Feedback = int(down.Load() + up.Load())
	fmt.Fprintf(q.out, "  %d calls in %s (8 at a time, tags quickstart,support,prod), every one captured with its cost\n", n, time.Since(t0).Round(100*time.Millisecond))
	fmt.Fprintf(q.out, "  the teacher, scored against the tickets' ground truth: %s wrong labels, %s not parseable JSON (chatty preambles, broken JSON)\n",
		pct(int(wrong.Load()), n), pct(int(invalid.Load()), n))
	fmt.Fprintf(q.out, "  user feedback via POST /api/v1/feedback: %d thumbs down, %d thumbs up\n", down.Load(), up.Load())
	return nil
}

// curate builds the curated dataset and the raw one, prints the funnel,
// exports the curated rows, and writes the training and held-out files.
func (q *run) curate(ctx context.Context) error {
	var schema any
	if err := json.Unmarshal([]byte(Schema), &schema); err != nil {
		return err
	}
	sel := &dataset.Selection{Tags: []string{"support"}, Metadata: map[string]string{"quickstart_run": q.runID}}
	split := dataset.SplitSpec{Train: 0.8, Val: 0.1, Test: 0.1, Key: "prompt"}
	curated := &dataset.Spec{Name: "support-triage", Sources: []dataset.SourceSpec{{Store: sel}},
		Validate: dataset.ValidateSpec{Schema: schema}, Judge: map[string]any{"feedback_below": 0.5}, Split: split}
	raw := &dataset.Spec{Name: "support-triage-raw", Sources: []dataset.SourceSpec{{Store: sel}},
		Skip: []string{"validate", "dedupe", "scrub"}, Split: split}
	bo := dataset.BuildOptions{Store: q.st, DataDir: q.o.Dir, Logger: q.log,
		Plugins: map[string]dataset.Plugin{"judge": feedbackStage(0.5)}}
	var err error
	if q.res.Curated, err = dataset.Build(ctx, curated, bo); err != nil {
		return fmt.Errorf("build dataset %s: %w", curated.Name, err)
	}
	if q.res.Raw, err = dataset.Build(ctx, raw, bo); err != nil {
		return fmt.Errorf("build dataset %s: %w", raw.Name, err)
	}
	m := q.res.Curated.Manifest
	var rows [][]string
	for _, s := range m.Funnel {
		var why []string
		for _, d := range s.Dropped {
			why = append(why, fmt.Sprintf("%d %s", d.Count, d.Reason))
		}
		if s.Stage == "scrub" {
			for _, k := range []string{"rows with PII"} {
				if n := s.Counters[k]; n > 0 {
					why = append(why, fmt.Sprintf("%d rows had PII replaced by placeholders", n))
				}
			}
		}
		rows = append(rows, []string{s.Stage, fmt.Sprint(s.In), fmt.Sprint(s.Out), strings.Join(why, "; ")})
		if s.Stage == "select" {
			q.res.Records = s.Out
		}
	}
	fmt.Fprintf(q.out, "  dataset %s (validate JSON schema · drop thumbs-down · dedupe · scrub PII · split by prompt)\n", m.Ref())
	table(q.out, []string{"stage", "in", "out", "dropped / changed"}, rows)
	fmt.Fprintf(q.out, "  curated: %d train / %d val / %d test rows      raw (every captured row, for the ablation): %d train / %d val / %d test\n",
		m.Rows["train"], m.Rows["val"], m.Rows["test"], q.res.Raw.Manifest.Rows["train"], q.res.Raw.Manifest.Rows["val"], q.res.Raw.Manifest.Rows["test"])

	exp := filepath.Join(q.o.Dir, "exports", m.Name+".jsonl")
	if err := os.MkdirAll(filepath.Dir(exp), 0o755); err != nil {
		return err
	}
	f, err := os.Create(exp)
	if err != nil {
		return err
	}
	v := &dataset.Version{Manifest: m, Dir: q.res.Curated.Dir}
	w := bufio.NewWriter(f)
	n, _, err := v.Export(ctx, "", dataset.FormatOpenAI, w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", m.Ref(), err)
	}
	q.res.Export = exp
	fmt.Fprintf(q.out, "  stored in %s; exported %d rows as OpenAI fine-tuning JSONL to %s\n", q.res.Curated.Dir, n, exp)
	return q.writeTrainingFiles(ctx)
}

// userText is the ticket of a conversation (its last user message).
func userText(msgs []api.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Content.String()
		}
	}
	return ""
}

// writeTrainingFiles writes the held-out test set (the raw dataset's test
// split — unfiltered traffic — with ground-truth answers) and the two
// students' training and validation files, with every held-out ticket
// removed from both (also in its scrubbed form).
func (q *run) writeTrainingFiles(ctx context.Context) error {
	dir := filepath.Join(q.o.Dir, "train-data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	scrub, err := dataset.NewScrubber(nil)
	if err != nil {
		return err
	}
	held := map[string]bool{}
	var heldOut []api.FineTuneExample
	raw := &dataset.Version{Manifest: q.res.Raw.Manifest, Dir: q.res.Raw.Dir}
	err = raw.Examples(ctx, "test", func(ex *dataset.Example) error {
		text := userText(ex.Messages)
		if held[text] || len(heldOut) >= q.sz.evalN {
			return nil
		}
		l, ok := q.truth[text]
		if !ok {
			l = Classify(text)
		}
		held[text] = true
		s, _ := scrub.ScrubText(text)
		held[s] = true
		prompt := append([]api.Message(nil), ex.Messages[:len(ex.Messages)-1]...)
		heldOut = append(heldOut, api.FineTuneExample{Messages: append(prompt, api.Message{Role: "assistant", Content: api.TextContent(l.JSON())})})
		return nil
	})
	if err != nil {
		return err
	}
	if len(heldOut) == 0 {
		return fmt.Errorf("the raw dataset's test split is empty: no held-out tickets to evaluate on (send more traffic)")
	}
	q.res.HeldOut = len(heldOut)
	if err := writeJSONL(filepath.Join(dir, "heldout.jsonl"), heldOut); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		b    *dataset.Built
	}{{"curated", q.res.Curated}, {"raw", q.res.Raw}} {
		v := &dataset.Version{Manifest: d.b.Manifest, Dir: d.b.Dir}
		for _, split := range []string{"train", "val"} {
			var exs []api.FineTuneExample
			if err := v.Examples(ctx, split, func(ex *dataset.Example) error {
				if !held[userText(ex.Messages)] {
					exs = append(exs, ex.FineTuneExample)
				}
				return nil
			}); err != nil {
				return err
			}
			if err := writeJSONL(filepath.Join(dir, d.name+"-"+split+".jsonl"), exs); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(q.out, "  held out: %d tickets from the raw test split (unfiltered traffic), answers replaced by ground truth; none of them is trained on\n", len(heldOut))
	return nil
}

func writeJSONL(path string, exs []api.FineTuneExample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, ex := range exs {
		b, err := json.Marshal(ex)
		if err != nil {
			f.Close()
			return err
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// canary sends a share of the route's traffic to the curated student, as a
// cascade arm: its answer must pass the JSON schema or the teacher answers.
func (q *run) canary(ctx context.Context) error {
	policy := map[string]any{
		"arms": []map[string]any{
			{"name": "teacher", "model": q.teacherModel, "weight": 90},
			{"name": "student", "model": StudentModel, "weight": 10, "escalate_to": q.teacherModel},
		},
		"sticky":   map[string]any{"key": "user"},
		"validate": map[string]any{"json_schema": json.RawMessage(Schema)},
	}
	b, _ := json.Marshal(policy)
	rv, err := q.stack.router.Put(ctx, Route, b, route.Change{Actor: "quickstart", Comment: "canary: 10% of users to the student, schema-checked, escalating to the teacher"})
	if err != nil {
		return fmt.Errorf("set canary on %s: %w", Route, err)
	}
	fmt.Fprintf(q.out, "  %s v%d: teacher 90%% / %s 10%% (sticky per user); a student answer that fails the JSON schema escalates to the teacher\n",
		Route, rv.Version, StudentModel)
	g := NewGenerator(q.o.Seed + 2)
	tickets := make([]Ticket, q.sz.canary)
	for i := range tickets {
		tickets[i] = g.Next()
	}
	type tally struct{ n, right int }
	var mu sync.Mutex
	by := map[string]*tally{}
	bar := newProgress(q.o.Progress, len(tickets), "canary calls")
	err = parallel(ctx, len(tickets), 16, func(ctx context.Context, i int) error {
		t := tickets[i]
		r, err := q.stack.chat(ctx, ticketRequest(Route, t), []string{"quickstart", "support", "canary"}, map[string]string{"app": "helpdesk"})
		if err != nil {
			return err
		}
		l, ok := ParseLabels(r.Answer)
		mu.Lock()
		tl := by[r.Model]
		if tl == nil {
			tl = &tally{}
			by[r.Model] = tl
		}
		tl.n++
		if ok && l == t.Labels {
			tl.right++
		}
		mu.Unlock()
		bar.add(1)
		return nil
	})
	bar.finish()
	if err != nil {
		return fmt.Errorf("canary traffic: %w", err)
	}
	if err := q.stack.capt.Flush(ctx); err != nil {
		return err
	}
	stats, ok := q.stack.router.Stats(Route)
	if !ok {
		return fmt.Errorf("route %s is not loaded", Route)
	}
	q.res.Route = stats
	var rows [][]string
	for _, a := range stats.Arms {
		pass := "-"
		if a.PassRate != nil {
			pass = fmt.Sprintf("%.0f%% of %d", 100*a.PassRate.Value, a.PassRate.N)
		}
		rows = append(rows, []string{a.Arm, a.Model, fmt.Sprintf("%.0f%%", stats.Shares[a.Arm]), fmt.Sprint(a.Requests), fmt.Sprint(a.Escalations), pass})
	}
	fmt.Fprintf(q.out, "  %d calls to %s:\n", len(tickets), Route)
	table(q.out, []string{"arm", "model", "share", "requests", "escalated", "schema pass"}, rows)
	var names []string
	for k := range by {
		names = append(names, k)
	}
	sort.Strings(names)
	var acc []string
	for _, k := range names {
		acc = append(acc, fmt.Sprintf("%s %d of %d", k, by[k].right, by[k].n))
	}
	fmt.Fprintf(q.out, "  answers with all three labels right, by the model that gave them: %s\n", strings.Join(acc, ", "))
	return nil
}

// economics prints the costs of the run's traffic and the break-even of
// moving the teacher's traffic to the student.
func (q *run) economics(ctx context.Context) error {
	training := q.trainingSeconds
	trainUSD := econ.TrainingCost(training, q.o.GPUHourlyUSD)
	rep, err := econ.Build(ctx, q.st, econ.Options{By: econ.ByModel, Prices: q.prices,
		Student: StudentModel, Teacher: q.teacherModel, TrainingUSD: trainUSD,
		TrainingNote: fmt.Sprintf("the student's %.0f device-seconds of training at $%.2f/hour", training, q.o.GPUHourlyUSD),
		Serving:      &econ.Serving{GPUHourlyUSD: q.o.GPUHourlyUSD, TokensPerSecond: q.studentTPS}})
	if err != nil {
		return fmt.Errorf("economics: %w", err)
	}
	q.res.Econ = rep
	if err := rep.WriteText(q.out); err != nil {
		return err
	}
	if be := rep.BreakEven; be != nil {
		if be.Never {
			fmt.Fprintf(q.out, "  Break-even: never at these prices (the student is not cheaper per request)\n")
		} else {
			fmt.Fprintf(q.out, "  Break-even: the student pays for its training after %.0f requests (teacher $%.3g vs student $%.3g a request)\n",
				math.Ceil(be.Requests), be.TeacherPerRequestUSD, be.StudentPerRequestUSD)
		}
	}
	return nil
}
