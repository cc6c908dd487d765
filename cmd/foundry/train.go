package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/foundryhq/foundry/config"
	"github.com/foundryhq/foundry/hub"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/train"
)

func newTrainCmd() *cobra.Command {
	var (
		cfg     train.Config
		targets string
		resume  bool
		db      string
		cfgPath string
	)
	cmd := &cobra.Command{
		Use:   "train --base DIR|ORG/NAME --data FILE.jsonl --out DIR",
		Short: "Fine-tune a model with LoRA (or all weights) on chat data; writes a PEFT adapter",
		Long: `Fine-tune a Llama-family model on OpenAI fine-tuning JSONL ({"messages": [...],
"tools": [...]} per line), rendered with the model's chat template, with the
loss on the assistant's tokens. Writes a PEFT-format adapter
(adapter_config.json + adapter_model.safetensors) to --out, the one with the
best validation loss when there is validation data; --full trains every
weight instead and writes a whole model (a base directory holding only
config.json then starts from random weights).

--out also gets job.json (status, config, loss curves, device-seconds, cost)
and checkpoint/ (adapter, optimizer state, step), from which --resume
continues exactly where a run stopped. The job is also recorded in the
store, where the dashboard and the jobs API (/api/v1/jobs) find it: --db,
else FOUNDRY_DB or --config's db, else ./foundry.db when that file exists.`,
		Example: `  foundry train --base ./tiny-llama --data chats.jsonl --out ./support-v1
  foundry train --base Qwen/Qwen2.5-0.5B-Instruct --data train.jsonl --val val.jsonl --out ./qwen-support \
      --rank 16 --alpha 32 --targets q,k,v,o,gate,up,down --lr 2e-4 --epochs 2 --batch 8 --accum 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Base == "" || cfg.Data == "" || cfg.Out == "" {
				return errors.New("train needs --base, --data and --out")
			}
			if _, err := os.Stat(cfg.Base); err != nil {
				repo, rev, perr := hub.ParseRepoRef(cfg.Base)
				if perr != nil {
					return fmt.Errorf("--base %q is neither a model directory nor ORG/NAME: %w", cfg.Base, err)
				}
				dir, err := hub.Snapshot(cmd.Context(), repo, rev)
				if err != nil {
					return fmt.Errorf("train: get base model %s: %w", cfg.Base, err)
				}
				cfg.Base = dir
			}
			if !cfg.Full {
				t, err := train.ParseTargets(targets)
				if err != nil {
					return err
				}
				cfg.LoRA.Targets = t
			}
			opts := train.Options{Logger: engineLogger(cmd), Progress: cmd.ErrOrStderr(), Resume: resume}
			st, err := trainStore(cmd, db, cfgPath)
			if err != nil {
				return err
			}
			if st != nil {
				defer st.Close()
				opts.Store = train.MultiStore{train.DirStore{Dir: cfg.Out}, train.StoreJobs{Store: st}}
			}
			job, err := train.Run(cmd.Context(), cfg, opts)
			if job != nil {
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "job %s: %s after %d/%d steps\n", job.ID, job.Status, job.Step, job.Steps)
				if n := len(job.Train); n > 0 {
					fmt.Fprintf(out, "train loss %.4f -> %.4f\n", job.Train[0].Loss, job.Train[n-1].Loss)
				}
				if n := len(job.Val); n > 0 {
					best := job.Val[0]
					for _, p := range job.Val {
						if p.Loss < best.Loss {
							best = p
						}
					}
					fmt.Fprintf(out, "val loss %.4f -> best %.4f at step %d\n", job.Val[0].Loss, best.Loss, best.Step)
				}
				fmt.Fprintf(out, "%.0f tokens/s, %.1f device-seconds on %s, $%.4f\n", job.TokensPerSecond, job.DeviceSeconds, job.Device, job.Cost)
				for _, k := range []string{"adapter", "model", "checkpoint", "job"} {
					if p, ok := job.Artifacts[k]; ok {
						fmt.Fprintf(out, "%s: %s\n", k, p)
					}
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Base, "base", "", "base model: a directory (config.json, *.safetensors, tokenizer.json) or ORG/NAME[@rev] from the hub cache")
	f.StringVar(&cfg.Data, "data", "", "training data, OpenAI fine-tuning JSONL")
	f.StringVar(&cfg.Val, "val", "", "validation data, same format (default: --val-fraction of --data)")
	f.Float64Var(&cfg.ValFraction, "val-fraction", 0.1, "fraction of --data held out for validation when --val is not given (0: none)")
	f.StringVar(&cfg.Out, "out", "", "output directory: adapter (or model), job.json, checkpoint/")
	f.IntVar(&cfg.LoRA.Rank, "rank", 16, "LoRA rank r")
	f.Float64Var(&cfg.LoRA.Alpha, "alpha", 32, "LoRA alpha (scale alpha/r, or alpha/√r with --rslora)")
	f.Float64Var(&cfg.LoRA.Dropout, "dropout", 0.05, "dropout on the LoRA input while training")
	f.BoolVar(&cfg.LoRA.RSLoRA, "rslora", false, "rank-stabilised scaling alpha/√r")
	f.StringVar(&targets, "targets", "q,k,v,o,gate,up,down", "projections to adapt: q,k,v,o,gate,up,down or all")
	f.BoolVar(&cfg.Full, "full", false, "train every weight instead of an adapter (tiny models)")
	f.Float64Var(&cfg.LR, "lr", 2e-4, "peak learning rate")
	f.Float64Var(&cfg.WeightDecay, "weight-decay", 0, "AdamW decoupled weight decay")
	f.IntVar(&cfg.Epochs, "epochs", 1, "passes over the training data")
	f.IntVar(&cfg.MaxSteps, "max-steps", 0, "stop after this many optimizer steps (0: as the epochs give)")
	f.IntVar(&cfg.Batch, "batch", 8, "examples per micro-batch")
	f.IntVar(&cfg.Accum, "accum", 1, "micro-batches per optimizer step (gradient accumulation)")
	f.IntVar(&cfg.MaxLen, "max-len", 1024, "longest example in tokens")
	f.BoolVar(&cfg.Truncate, "truncate", false, "cut examples longer than --max-len instead of dropping them")
	f.BoolVar(&cfg.AllTokens, "all-tokens", false, "loss on every token, not only the assistant's")
	f.BoolVar(&cfg.Pack, "pack", false, "pack several examples into each row of --max-len tokens (block-diagonal attention) instead of padding one per row")
	f.Float64Var(&cfg.Warmup, "warmup", 0.03, "linear warmup, as a fraction of the steps")
	f.StringVar(&cfg.Schedule, "schedule", "cosine", "decay after warmup: cosine, linear or constant")
	f.Float64Var(&cfg.ClipNorm, "clip", 1, "clip gradients to this global norm")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed for data order, adapter initialisation and dropout")
	f.IntVar(&cfg.EvalEvery, "eval-every", 0, "steps between validation passes and checkpoints (0: a tenth of the run)")
	f.IntVar(&cfg.Patience, "patience", 0, "stop after this many validations without improvement (0: never)")
	f.IntVar(&cfg.LossChunk, "loss-chunk", 256, "sequence positions per cross-entropy chunk (bounds the [batch, chunk, vocab] logits)")
	f.Float64Var(&cfg.PricePerHour, "price-per-hour", 0, "device cost in $/hour, for the job's cost")
	f.StringVar(&cfg.Backend, "backend", "", `backend: "go", "xla:cuda" or "xla:cpu" (default: automatic)`)
	f.BoolVar(&resume, "resume", false, "continue from --out/checkpoint if there is one")
	f.StringVar(&db, "db", "", "store to record the job in too (SQLite path or postgres:// URL; default FOUNDRY_DB, --config's db, or ./foundry.db when it exists)")
	f.StringVarP(&cfgPath, "config", "c", "", "config file (for the store location; FOUNDRY_DB overrides)")
	return cmd
}

// trainStore opens the store foundry train records its job in besides
// job.json: --db, else FOUNDRY_DB or the config file's, else ./foundry.db
// when it exists. nil, nil when there is none: a training run needs no
// gateway, and creating a database nobody asked for would only confuse.
func trainStore(cmd *cobra.Command, db, cfgPath string) (store.Store, error) {
	if db == "" {
		if cfgPath == "" && os.Getenv("FOUNDRY_DB") == "" {
			if _, err := os.Stat("foundry.db"); err != nil {
				return nil, nil
			}
		}
		cfg, err := config.Load(cfgPath, nil)
		if err != nil {
			return nil, err
		}
		db = cfg.DB
	}
	return openStore(cmd.Context(), db)
}
