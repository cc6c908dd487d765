// Package quickstart runs Foundry's whole flywheel offline, in a few minutes
// on a laptop's CPU: a gateway on SQLite with its dashboard, a simulated
// teacher standing in for a hosted model, app traffic replayed through the
// gateway with user feedback, a curated dataset (and the raw one, for the
// ablation), a tiny Llama-architecture student pretrained on the task's
// unlabelled text and LoRA-tuned on the curated rows, an eval against the
// teacher on held-out traffic, a canary route, and the economics with the
// break-even. `foundry quickstart` is its command.
//
// The bundled task is support-ticket triage into JSON {"category",
// "priority", "sentiment"}; the tickets come from a seeded generator with
// ground-truth labels (tickets.go), so the eval can score every candidate,
// the teacher included, against the truth.
package quickstart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/econ"
	"github.com/foundryhq/foundry/eval"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/provider/openai"
	"github.com/foundryhq/foundry/route"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/dsn"
)

// Route is the model name the simulated app calls.
const Route = "support-bot"

// Student model names in the gateway.
const (
	StudentModel    = "support-student"     // LoRA on the curated dataset
	RawStudentModel = "support-student-raw" // LoRA on every raw row (the ablation)
)

// Options configure a quick start. Listener and Dir are required.
type Options struct {
	// Dir holds everything the run makes: the store (unless DB is set),
	// datasets, models and evals.
	Dir string
	// DB is the store's DSN (FOUNDRY_DB); "" is Dir/foundry.db.
	DB string
	// Listener is where the gateway serves.
	Listener net.Listener
	// AdminKey guards the management API and dashboard when set.
	AdminKey string

	Out      io.Writer    // the report (tables); nil: io.Discard
	Progress io.Writer    // progress bars (a terminal) or plain lines; nil: none
	Logger   *slog.Logger // nil: warnings to stderr

	Seed uint64
	// Small shrinks every step (fewer calls, shorter training, a smaller eval)
	// for tests and CI.
	Small bool
	// Serve keeps the gateway and dashboard up after the results until ctx ends.
	Serve bool
	// OnResults, when set, is called with the results while the gateway
	// still serves (before Serve waits): scripts and tests look at the
	// dashboard and the API there. Its error ends the run.
	OnResults func(ctx context.Context, res *Result) error

	// Base, when set, is a real base model directory (from hub.ResolveModel):
	// the student is LoRA-tuned on it instead of a tiny model pretrained here.
	Base string
	// Teacher, when set, is a real provider answering TeacherModelName
	// instead of the simulated teacher.
	Teacher          provider.Provider
	TeacherModelName string

	// Full fine-tunes every weight of the tiny student instead of training
	// LoRA adapters on it (a real Base is always LoRA-tuned).
	Full bool

	// GPUHourlyUSD is the $/hour of the device that trains and serves the
	// student: default $0.10 (a 2-vCPU VM, enough for the tiny student),
	// $2.00 (an on-demand GPU) with Base.
	GPUHourlyUSD float64
	// Backend forces the engine's backend ("go", "xla:cuda"...); "" picks.
	Backend string
}

// Result is what a run produced, for tests and scripts.
type Result struct {
	URL          string
	Records      int64 // app calls captured
	Feedback     int   // feedback posted
	Curated, Raw *dataset.Built
	Export       string // the curated dataset exported as OpenAI JSONL
	HeldOut      int    // test examples with ground truth
	// StudentDir and RawDir are the students' training outputs: PEFT
	// adapters (whole models with Options.Full), each with job.json.
	StudentDir, RawDir string
	Eval               *eval.Summary
	Route              route.Stats
	Econ               *econ.Report
}

// sizes are the knobs Small turns down.
type sizes struct {
	calls, corpus, preEpochs, evalN, canary, benchN int
	// sftEpochs are the students' passes over the curated rows: LoRA's
	// steps cost about half a full fine-tuning step here, and it needs
	// about twice as many to learn the labels.
	sftEpochs, fullEpochs int
}

func (o *Options) sizes() sizes {
	if o.Small {
		return sizes{calls: 120, corpus: 200, preEpochs: 1, sftEpochs: 2, fullEpochs: 1, evalN: 8, canary: 40, benchN: 4}
	}
	return sizes{calls: 400, corpus: 1200, preEpochs: 1, sftEpochs: 9, fullEpochs: 5, evalN: 40, canary: 200, benchN: 8}
}

// Run runs the quick start. With Options.Serve it keeps serving until ctx
// ends; otherwise it shuts the gateway down after the results.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if o.Listener == nil || o.Dir == "" {
		return nil, errors.New("quickstart: Listener and Dir are required")
	}
	if (o.Teacher == nil) != (o.TeacherModelName == "") {
		return nil, errors.New("quickstart: a real teacher needs both its provider and its model name")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if o.GPUHourlyUSD == 0 {
		o.GPUHourlyUSD = 0.10 // a 2-vCPU cloud VM, which is what trains and serves the tiny student
		if o.Base != "" {
			o.GPUHourlyUSD = 2.00 // an on-demand GPU
		}
	}
	if o.DB == "" {
		o.DB = filepath.Join(o.Dir, "foundry.db")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("quickstart: %w", err)
	}
	q := &run{o: o, sz: o.sizes(), out: o.Out, log: o.Logger, truth: map[string]Labels{}, res: &Result{}, start: time.Now()}
	q.teacherModel = TeacherModel
	if o.Teacher != nil {
		q.teacherModel = o.TeacherModelName
	}
	defer func() {
		if q.stack != nil {
			err = errors.Join(err, q.stack.close())
		}
		if q.teacher != nil {
			_ = q.teacher.Close()
		}
		for _, f := range q.cleanup {
			f()
		}
		if q.st != nil {
			err = errors.Join(err, q.st.Close())
		}
	}()
	if err := q.run(ctx); err != nil {
		return q.res, err
	}
	return q.res, nil
}

// run holds a quick start's state between steps.
type run struct {
	o            Options
	sz           sizes
	out          io.Writer
	log          *slog.Logger
	start        time.Time
	teacherModel string
	runID        string

	st      store.Store
	teacher *Teacher
	stack   *stack
	prices  *pricing.Table
	cleanup []func()

	truth map[string]Labels // ticket text → ground truth

	trainingSeconds float64 // device-seconds of the curated student's training
	studentTPS      float64 // measured generation throughput of the student
	sftSteps        int     // each student's budget of fine-tuning steps
	studentBase     string  // the base the students' adapters are served over ("": whole models)
	res             *Result
}

func (q *run) run(ctx context.Context) error {
	fmt.Fprintf(q.out, "Foundry quick start: the whole flywheel, offline, on this machine\n")
	abs, err := filepath.Abs(q.o.Dir)
	if err != nil {
		abs = q.o.Dir
	}
	fmt.Fprintf(q.out, "  working directory  %s (store, datasets, models, evals; your ./foundry.db is not touched)\n", abs)

	// 1. Gateway and teacher.
	section(q.out, 1, "Gateway and teacher")
	st, err := dsn.Open(ctx, q.o.DB)
	if err != nil {
		return fmt.Errorf("open store %q: %w (set FOUNDRY_DB to a writable SQLite path)", q.o.DB, err)
	}
	q.st = st
	q.prices = pricing.New(nil)
	reg := provider.NewRegistry()
	if q.o.Teacher != nil {
		reg.Register(q.o.Teacher)
		reg.Alias(q.teacherModel, q.o.Teacher.Name()+"/"+q.teacherModel)
		fmt.Fprintf(q.out, "  teacher            %s via provider %q\n", q.teacherModel, q.o.Teacher.Name())
	} else {
		t, err := StartTeacher(q.o.Seed)
		if err != nil {
			return err
		}
		q.teacher = t
		reg.Register(openai.New(openai.Options{Name: "simulated", BaseURL: t.URL}), TeacherModel)
		mini, _ := q.prices.Lookup("gpt-4o-mini")
		q.prices.Set(TeacherModel, mini)
		fmt.Fprintf(q.out, "  teacher            %s: a SIMULATED teacher standing in for a hosted model (no keys, no network),\n", TeacherModel)
		fmt.Fprintf(q.out, "                     priced like gpt-4o-mini ($%.2f/$%.2f per 1M tokens in/out), with realistic mistakes\n", mini.Input, mini.Output)
	}
	q.stack, err = startStack(ctx, st, reg, q.prices, q.o.Listener, q.o.AdminKey, q.o.Dir, q.log)
	if err != nil {
		return err
	}
	q.res.URL = q.stack.url
	q.runID = fmt.Sprintf("%d", time.Now().UnixNano())
	fmt.Fprintf(q.out, "  gateway            %s/v1 (OpenAI-compatible)   dashboard %s/\n", q.stack.url, q.stack.url)
	fmt.Fprintf(q.out, "  store              %s\n", q.o.DB)
	if _, err := q.stack.router.Put(ctx, Route, []byte(fmt.Sprintf(`{"arms":[{"model":%q}]}`, q.teacherModel)),
		route.Change{Actor: "quickstart", Comment: "day 1: every call goes to the teacher"}); err != nil {
		return fmt.Errorf("route %s: %w", Route, err)
	}
	fmt.Fprintf(q.out, "  route              %s → %s (100%%)\n", Route, q.teacherModel)

	steps := []struct {
		title string
		f     func(context.Context) error
	}{
		{"Traffic: the app calls " + Route + " through the gateway", q.replay},
		{"Curation: from captured calls to a dataset", q.curate},
		{"Students: a tiny Llama, pretrained on ticket text, then LoRA", q.trainStudents},
		{"Eval: students vs the teacher on held-out tickets (ground truth)", q.evaluate},
		{"Deploy: canary on " + Route, q.canary},
		{"Economics", q.economics},
	}
	if q.o.Base != "" {
		steps[2].title = "Students: LoRA on the base model " + filepath.Base(q.o.Base)
	} else if q.o.Full {
		steps[2].title = "Students: a tiny Llama, pretrained on ticket text, then fine-tuned in full"
	}
	for i, s := range steps {
		section(q.out, i+2, s.title)
		t0 := time.Now()
		if err := s.f(ctx); err != nil {
			return err
		}
		fmt.Fprintf(q.out, "  (%s)\n", time.Since(t0).Round(100*time.Millisecond))
	}
	fmt.Fprintf(q.out, "\nDone in %s.\n", time.Since(q.start).Round(time.Second))
	fmt.Fprintf(q.out, "  Dashboard: %s/   (traffic, datasets, training, evals, routes, costs)\n", q.stack.url)
	fmt.Fprintf(q.out, "  Try it:    curl %s/v1/chat/completions -H 'Content-Type: application/json' \\\n", q.stack.url)
	fmt.Fprintf(q.out, "               -d '{\"model\":%q,\"messages\":[{\"role\":\"user\",\"content\":\"My PixelPad order never arrived. Please fix this ASAP.\"}]}'\n", Route)
	fmt.Fprintf(q.out, "  Later:     FOUNDRY_DB=%s FOUNDRY_DATA=%s foundry serve %s  (the same data and students, with your own providers)\n",
		q.o.DB, q.o.Dir, q.serveFlags())
	if q.o.OnResults != nil {
		if err := q.o.OnResults(ctx, q.res); err != nil {
			return err
		}
	}
	if q.o.Serve {
		fmt.Fprintf(q.out, "Serving until Ctrl-C.\n")
		<-ctx.Done()
	}
	return nil
}

// serveFlags are foundry serve's flags that serve the students again.
func (q *run) serveFlags() string {
	models := filepath.Join(q.o.Dir, "models")
	if q.studentBase == "" {
		return fmt.Sprintf("--model %s=%s --model %s=%s", StudentModel, filepath.Join(models, StudentModel), RawStudentModel, filepath.Join(models, RawStudentModel))
	}
	return fmt.Sprintf("--model student-base=%s --adapter %s=student-base:%s --adapter %s=student-base:%s", q.studentBase,
		StudentModel, filepath.Join(models, StudentModel+"-adapter"), RawStudentModel, filepath.Join(models, RawStudentModel+"-adapter"))
}
