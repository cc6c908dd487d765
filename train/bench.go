package train

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/foundryhq/foundry/engine"
)

// BenchResult is the speed of training steps on random tokens.
type BenchResult struct {
	Batch, Seq, Steps int
	// CompileSeconds is the first step's time (graph building and
	// compilation included); the rates below leave it out.
	CompileSeconds  float64
	Seconds         float64
	TokensPerSecond float64
	Loss            []float64
}

// Benchmark times training steps of cfg's adapter (or, with cfg.Full, all
// weights) on the model in cfg.Base, with random token batches [batch, seq]
// and the loss on every position: one step to compile, then steps timed
// steps. Data, validation and checkpoints are left out; the step is the
// one Run executes.
func Benchmark(ctx context.Context, b *engine.Backend, cfg Config, batch, seq, steps int, log *slog.Logger) (BenchResult, error) {
	cfg = cfg.Defaults()
	if !cfg.Full {
		if err := cfg.LoRA.Validate(); err != nil {
			return BenchResult{}, err
		}
	}
	if log == nil {
		log = slog.Default()
	}
	s, err := newSession(cfg, b, log)
	if err != nil {
		return BenchResult{}, err
	}
	defer s.close()
	r := rand.New(rand.NewPCG(cfg.Seed, 0xbe4c))
	bt := randomBatch(batch, seq, s.mcfg.VocabSize, r)
	res := BenchResult{Batch: batch, Seq: seq, Steps: steps}
	inv := 1 / float64(bt.NTargets)
	start := time.Now()
	l, err := s.trainMicro(bt, true, inv, cfg.LR, cfg.Seed, 0)
	if err != nil {
		return res, fmt.Errorf("benchmark: first step: %w", err)
	}
	res.CompileSeconds = time.Since(start).Seconds()
	res.Loss = append(res.Loss, l*inv)
	start = time.Now()
	for i := range steps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		l, err := s.trainMicro(bt, true, inv, cfg.LR, cfg.Seed, i+1)
		if err != nil {
			return res, fmt.Errorf("benchmark: step %d: %w", i+1, err)
		}
		res.Loss = append(res.Loss, l*inv)
	}
	res.Seconds = time.Since(start).Seconds()
	res.TokensPerSecond = float64(batch*seq*steps) / res.Seconds
	return res, nil
}

// randomBatch is a random full batch (no padding), every position in the loss.
func randomBatch(rows, seq, vocab int, r *rand.Rand) batch {
	b := batch{B: rows, T: seq, Inputs: make([]int32, rows*seq), Targets: make([]int32, rows*seq), Weights: make([]float32, rows*seq),
		Positions: make([]int32, rows*seq), Segments: make([]int32, rows*seq)}
	for i := range b.Inputs {
		b.Inputs[i] = int32(r.IntN(vocab))
		b.Targets[i] = int32(r.IntN(vocab))
		b.Weights[i] = 1
		b.Positions[i] = int32(i % seq)
		b.Segments[i] = 1
	}
	b.NTargets, b.NTokens = rows*seq, rows*seq
	return b
}
