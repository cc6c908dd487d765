package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/tokenizer"
	"github.com/foundryhq/foundry/train/lora"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Config is a training run. Zero fields take the defaults of Defaults.
type Config struct {
	Base string `json:"base"` // model directory (config.json, safetensors, tokenizer.json)
	Data string `json:"data"` // OpenAI fine-tuning JSONL
	Val  string `json:"val,omitempty"`
	// ValFraction of Data is held out for validation when Val is empty (0: none).
	ValFraction float64 `json:"val_fraction,omitempty"`
	Out         string  `json:"out"`

	LoRA lora.LoRA `json:"lora"`
	// Full trains every weight of the base instead of an adapter (tiny
	// models; a base directory with only config.json starts from random weights).
	Full bool `json:"full,omitempty"`

	LR          float64 `json:"lr"`
	WeightDecay float64 `json:"weight_decay"`
	Epochs      int     `json:"epochs"`
	MaxSteps    int     `json:"max_steps,omitempty"` // caps the optimizer steps the epochs give
	Batch       int     `json:"batch"`
	Accum       int     `json:"accum"` // micro-batches per optimizer step
	MaxLen      int     `json:"max_len"`
	Truncate    bool    `json:"truncate,omitempty"`
	// Pack places several examples in one row of MaxLen tokens, attending
	// only within each (block-diagonal mask, positions restarting), instead
	// of one padded example per row.
	Pack      bool    `json:"pack,omitempty"`
	AllTokens bool    `json:"all_tokens,omitempty"`
	Warmup    float64 `json:"warmup"`   // fraction of the steps
	Schedule  string  `json:"schedule"` // cosine, linear or constant (after warmup)
	ClipNorm  float64 `json:"clip_norm"`
	Seed      uint64  `json:"seed"`

	EvalEvery int `json:"eval_every"` // steps between validation passes (and checkpoints)
	Patience  int `json:"patience"`   // evaluations without improvement before stopping (0: never)
	// LossChunk is the number of sequence positions whose logits are
	// computed at once in the cross-entropy.
	LossChunk int `json:"loss_chunk"`

	PricePerHour float64 `json:"price_per_hour"` // device $/hour, for the job's cost
	Backend      string  `json:"backend,omitempty"`
}

// Defaults fills c's zero fields: LoRA r=16, alpha 2r on all seven
// projections (dropout stays as given; the CLI's default is 0.05), lr 2e-4, 1 epoch, batch 8, max length 1024, 3% warmup,
// cosine decay, clipping at norm 1.
func (c Config) Defaults() Config {
	if c.LoRA.Rank == 0 {
		c.LoRA.Rank = 16
	}
	if c.LoRA.Alpha == 0 {
		c.LoRA.Alpha = 2 * float64(c.LoRA.Rank)
	}
	if c.LR == 0 {
		c.LR = 2e-4
	}
	if c.Epochs == 0 {
		c.Epochs = 1
	}
	if c.Batch == 0 {
		c.Batch = 8
	}
	if c.Accum == 0 {
		c.Accum = 1
	}
	if c.MaxLen == 0 {
		c.MaxLen = 1024
	}
	if c.Schedule == "" {
		c.Schedule = "cosine"
	}
	if c.ClipNorm == 0 {
		c.ClipNorm = 1
	}
	if c.LossChunk == 0 {
		c.LossChunk = 256
	}
	return c
}

// Validate reports the first setting Run would refuse, naming the CLI flag.
// Call it on Defaults() to check a config as Run will see it.
func (c Config) Validate() error {
	switch {
	case c.Base == "":
		return errors.New("train: no base model directory (--base)")
	case c.Data == "":
		return errors.New("train: no training data (--data FILE.jsonl)")
	case c.Out == "":
		return errors.New("train: no output directory (--out)")
	case c.Batch < 1 || c.Accum < 1 || c.Epochs < 1:
		return fmt.Errorf("train: batch %d, accum %d and epochs %d must be at least 1", c.Batch, c.Accum, c.Epochs)
	case c.LR <= 0:
		return fmt.Errorf("train: learning rate must be positive, got %g", c.LR)
	case c.Warmup < 0 || c.Warmup >= 1:
		return fmt.Errorf("train: warmup is a fraction of the steps in [0, 1), got %g", c.Warmup)
	case c.Schedule != "cosine" && c.Schedule != "linear" && c.Schedule != "constant":
		return fmt.Errorf("train: schedule %q: use cosine, linear or constant", c.Schedule)
	case c.ValFraction < 0 || c.ValFraction >= 1:
		return fmt.Errorf("train: validation fraction must be in [0, 1), got %g", c.ValFraction)
	}
	if !c.Full {
		return c.LoRA.Validate()
	}
	return nil
}

// fingerprint identifies what determines the run's trajectory, so a resume
// with different settings is refused.
func (c Config) fingerprint() string {
	c.Out, c.PricePerHour, c.Backend = "", 0, ""
	b, _ := json.Marshal(c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// LearningRate is the schedule: linear warmup from 0 over the first warm
// steps, then cosine or linear decay to 0 at total, as transformers'
// get_cosine/linear_schedule_with_warmup; step counts from 0.
func LearningRate(base float64, schedule string, step, warm, total int) float64 {
	if step < warm {
		return base * float64(step) / float64(max(1, warm))
	}
	progress := float64(step-warm) / float64(max(1, total-warm))
	switch schedule {
	case "cosine":
		return base * max(0, 0.5*(1+math.Cos(math.Pi*progress)))
	case "linear":
		return base * max(0, 1-progress)
	default:
		return base
	}
}

// Options are the run's surroundings, not its recipe.
type Options struct {
	Backend *engine.Backend // nil: engine.NewBackend(Config.Backend)
	Logger  *slog.Logger    // nil: slog.Default()
	// Progress gets a progress bar when it is a terminal, else a plain line
	// per evaluation (through Logger). nil: no bar.
	Progress io.Writer
	Store    JobStore // nil: DirStore{Config.Out}
	// ID names the job ("": the output directory's name and the config's
	// fingerprint). The jobs API gives its own, to find the run again.
	ID string
	// Created is when the job was asked for (zero: when Run starts); the
	// jobs API's jobs are created when queued.
	Created time.Time
	// Resume continues from Out/checkpoint when there is one.
	Resume bool
	// StopAfter stops after this many optimizer steps in total, with a
	// checkpoint, as a preemption would (0: run to the end).
	StopAfter int
}

// Run trains as cfg says and returns the job record. The adapter (or the
// full model) is written to cfg.Out: the one with the best validation loss
// when there is validation data, else the last.
func Run(ctx context.Context, cfg Config, opts Options) (job *Job, err error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	store := opts.Store
	if store == nil {
		store = DirStore{cfg.Out}
	}
	backend := opts.Backend
	if backend == nil {
		if backend, err = NewBackend(ctx, cfg.Backend, log); err != nil {
			return nil, err
		}
		defer backend.Finalize()
	}
	tok, err := tokenizer.Load(cfg.Base)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	dopts := DataOptions{MaxLen: cfg.MaxLen, Truncate: cfg.Truncate, AllTokens: cfg.AllTokens}
	data, err := LoadData(cfg.Data, tok, dopts)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	trainEx, valEx := data.Examples, []Example(nil)
	truncated, dropped := data.Truncated, data.Dropped
	if data.Dropped > 0 {
		log.Warn("train: examples longer than --max-len left out (use --truncate to cut them instead)", "file", cfg.Data, "dropped", data.Dropped, "first_lines", data.DroppedLines, "max_len", cfg.MaxLen)
	}
	if cfg.Val != "" {
		vd, err := LoadData(cfg.Val, tok, dopts)
		if err != nil {
			return nil, fmt.Errorf("train: validation data: %w", err)
		}
		valEx = vd.Examples
		truncated, dropped = truncated+vd.Truncated, dropped+vd.Dropped
		if vd.Dropped > 0 {
			log.Warn("train: validation examples longer than --max-len left out", "file", cfg.Val, "dropped", vd.Dropped, "first_lines", vd.DroppedLines, "max_len", cfg.MaxLen)
		}
	} else if cfg.ValFraction > 0 && len(trainEx) > 1 {
		trainEx, valEx = splitValidation(trainEx, cfg.ValFraction, cfg.Seed)
	}
	if truncated > 0 {
		log.Warn("train: examples cut to --max-len", "truncated", truncated, "max_len", cfg.MaxLen)
	}

	s, err := newSession(cfg, backend, log)
	if err != nil {
		return nil, err
	}
	defer s.close()

	// The whole run's micro-batches, fixed by the seed.
	var micro [][][]int
	for e := range cfg.Epochs {
		micro = append(micro, epochBatches(trainEx, cfg.Batch, cfg.MaxLen, cfg.Pack, cfg.Seed, e)...)
	}
	steps := (len(micro) + cfg.Accum - 1) / cfg.Accum
	if cfg.MaxSteps > 0 {
		steps = min(steps, cfg.MaxSteps)
	}
	warm := int(math.Ceil(cfg.Warmup * float64(steps)))
	evalEvery := cfg.EvalEvery
	if evalEvery <= 0 {
		evalEvery = max(1, steps/10)
	}
	var valBatches []batch
	for i := 0; i < len(valEx); i += cfg.Batch {
		var rows [][]Example
		for _, e := range valEx[i:min(i+cfg.Batch, len(valEx))] {
			rows = append(rows, []Example{e})
		}
		valBatches = append(valBatches, makeBatch(rows, cfg.Batch, cfg.MaxLen))
	}

	now := time.Now().UTC()
	created := now
	if !opts.Created.IsZero() {
		created = opts.Created.UTC()
	}
	id := opts.ID
	if id == "" {
		id = filepath.Base(filepath.Clean(cfg.Out)) + "-" + cfg.fingerprint()
	}
	job = &Job{
		ID: id, Status: StatusRunning, Config: cfg,
		Created: created, Updated: now, Steps: steps, TrainExamples: len(trainEx), ValExamples: len(valEx),
		Truncated: truncated, Dropped: dropped, Device: backend.Config + " (" + backend.Description() + ")",
		Artifacts: map[string]string{"job": filepath.Join(cfg.Out, "job.json")},
	}
	st := trainerState{Fingerprint: cfg.fingerprint(), BestVal: math.Inf(1)}
	ckptDir := filepath.Join(cfg.Out, "checkpoint")
	if opts.Resume {
		ok, err := s.loadCheckpoint(ckptDir, &st)
		if err != nil {
			return nil, err
		}
		if ok {
			log.Info("train: resuming", "checkpoint", ckptDir, "step", st.Step)
			job.Created, job.ResumedFrom = st.Created, st.Step
		}
	}
	job.Step, job.Train, job.Val, job.Tokens, job.DeviceSeconds = st.Step, st.Train, st.Val, st.Tokens, st.DeviceSeconds
	if st.Created.IsZero() {
		st.Created = job.Created
	}

	finish := func(status string, runErr error) (*Job, error) {
		job.Status, job.Updated = status, time.Now().UTC()
		if runErr != nil {
			job.Error = runErr.Error()
		}
		job.Cost = job.DeviceSeconds / 3600 * cfg.PricePerHour
		if job.DeviceSeconds > 0 {
			job.TokensPerSecond = float64(job.Tokens) / job.DeviceSeconds
		}
		if err := store.SaveJob(context.WithoutCancel(ctx), job); err != nil && runErr == nil {
			runErr = fmt.Errorf("train: save job record: %w", err)
		}
		return job, runErr
	}

	var bar *progressbar.ProgressBar
	if f, ok := opts.Progress.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions(steps, progressbar.OptionSetWriter(f), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetWidth(30),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }))
		_ = bar.Set(st.Step)
		defer func() { _ = bar.Finish() }()
	}

	evaluate := func() (float64, error) {
		var sum float64
		n := 0
		for _, b := range valBatches {
			l, err := s.evalLoss(b)
			if err != nil {
				return 0, err
			}
			sum += l
			n += b.NTargets
		}
		return sum / float64(max(n, 1)), nil
	}
	saveOutput := func() error {
		art, err := s.saveOutput(cfg)
		if err != nil {
			return err
		}
		for k, v := range art {
			job.Artifacts[k] = v
		}
		return nil
	}

	// Records are saved past a cancel: a cancelled run still ends interrupted, not failed.
	if err := store.SaveJob(context.WithoutCancel(ctx), job); err != nil {
		return nil, fmt.Errorf("train: save job record: %w", err)
	}
	runStart := time.Now()
	deviceBase := st.DeviceSeconds
	if st.Step == 0 && len(valBatches) > 0 { // the starting point of the validation curve
		vl, err := evaluate()
		if err != nil {
			return finish(StatusFailed, fmt.Errorf("train: validation before training: %w", err))
		}
		st.Val = append(st.Val, Point{0, vl})
		job.Val = st.Val
		log.Info("train: before training", "val_loss", round4(vl), "steps", steps, "train_examples", len(trainEx), "val_examples", len(valEx))
		// The untrained adapter is the best so far: a run whose validation
		// loss only rises still leaves the adapter that scored best.
		st.BestVal, st.BestStep = vl, 0
		if err := saveOutput(); err != nil {
			return finish(StatusFailed, err)
		}
	}
	for st.Step < steps {
		if err := ctx.Err(); err != nil {
			if st.Step > st.LastCheckpoint { // at a step boundary: nothing is lost on resume
				st.LastCheckpoint = st.Step
				if cerr := s.saveCheckpoint(ckptDir, &st); cerr != nil {
					return finish(StatusFailed, cerr)
				}
				job.Artifacts["checkpoint"] = ckptDir
			}
			return finish(StatusInterrupted, fmt.Errorf("train: interrupted at step %d: %w (the checkpoint is saved; continue with --resume)", st.Step, err))
		}
		group := micro[st.Step*cfg.Accum : min((st.Step+1)*cfg.Accum, len(micro))]
		batches := make([]batch, len(group))
		targets := 0
		var lines []int // of the step's examples, for error messages
		for _, idx := range group {
			for _, row := range idx {
				for _, k := range row {
					lines = append(lines, trainEx[k].Line)
				}
			}
		}
		for i, idx := range group {
			batches[i] = makeBatch(rowsOf(trainEx, idx), cfg.Batch, cfg.MaxLen)
			targets += batches[i].NTargets
			st.Tokens += int64(batches[i].NTokens)
		}
		lr := LearningRate(cfg.LR, cfg.Schedule, st.Step, warm, steps)
		var lossSum float64
		for i, b := range batches {
			l, err := s.trainMicro(b, i == len(batches)-1, 1/float64(max(targets, 1)), lr, cfg.Seed, st.Step*cfg.Accum+i)
			if err != nil {
				return finish(StatusFailed, fmt.Errorf("train: step %d: %w", st.Step+1, err))
			}
			lossSum += l
		}
		st.Step++
		loss := lossSum / float64(max(targets, 1))
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			job.Step = st.Step
			return finish(StatusFailed, fmt.Errorf("train: step %d: loss is %v on the examples of %s lines %v (lower --lr, or check those rows); the checkpoint of step %d in %s is intact", st.Step, loss, cfg.Data, lines, st.LastCheckpoint, ckptDir))
		}
		st.Train = append(st.Train, Point{st.Step, loss})
		st.DeviceSeconds = deviceBase + time.Since(runStart).Seconds()
		job.Step, job.Train, job.Tokens, job.DeviceSeconds = st.Step, st.Train, st.Tokens, st.DeviceSeconds
		tps := float64(st.Tokens) / max(st.DeviceSeconds, 1e-9)
		mem, memKind := memoryUse()
		job.PeakMemoryBytes, job.MemoryKind = max(job.PeakMemoryBytes, mem), memKind
		if bar != nil {
			desc := fmt.Sprintf("loss %.4f", loss)
			if n := len(st.Val); n > 0 {
				desc += fmt.Sprintf("  val %.4f", st.Val[n-1].Loss)
			}
			bar.Describe(fmt.Sprintf("%s  %.0f tok/s  mem %s", desc, tps, formatBytes(mem)))
			_ = bar.Set(st.Step)
		}

		last := st.Step == steps
		stop := opts.StopAfter > 0 && st.Step >= opts.StopAfter
		if st.Step%evalEvery == 0 || last || stop {
			attrs := []any{"step", st.Step, "of", steps, "loss", round4(loss), "lr", lr, "tokens_per_s", math.Round(tps), "memory", formatBytes(mem)}
			if len(valBatches) > 0 {
				vl, err := evaluate()
				if err != nil {
					return finish(StatusFailed, fmt.Errorf("train: validation at step %d: %w", st.Step, err))
				}
				st.Val = append(st.Val, Point{st.Step, vl})
				job.Val = st.Val
				attrs = append(attrs, "val_loss", round4(vl))
				if vl < st.BestVal {
					st.BestVal, st.BestStep, st.BadEvals = vl, st.Step, 0
					if err := saveOutput(); err != nil {
						return finish(StatusFailed, err)
					}
				} else {
					st.BadEvals++
				}
			}
			if bar == nil {
				log.Info("train", attrs...)
			}
			st.LastCheckpoint = st.Step
			if err := s.saveCheckpoint(ckptDir, &st); err != nil {
				return finish(StatusFailed, err)
			}
			job.Artifacts["checkpoint"] = ckptDir
			if len(valBatches) == 0 && (last || stop) {
				if err := saveOutput(); err != nil {
					return finish(StatusFailed, err)
				}
			}
			if cfg.Patience > 0 && st.BadEvals >= cfg.Patience && !last {
				log.Info("train: early stop: validation loss has not improved", "evaluations", st.BadEvals, "best_step", st.BestStep, "best_val_loss", round4(st.BestVal))
				return finish(StatusStoppedEarly, nil)
			}
			if stop && !last {
				return finish(StatusInterrupted, nil)
			}
			if err := store.SaveJob(context.WithoutCancel(ctx), job); err != nil {
				return finish(StatusFailed, fmt.Errorf("train: save job record: %w", err))
			}
		}
	}
	return finish(StatusSucceeded, nil)
}

// NewBackend starts the engine's backend for training (engine.NewBackend);
// plain simplego ("go") runs ops sequentially, because its parallel executor
// deadlocks on training graphs (GoMLX v0.26: every worker of its pool runs a
// node that waits in DotGeneral for a free worker).
func NewBackend(ctx context.Context, config string, log *slog.Logger) (*engine.Backend, error) {
	b, err := engine.NewBackend(ctx, engine.BackendOptions{Config: config, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if b.Config == "go" || b.Config == "simplego" {
		b.Finalize()
		log.Info("train: simplego runs training graphs one op at a time (go:ops_sequential)")
		if b, err = engine.NewBackend(ctx, engine.BackendOptions{Config: "go:ops_sequential", Logger: log}); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	return b, nil
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// trainerState is the host side of a checkpoint.
type trainerState struct {
	Fingerprint    string    `json:"fingerprint"`
	Created        time.Time `json:"created"`
	Step           int       `json:"step"`
	LastCheckpoint int       `json:"last_checkpoint"`
	BestVal        float64   `json:"best_val"`
	BestStep       int       `json:"best_step"`
	BadEvals       int       `json:"bad_evals"`
	Train          []Point   `json:"train"`
	Val            []Point   `json:"val"`
	Tokens         int64     `json:"tokens"`
	DeviceSeconds  float64   `json:"device_seconds"`
}

// MarshalJSON writes +Inf (no validation yet) as null.
func (s trainerState) MarshalJSON() ([]byte, error) {
	type alias trainerState
	a := alias(s)
	if math.IsInf(a.BestVal, 0) {
		a.BestVal = -1
	}
	return json.Marshal(a)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *trainerState) UnmarshalJSON(b []byte) error {
	type alias trainerState
	var a alias
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if a.BestVal < 0 {
		a.BestVal = math.Inf(1)
	}
	*s = trainerState(a)
	return nil
}
