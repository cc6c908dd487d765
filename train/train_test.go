package train

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/tokenizer"
	"github.com/foundryhq/foundry/train/lora"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// The synthetic chat task: the user sends a three-letter word over a–h,
// and the assistant answers "yes" when at least two of its letters are in
// a–d, "no" otherwise. Held-out words never appear in training. (A rule on
// the letters' count, not their order, is within reach of a LoRA on a
// random base whose attention is nearly uniform.)
func taskWords(seed uint64) (train, val, test []string) {
	var all []string
	for a := 'a'; a <= 'h'; a++ {
		for b := 'a'; b <= 'h'; b++ {
			for c := 'a'; c <= 'h'; c++ {
				all = append(all, string([]rune{a, b, c}))
			}
		}
	}
	rand.New(rand.NewPCG(seed, 1)).Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return all[:192], all[192:224], all[224:256]
}

func taskAnswer(w string) string {
	n := 0
	for _, c := range w {
		if c <= 'd' {
			n++
		}
	}
	if n >= 2 {
		return "yes"
	}
	return "no"
}

func taskPairs(words []string) [][2]string {
	var p [][2]string
	for _, w := range words {
		p = append(p, [2]string{w, taskAnswer(w)})
	}
	return p
}

// greedy decodes up to maxNew tokens after each prompt with the model in
// dir plus adapter a, stopping at <|im_end|>.
func greedy(t testing.TB, b *engine.Backend, dir string, a *lora.Adapter, prompts [][]int32, maxNew int) [][]int32 {
	t.Helper()
	m, err := model.Load(dir)
	mustf(t, err, "load")
	defer m.Close()
	ctx := mlctx.New()
	mustf(t, m.Bind(ctx, dtypes.Float32), "bind")
	opts := model.Options{}
	if a != nil {
		a.Bind(ctx)
		opts.Hook = a.LoRA.Hook()
	}
	const T = 64
	exec, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, tokens *graph.Node) *graph.Node {
		return graph.ArgMax(model.Forward(ctx, m.Config, tokens, opts), -1, dtypes.Int32)
	})
	mustf(t, err, "exec")
	defer exec.Finalize()
	var outs [][]int32
	for _, p := range prompts {
		ids := slices.Clone(p)
		var gen []int32
		for range maxNew {
			in := make([]int32, T)
			copy(in, ids)
			res, err := exec.Exec1(tensors.FromFlatDataAndDimensions(in, 1, T))
			mustf(t, err, "forward")
			next, _ := tensors.CopyFlatData[int32](res)
			id := next[len(ids)-1]
			if id == imEnd {
				break
			}
			gen = append(gen, id)
			ids = append(ids, id)
		}
		outs = append(outs, gen)
	}
	return outs
}

func promptIDs(t testing.TB, tok *tokenizer.Tokenizer, user string) []int32 {
	t.Helper()
	text, err := tok.ApplyChatTemplate(tokenizer.ChatRequest{Messages: []tokenizer.Message{{Role: "user", Content: user}}, AddGenerationPrompt: true})
	mustf(t, err, "render prompt")
	var ids []int32
	for _, id := range tok.Encode(text, tokenizer.EncodeOptions{}) {
		ids = append(ids, int32(id))
	}
	return ids
}

// TestTrainSyntheticTask trains a LoRA on a random tiny model until it
// answers the task: the validation loss must fall by at least 5×, and
// greedy decoding must answer every held-out word correctly.
func TestTrainSyntheticTask(t *testing.T) {
	b := testBackend(t)
	dir, _ := tinyModelDir(t, 11)
	scaleHead(t, dir, 25)
	trainW, valW, testW := taskWords(3)
	tmp := t.TempDir()
	data, val := filepath.Join(tmp, "train.jsonl"), filepath.Join(tmp, "val.jsonl")
	writeJSONL(t, data, taskPairs(trainW))
	writeJSONL(t, val, taskPairs(valW))
	out := filepath.Join(tmp, "adapter")
	cfg := Config{
		Base: dir, Data: data, Val: val, Out: out, LoRA: lora.LoRA{Rank: 16, Alpha: 32, Dropout: 0.05},
		LR: 3e-3, Epochs: 12, Batch: 16, Warmup: 0.1, EvalEvery: 10, Seed: 1, PricePerHour: 2.5,
	}
	job, err := Run(t.Context(), cfg, Options{Backend: b})
	mustf(t, err, "train")
	if job.Status != StatusSucceeded || len(job.Val) < 2 {
		t.Fatalf("job status %s with %d evaluations", job.Status, len(job.Val))
	}
	first, best := job.Val[0].Loss, job.Val[0].Loss
	for _, p := range job.Val {
		best = min(best, p.Loss)
	}
	t.Logf("validation loss %.4f -> %.4f (%.1f×) in %d steps; %.0f tokens/s on %s, cost $%.6f", first, best, first/best, job.Step, job.TokensPerSecond, job.Device, job.Cost)
	if first/best < 5 {
		t.Errorf("validation loss fell only %.2f× (%.4f -> %.4f); want ≥ 5×", first/best, first, best)
	}
	if job.Cost <= 0 || job.DeviceSeconds <= 0 {
		t.Errorf("job cost %v for %v device-seconds", job.Cost, job.DeviceSeconds)
	}
	if _, err := os.Stat(filepath.Join(out, "job.json")); err != nil {
		t.Error(err)
	}

	tok, err := tokenizer.Load(dir)
	mustf(t, err, "tokenizer")
	mc, err := model.LoadConfig(dir)
	mustf(t, err, "config")
	a, err := lora.LoadAdapter(out, mc)
	mustf(t, err, "load adapter")
	var prompts [][]int32
	for _, w := range testW {
		prompts = append(prompts, promptIDs(t, tok, w))
	}
	got := greedy(t, b, dir, a, prompts, 5)
	correct := 0
	for i, w := range testW {
		ids := make([]int, len(got[i]))
		for j, id := range got[i] {
			ids[j] = int(id)
		}
		if s := tok.Decode(ids, false); s == taskAnswer(w) {
			correct++
		} else {
			t.Errorf("held-out %q: answered %q, want %q", w, s, taskAnswer(w))
		}
	}
	t.Logf("held-out accuracy %d/%d", correct, len(testW))
	base := greedy(t, b, dir, nil, prompts[:4], 5)
	t.Logf("base model (no adapter) on the first held-out prompts: %v", base)
}
