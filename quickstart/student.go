package quickstart

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/econ"
	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/eval"
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/pricing"
	providerengine "github.com/foundryhq/foundry/provider/engine"
	"github.com/foundryhq/foundry/safetensors"
	"github.com/foundryhq/foundry/train"
)

// tinyConfig is the student's architecture: Llama (RMSNorm, RoPE, GQA,
// SwiGLU), small enough to train in seconds on two CPU cores.
func tinyConfig(vocab, endID int) model.Config {
	c := model.RandomConfig()
	c.VocabSize = vocab
	c.HiddenSize, c.IntermediateSize, c.NumLayers = 64, 192, 2
	c.NumHeads, c.NumKVHeads, c.HeadDim = 4, 2, 16
	c.MaxPositions = 256
	c.TieWordEmbeddings = true
	c.BOSTokenID, c.EOSTokenIDs = endID, []int{endID}
	return c
}

// studentJob is one training run as the report shows it.
type studentJob struct {
	name, data string
	rows       int
	job        *train.Job
}

// trainStudents makes the base (unless Options.Base gives one), then trains
// the curated and the raw student: LoRA adapters over that base (whole
// models with Options.Full).
func (q *run) trainStudents(ctx context.Context) error {
	models := filepath.Join(q.o.Dir, "models")
	data := filepath.Join(q.o.Dir, "train-data")
	var jobs []studentJob
	base := q.o.Base
	if base == "" {
		var err error
		base, jobs, err = q.pretrain(ctx, models)
		if err != nil {
			return err
		}
	}
	full := q.o.Full && q.o.Base == ""
	// Both students get the same budget of optimizer steps: the epochs over
	// the curated rows. The raw student sees more rows, each fewer times.
	curRows, err := countLines(filepath.Join(data, "curated-train.jsonl"))
	if err != nil {
		return err
	}
	const batch = 8
	epochs := q.sz.sftEpochs
	if full {
		epochs = q.sz.fullEpochs
	}
	steps := epochs * ((curRows + batch - 1) / batch)
	q.sftSteps = steps
	tune := func(name, split string, bar *progress) (*studentJob, error) {
		trainFile := filepath.Join(data, split+"-train.jsonl")
		cfg := train.Config{Base: base, Data: trainFile, Val: filepath.Join(data, split+"-val.jsonl"), Out: filepath.Join(models, name+"-adapter"),
			LoRA: tinyLoRA, LR: 7e-4, Epochs: epochs + 1, MaxSteps: steps, Batch: batch, MaxLen: 128, Truncate: true,
			Warmup: 0.05, Seed: q.o.Seed + 11, PricePerHour: q.o.GPUHourlyUSD, Backend: q.o.Backend}
		what := "LoRA " + name
		switch {
		case q.o.Base != "": // a real model: the usual LoRA recipe
			cfg.LoRA, cfg.LR, cfg.MaxLen = train.LoRA{Rank: 16, Alpha: 32}, 2e-4, 1024
		case full:
			cfg.Full, cfg.LoRA, cfg.LR, cfg.Out, what = true, train.LoRA{}, 3e-3, filepath.Join(models, name), "fine-tune "+name
		}
		if lines, _ := countLines(cfg.Val); lines == 0 {
			cfg.Val = ""
		}
		job, err := q.trainQuiet(ctx, what, cfg, bar)
		if err != nil {
			return nil, err
		}
		rows, _ := countLines(trainFile)
		return &studentJob{name: name, data: split + " train split", rows: rows, job: job}, nil
	}
	// The two students train side by side: one run keeps about one core
	// busy on the pure-Go backend, so two use the machine's two cores.
	bar := newProgressOf(q.o.Progress, 2*steps, "training both students", "steps")
	var (
		wg       sync.WaitGroup
		cur, raw *studentJob
		errs     [2]error
	)
	wg.Add(2)
	go func() { defer wg.Done(); cur, errs[0] = tune(StudentModel, "curated", bar) }()
	go func() { defer wg.Done(); raw, errs[1] = tune(RawStudentModel, "raw", bar) }()
	wg.Wait()
	bar.finish()
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	jobs = append(jobs, *cur, *raw)
	q.res.StudentDir, q.res.RawDir = cur.job.Config.Out, raw.job.Config.Out
	for _, j := range jobs {
		if j.name != RawStudentModel {
			q.trainingSeconds += j.job.DeviceSeconds
		}
	}
	var rows [][]string
	for _, j := range jobs {
		val := "-"
		if n := len(j.job.Val); n > 0 {
			best := j.job.Val[0].Loss
			for _, p := range j.job.Val {
				best = math.Min(best, p.Loss)
			}
			val = fmt.Sprintf("%.3f", best)
		}
		first, last := j.job.Train[0].Loss, j.job.Train[len(j.job.Train)-1].Loss
		rows = append(rows, []string{j.name, j.data, fmt.Sprint(j.rows), fmt.Sprint(j.job.Step), fmt.Sprintf("%.2f → %.2f", first, last), val,
			fmt.Sprintf("%.0f", j.job.TokensPerSecond), fmt.Sprintf("%.1f", j.job.DeviceSeconds), fmt.Sprintf("$%.4f", econCost(j.job.DeviceSeconds, q.o.GPUHourlyUSD))})
	}
	table(q.out, []string{"job", "data", "rows", "steps", "train loss", "best val", "tok/s", "device-s", "cost"}, rows)
	if full {
		fmt.Fprintf(q.out, "  students (whole models, safetensors): %s, %s\n", cur.job.Config.Out, raw.job.Config.Out)
		return nil
	}
	q.studentBase = base
	fmt.Fprintf(q.out, "  adapters (PEFT format, %d KiB each, over the one base %s): %s, %s\n", adapterKiB(cur.job.Config.Out), base, cur.job.Config.Out, raw.job.Config.Out)
	return nil
}

// tinyLoRA is the tiny student's adapter: rank 16 on all seven projections.
// Its alpha is far above the usual 2×rank on purpose. With Adam the step of
// each matrix is about the learning rate whatever its gradient, so alpha/r
// sets how fast B·A moves against A alone: at 32/16 the 64-wide student
// learnt the answer's format but not the labels (35% field accuracy), and a
// learning rate high enough to move B diverged through A. A large alpha with
// a small learning rate is LoRA+'s fast-B, slow-A recipe, and it learns the
// labels (75–86% field accuracy over six quick starts, against 76–83% for
// full fine-tuning; docs/benchmarks.md has the sweep).
var tinyLoRA = train.LoRA{Rank: 16, Alpha: 512}

// adapterKiB is the size of the adapter's weights file.
func adapterKiB(dir string) int64 {
	fi, err := os.Stat(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		return 0
	}
	return fi.Size() / 1024
}

func econCost(seconds, hourly float64) float64 { return seconds / 3600 * hourly }

// pretrain writes a generated tokenizer and a random tiny Llama, then trains
// every weight on unlabelled ticket text (language modelling): the base the
// students' LoRA adapters are trained on.
func (q *run) pretrain(ctx context.Context, models string) (string, []studentJob, error) {
	texts := Corpus(q.o.Seed+1000, q.sz.corpus)
	// The tokenizer learns from the tickets and, weighted as they will occur
	// in training, the app's system prompt and the answer format's words,
	// so that a whole example is about 60 tokens and an answer about 13.
	tokCorpus := append([]string(nil), texts...)
	for range 50 {
		tokCorpus = append(tokCorpus, SystemPrompt)
	}
	for range 10 {
		for _, c := range Categories {
			for _, p := range Priorities {
				for _, s := range Sentiments {
					tokCorpus = append(tokCorpus, Labels{c, p, s}.JSON())
				}
			}
		}
	}
	tf, err := TrainTokenizer(tokCorpus, 1024)
	if err != nil {
		return "", nil, err
	}
	init := filepath.Join(models, "tiny-llama-init")
	if err := tf.Write(init); err != nil {
		return "", nil, err
	}
	cfg := tinyConfig(tf.VocabSize, tf.EndID)
	if err := writeTinyModel(init, cfg, q.o.Seed+7); err != nil {
		return "", nil, err
	}
	fmt.Fprintf(q.out, "  tokenizer: byte-level BPE with %d tokens learnt from the ticket text; model: %s\n", tf.VocabSize, cfg)
	var exs []api.FineTuneExample
	for _, t := range texts {
		// One document per example, loss on every token: plain language
		// modelling of ticket text (train takes chat data, so it is one turn).
		exs = append(exs, api.FineTuneExample{Messages: []api.Message{{Role: "assistant", Content: api.TextContent(t)}}})
	}
	file := filepath.Join(q.o.Dir, "train-data", "pretrain.jsonl")
	if err := writeJSONL(file, exs); err != nil {
		return "", nil, err
	}
	out := filepath.Join(models, "tiny-llama-pretrained")
	job, err := q.train(ctx, "pretraining", train.Config{Base: init, Data: file, Out: out, Full: true, AllTokens: true,
		LR: 3e-3, Epochs: q.sz.preEpochs, Batch: 16, MaxLen: 128, Truncate: true, Warmup: 0.05, Seed: q.o.Seed + 3,
		PricePerHour: q.o.GPUHourlyUSD, Backend: q.o.Backend})
	if err != nil {
		return "", nil, err
	}
	return out, []studentJob{{name: "tiny-llama (pretraining)", data: "unlabelled tickets", rows: len(exs), job: job}}, nil
}

// train runs one training job with a progress bar.
func (q *run) train(ctx context.Context, what string, cfg train.Config) (*train.Job, error) {
	if q.o.Progress != nil && !isTerminal(q.o.Progress) { // a terminal gets train's own bar
		fmt.Fprintf(q.o.Progress, "  %s ...\n", what)
	}
	return runJob(ctx, what, cfg, train.Options{Logger: q.log, Progress: q.o.Progress})
}

// runJob runs one training job and insists that it trained.
func runJob(ctx context.Context, what string, cfg train.Config, opts train.Options) (*train.Job, error) {
	job, err := train.Run(ctx, cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(job.Train) == 0 {
		return nil, fmt.Errorf("%s: no training steps ran", what)
	}
	return job, nil
}

// trainQuiet runs one of several training jobs that run at once: instead of
// train's own bar it moves bar on by the steps done at every evaluation.
func (q *run) trainQuiet(ctx context.Context, what string, cfg train.Config, bar *progress) (*train.Job, error) {
	done := 0
	store := train.MultiStore{train.DirStore{Dir: cfg.Out}, jobProgress(func(step int) {
		if step > done {
			bar.add(step - done)
			done = step
		}
	})}
	return runJob(ctx, what, cfg, train.Options{Logger: q.log, Store: store})
}

// jobProgress is a train.JobStore that only reports the job's step.
type jobProgress func(step int)

func (f jobProgress) SaveJob(_ context.Context, job *train.Job) error {
	f(job.Step)
	return nil
}

func countLines(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strings.Count(string(b), "\n"), nil
}

// deploy loads the students on the built-in engine and registers them in
// the gateway under their names: both adapters over one loaded base, batched
// together (whole models, one engine each, with Options.Full).
func (q *run) deploy(ctx context.Context) error {
	b, err := engine.NewBackend(ctx, engine.BackendOptions{Config: q.o.Backend, Logger: q.log})
	if err != nil {
		return err
	}
	var engines []*engine.Engine
	q.cleanup = append(q.cleanup, func() {
		for _, e := range engines {
			e.Close()
		}
		b.Finalize()
	})
	maxContext := 256 // the tiny student's tickets are under 100 tokens
	if q.o.Base != "" {
		maxContext = 1024
	}
	opts := providerengine.LoadOptions{Runner: engine.RunnerOptions{Slots: 4, MaxContext: maxContext}, Logger: q.log,
		Warmup: strings.HasPrefix(b.Config, "xla")}
	var ms []providerengine.Model
	names := []string{StudentModel, RawStudentModel}
	if q.studentBase == "" {
		for _, name := range names {
			m, err := providerengine.Load(ctx, b, name, filepath.Join(q.o.Dir, "models", name), opts)
			if err != nil {
				return fmt.Errorf("deploy %s: %w", name, err)
			}
			engines = append(engines, m.Engine)
			ms = append(ms, m)
		}
	} else {
		opts.Runner.MaxAdapters, opts.Runner.MaxRank = len(names), tinyLoRA.Rank // the real base's adapters have rank 16 too
		base, err := providerengine.Load(ctx, b, "student-base", q.studentBase, opts)
		if err != nil {
			return fmt.Errorf("deploy the students' base %s: %w", q.studentBase, err)
		}
		engines = append(engines, base.Engine)
		for _, name := range names {
			m, err := providerengine.LoadAdapter(base, name, filepath.Join(q.o.Dir, "models", name+"-adapter"))
			if err != nil {
				return fmt.Errorf("deploy %s: %w", name, err)
			}
			ms = append(ms, m)
		}
	}
	p, err := providerengine.New(providerengine.Options{Models: ms})
	if err != nil {
		return err
	}
	q.stack.reg.Register(p)
	for _, m := range ms {
		q.stack.reg.Alias(m.Name, "engine/"+m.Name)
	}
	if q.studentBase == "" {
		fmt.Fprintf(q.out, "  deployed %s and %s on the built-in engine (%s backend, 4 decode slots each)\n", StudentModel, RawStudentModel, b.Config)
	} else {
		fmt.Fprintf(q.out, "  deployed %s and %s as LoRA adapters over one loaded base on the built-in engine (%s backend, 4 decode slots shared, each request on its own adapter)\n",
			StudentModel, RawStudentModel, b.Config)
	}
	return nil
}

// measureThroughput sends a burst of concurrent requests to the student and
// returns its generation throughput (completion tokens per second), which
// prices its serving.
func (q *run) measureThroughput(ctx context.Context) (float64, error) {
	g := NewGenerator(q.o.Seed + 5)
	n := q.sz.benchN
	tickets := make([]Ticket, n)
	for i := range tickets {
		tickets[i] = g.Next()
	}
	var toks atomic.Int64
	t0 := time.Now()
	err := parallel(ctx, n, 4, func(ctx context.Context, i int) error {
		r, err := q.stack.chat(ctx, ticketRequest(StudentModel, tickets[i]), []string{"quickstart", "benchmark"}, nil)
		if err != nil {
			return err
		}
		toks.Add(int64(r.Usage.CompletionTokens))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure the student's throughput: %w", err)
	}
	return float64(toks.Load()) / time.Since(t0).Seconds(), nil
}

// evaluate deploys the students, measures the student's throughput (its
// serving price), and runs the eval of both students and the teacher on the
// held-out tickets through the gateway.
func (q *run) evaluate(ctx context.Context) error {
	if err := q.deploy(ctx); err != nil {
		return err
	}
	tps, err := q.measureThroughput(ctx)
	if err != nil {
		return err
	}
	tps = math.Round(tps)
	q.studentTPS = tps
	serving := engineServing(q.o.GPUHourlyUSD, tps)
	q.prices.Set(StudentModel, serving)
	q.prices.Set(RawStudentModel, serving)
	fmt.Fprintf(q.out, "  measured student throughput: %.0f tokens/s with 4 concurrent requests → $%.2f per 1M output tokens at $%.2f/hour\n",
		tps, serving.Output, q.o.GPUHourlyUSD)

	exs, err := eval.ReadExamples(filepath.Join(q.o.Dir, "train-data", "heldout.jsonl"))
	if err != nil {
		return err
	}
	cands := []string{q.teacherModel, StudentModel, RawStudentModel}
	bar := newProgress(q.o.Progress, len(exs)*len(cands), "eval answers")
	var (
		last   int
		lastMu sync.Mutex
	)
	temp := 0.0
	sum, err := eval.Run(ctx, exs, eval.Options{Dir: filepath.Join(q.o.Dir, "evals"), Data: "held-out tickets (ground truth)",
		Chatter: eval.NewHTTP(q.stack.url+"/v1", q.o.AdminKey, "eval,quickstart"), Candidates: cands, Reference: q.teacherModel,
		Concurrency: 6, MaxTokens: 48, Temperature: &temp, Seed: int64(q.o.Seed), Prices: q.prices, Logger: q.log,
		Progress: func(done, total int) { // eval may call it from several goroutines
			lastMu.Lock()
			defer lastMu.Unlock()
			if done > last {
				bar.add(done - last)
				last = done
			}
		}})
	bar.finish()
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	q.res.Eval = sum
	stat := func(s *eval.Stat) string {
		if s == nil {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", 100*s.Mean)
	}
	row := func(label string, c *eval.CandidateSummary) []string {
		return []string{label, stat(c.JSONValid), stat(c.FieldAccuracy), stat(&c.ExactMatch), fmt.Sprintf("%.0f ms", c.LatencyP50MS),
			fmt.Sprintf("$%.4f", c.CostPer1K.Mean)}
	}
	hdr := []string{"model", "JSON valid", "field acc.", "exact", "p50 latency", "cost / 1k"}
	fmt.Fprintf(q.out, "  %d held-out tickets, scored against ground truth (eval %s, report %s)\n", len(exs), sum.ID,
		filepath.Join(q.o.Dir, "evals", sum.ID, eval.HTMLFile))
	teacher, student, rawStudent := sum.Candidate(q.teacherModel), sum.Candidate(StudentModel), sum.Candidate(RawStudentModel)
	if teacher == nil || student == nil || rawStudent == nil {
		return fmt.Errorf("eval %s: a candidate is missing from the summary", sum.ID)
	}
	table(q.out, hdr, [][]string{row(q.teacherModel+" (teacher)", teacher), row(StudentModel+" (student)", student)})
	fmt.Fprintf(q.out, "\n  Ablation (quality beats quantity?): the same student, the same %d training steps, on every raw row instead\n", q.sftSteps)
	cur, _ := countLines(filepath.Join(q.o.Dir, "train-data", "curated-train.jsonl"))
	raw, _ := countLines(filepath.Join(q.o.Dir, "train-data", "raw-train.jsonl"))
	withCI := func(s *eval.Stat) string {
		if s == nil {
			return "-"
		}
		return fmt.Sprintf("%.0f%% [%.0f–%.0f]", 100*s.Mean, 100*s.Lo, 100*s.Hi)
	}
	table(q.out, []string{"training data", "rows", "JSON valid", "field acc.", "exact"}, [][]string{
		{"curated (" + StudentModel + ")", fmt.Sprint(cur), withCI(student.JSONValid), withCI(student.FieldAccuracy), withCI(&student.ExactMatch)},
		{"all raw rows (" + RawStudentModel + ")", fmt.Sprint(raw), withCI(rawStudent.JSONValid), withCI(rawStudent.FieldAccuracy), withCI(&rawStudent.ExactMatch)},
	})
	fmt.Fprintf(q.out, "  %s\n", ablationVerdict(len(exs), map[string][2]*eval.Stat{
		"JSON valid": {student.JSONValid, rawStudent.JSONValid}, "field accuracy": {student.FieldAccuracy, rawStudent.FieldAccuracy},
		"exact match": {&student.ExactMatch, &rawStudent.ExactMatch}}))
	return nil
}

// ablationVerdict says, metric by metric, whether the curated student beat
// the raw one beyond the noise of n held-out tickets: a difference counts
// when the two 95% bootstrap intervals do not overlap.
func ablationVerdict(n int, metrics map[string][2]*eval.Stat) string {
	var better, worse, even []string
	for _, name := range []string{"JSON valid", "field accuracy", "exact match"} {
		m := metrics[name]
		cur, raw := m[0], m[1]
		switch {
		case cur == nil || raw == nil:
		case cur.Lo > raw.Hi:
			better = append(better, fmt.Sprintf("%s (+%.0f points)", name, 100*(cur.Mean-raw.Mean)))
		case cur.Hi < raw.Lo:
			worse = append(worse, fmt.Sprintf("%s (%.0f points)", name, 100*(cur.Mean-raw.Mean)))
		default:
			even = append(even, name)
		}
	}
	var parts []string
	if len(better) > 0 {
		parts = append(parts, "curated is better on "+strings.Join(better, ", "))
	}
	if len(worse) > 0 {
		parts = append(parts, "raw is better on "+strings.Join(worse, ", "))
	}
	if len(even) > 0 {
		parts = append(parts, "no difference beyond the noise of "+fmt.Sprint(n)+" held-out tickets on "+strings.Join(even, ", "))
	}
	return strings.Join(parts, "; ") + " (95% intervals in brackets)"
}

// engineServing prices the self-hosted student from its measured throughput.
func engineServing(hourly, tps float64) pricing.Price {
	return econ.Serving{GPUHourlyUSD: hourly, TokensPerSecond: max(tps, 1)}.Price()
}

// writeTinyModel writes a randomly initialised tiny model (config.json and
// model.safetensors). Unlike model.WriteRandom's uniform N(0, 0.02) it
// scales weights to the model's width — embeddings N(0, 0.25²), linear
// layers N(0, (0.5/√in)²) — so that logits through the tied embedding can
// become confident: LoRA freezes the embedding and the norms, and with
// 0.02-sized embeddings a 64-wide model's logits could never move far from
// uniform, whatever the adapter learns.
func writeTinyModel(dir string, cfg model.Config, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 0x7191))
	return model.WriteWeights(dir, cfg, safetensors.F32, func(spec model.TensorSpec, v []float32) {
		std := 0.25
		switch {
		case strings.HasSuffix(spec.Name, "norm.weight"):
			std = 0
		case strings.HasSuffix(spec.Name, ".bias"):
			std = 0.02
		case len(spec.Shape) == 2 && !strings.Contains(spec.Name, "embed_tokens") && !strings.Contains(spec.Name, "lm_head"):
			std = 0.5 / math.Sqrt(float64(spec.Shape[1]))
		}
		for i := range v {
			if std == 0 {
				v[i] = 1
			} else {
				v[i] = float32(std * r.NormFloat64())
			}
		}
	})
}
