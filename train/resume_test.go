package train

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/foundryhq/foundry/safetensors"
	"github.com/foundryhq/foundry/train/lora"
)

// TestResumeExact: training 8 steps straight, and training 4, stopping
// (checkpoint), and resuming for the other 4 give the same loss curves bit
// for bit and the same adapter bytes. Dropout, accumulation and a
// validation split are on, so the dropout RNG, the optimizer moments and the
// data order all have to come back exactly.
func TestResumeExact(t *testing.T) {
	b := testBackend(t)
	dir, _ := tinyModelDir(t, 21)
	scaleHead(t, dir, 25)
	words, _, _ := taskWords(5)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "train.jsonl")
	writeJSONL(t, data, taskPairs(words[:40]))
	cfg := Config{
		Base: dir, Data: data, ValFraction: 0.2, LoRA: lora.LoRA{Rank: 4, Alpha: 8, Dropout: 0.1},
		LR: 3e-3, Epochs: 2, Batch: 4, Accum: 2, Warmup: 0.2, EvalEvery: 2, Seed: 7, WeightDecay: 0.01,
	}
	straight := cfg
	straight.Out = filepath.Join(tmp, "straight")
	a, err := Run(t.Context(), straight, Options{Backend: b})
	mustf(t, err, "straight run")
	if a.Steps != 8 {
		t.Fatalf("planned %d steps, want 8 (32 examples, batch 4, accum 2, 2 epochs)", a.Steps)
	}

	split := cfg
	split.Out = filepath.Join(tmp, "split")
	first, err := Run(t.Context(), split, Options{Backend: b, StopAfter: 4})
	mustf(t, err, "first half")
	if first.Status != StatusInterrupted || first.Step != 4 {
		t.Fatalf("first half: status %s at step %d, want interrupted at 4", first.Status, first.Step)
	}
	second, err := Run(t.Context(), split, Options{Backend: b, Resume: true})
	mustf(t, err, "resumed half")
	if second.Status != StatusSucceeded || second.ResumedFrom != 4 {
		t.Fatalf("resumed run: status %s, resumed from step %d; want succeeded from 4", second.Status, second.ResumedFrom)
	}
	if !slices.Equal(a.Train, second.Train) {
		t.Fatalf("training loss curves differ:\nstraight %v\nresumed  %v", a.Train, second.Train)
	}
	if !slices.Equal(a.Val, second.Val) {
		t.Fatalf("validation curves differ:\nstraight %v\nresumed  %v", a.Val, second.Val)
	}
	x, err := os.ReadFile(filepath.Join(straight.Out, lora.AdapterWeightsFile))
	mustf(t, err, "read adapter")
	y, err := os.ReadFile(filepath.Join(split.Out, lora.AdapterWeightsFile))
	mustf(t, err, "read adapter")
	if !bytes.Equal(x, y) {
		t.Fatal("adapters of the straight and the resumed run differ")
	}
	t.Logf("8 steps straight = 4 + resume 4, bit for bit: train %v", a.Train)

	// A resume with other settings is refused rather than silently mixed.
	other := split
	other.LR = 1e-3
	if _, err := Run(t.Context(), other, Options{Backend: b, Resume: true}); err == nil {
		t.Fatal("resume with another learning rate: want an error")
	}
}

// TestAccumulation: one step over batch 4 equals one step over two
// accumulated micro-batches of 2 (same examples, loss normalised per token).
func TestAccumulation(t *testing.T) {
	b := testBackend(t)
	dir, _ := tinyModelDir(t, 22)
	words, _, _ := taskWords(6)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "train.jsonl")
	// Four examples of equal length, so both runs see the same padded tokens.
	writeJSONL(t, data, taskPairs([]string{words[0], words[1], words[2], words[3]}))
	run := func(batch, accum int) *Job {
		cfg := Config{Base: dir, Data: data, Out: filepath.Join(tmp, "out", string(rune('0'+batch))), LoRA: lora.LoRA{Rank: 4, Alpha: 8},
			LR: 1e-2, Batch: batch, Accum: accum, MaxSteps: 2, Epochs: 2, Seed: 3}
		job, err := Run(t.Context(), cfg, Options{Backend: b})
		mustf(t, err, "run batch %d accum %d", batch, accum)
		return job
	}
	one, two := run(4, 1), run(2, 2)
	if len(one.Train) != 2 || len(two.Train) != 2 {
		t.Fatalf("steps: %d and %d, want 2", len(one.Train), len(two.Train))
	}
	// Step 1 sees the same 4 examples in both (the whole epoch); step 2's
	// loss then shows that the same update was applied.
	for i := range 2 {
		if d := abs(one.Train[i].Loss - two.Train[i].Loss); d > 1e-5 {
			t.Fatalf("step %d: loss %.7f with batch 4 vs %.7f with 2×2 accumulation", i+1, one.Train[i].Loss, two.Train[i].Loss)
		}
	}
}

// TestEarlyStopping: validation data that contradicts the training data
// (same prompts, opposite answers) improves while the shared chat format is
// learned, then gets worse; the run stops after Patience evaluations
// without improvement and keeps the adapter of the best evaluation, not the last.
func TestEarlyStopping(t *testing.T) {
	b := testBackend(t)
	dir, cfg := tinyModelDir(t, 23)
	scaleHead(t, dir, 25)
	words, _, _ := taskWords(9)
	tmp := t.TempDir()
	data, val := filepath.Join(tmp, "train.jsonl"), filepath.Join(tmp, "val.jsonl")
	var tr, va [][2]string
	for _, w := range words[:16] {
		tr, va = append(tr, [2]string{w, "yes"}), append(va, [2]string{w, "no"})
	}
	writeJSONL(t, data, tr)
	writeJSONL(t, val, va)
	out := filepath.Join(tmp, "out")
	job, err := Run(t.Context(), Config{Base: dir, Data: data, Val: val, Out: out, LoRA: lora.LoRA{Rank: 4, Alpha: 8},
		LR: 1e-2, Batch: 4, Epochs: 5, EvalEvery: 2, Patience: 2, Seed: 1}, Options{Backend: b})
	mustf(t, err, "train")
	best := 0
	for i, p := range job.Val {
		if p.Loss < job.Val[best].Loss {
			best = i
		}
	}
	if job.Status != StatusStoppedEarly || job.Step >= job.Steps || len(job.Val) != best+3 {
		t.Fatalf("status %s at step %d of %d with validation %v; want stopped_early two evaluations after the best", job.Status, job.Step, job.Steps, job.Val)
	}
	// The kept adapter is not the last one (the checkpoint holds the last).
	a, err := lora.LoadAdapter(out, cfg)
	mustf(t, err, "load adapter")
	f, err := safetensors.Open(filepath.Join(out, "checkpoint", "state.safetensors"))
	mustf(t, err, "open checkpoint")
	defer f.Close()
	last, _, err := f.Float32("/model/layers/0/self_attn/q_proj/lora_B")
	mustf(t, err, "read checkpoint")
	if slices.Equal(last, a.Modules["model.layers.0.self_attn.q_proj"].B) {
		t.Fatal("the adapter kept is the last one, not the best")
	}
	t.Logf("stopped at step %d of %d; best validation loss %.4f at step %d", job.Step, job.Steps, job.Val[best].Loss, job.Val[best].Step)
}

// TestCancelCheckpoints: cancelling a run saves a checkpoint at the step
// it reached, and the job says it was interrupted.
func TestCancelCheckpoints(t *testing.T) {
	b := testBackend(t)
	dir, _ := tinyModelDir(t, 24)
	words, _, _ := taskWords(10)
	data := filepath.Join(t.TempDir(), "d.jsonl")
	writeJSONL(t, data, taskPairs(words[:16]))
	out := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	store := &cancelAfter{n: 3, cancel: cancel}
	job, err := Run(ctx, Config{Base: dir, Data: data, Out: out, LoRA: lora.LoRA{Rank: 4, Alpha: 8}, Batch: 4, Epochs: 3, EvalEvery: 1}, Options{Backend: b, Store: store})
	if err == nil || job.Status != StatusInterrupted {
		t.Fatalf("cancelled run: status %v, error %v", job.Status, err)
	}
	raw, rerr := os.ReadFile(filepath.Join(out, "checkpoint", "trainer.json"))
	mustf(t, rerr, "checkpoint")
	var st trainerState
	mustf(t, json.Unmarshal(raw, &st), "parse checkpoint")
	if st.Step != job.Step || job.Step == 0 || job.Step == job.Steps {
		t.Fatalf("checkpoint at step %d, job at step %d of %d", st.Step, job.Step, job.Steps)
	}
}

// cancelAfter is a JobStore that cancels the run at its n-th save.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) SaveJob(context.Context, *Job) error {
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return nil
}
