package train

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/tokenizer"
	"github.com/foundryhq/foundry/train/lora"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// TestPacking: four examples packed into one row (block-diagonal attention,
// positions restarting) give the same loss, to float32 rounding, as the
// same examples one per padded row; and a packed run trains.
func TestPacking(t *testing.T) {
	b := testBackend(t)
	dir, cfg := tinyModelDir(t, 61)
	tok, err := tokenizer.Load(dir)
	mustf(t, err, "tokenizer")
	words, _, _ := taskWords(4)
	var exs []Example
	for i, p := range taskPairs(words[:4]) {
		if i%2 == 1 {
			p[1] += " indeed" // uneven lengths
		}
		path := filepath.Join(t.TempDir(), "d.jsonl")
		writeJSONL(t, path, [][2]string{p})
		d, err := LoadData(path, tok, DataOptions{})
		mustf(t, err, "load")
		exs = append(exs, d.Examples[0])
	}
	packed := makeBatch([][]Example{exs}, 1, 256)
	padded := makeBatch([][]Example{{exs[0]}, {exs[1]}, {exs[2]}, {exs[3]}}, 4, 256)
	if packed.NTargets != padded.NTargets || packed.NTokens != padded.NTokens {
		t.Fatalf("packed %d targets / %d tokens, padded %d / %d", packed.NTargets, packed.NTokens, padded.NTargets, padded.NTokens)
	}

	m, err := model.Load(dir)
	mustf(t, err, "load model")
	defer m.Close()
	ctx := mlctx.New()
	mustf(t, m.Bind(ctx, dtypes.Float32), "bind")
	lcfg := lora.LoRA{Rank: 4, Alpha: 8}
	randomAdapter(cfg, lcfg, 8, 0.3).Bind(ctx)
	e, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, tok, tg, w, pos, seg *Node) *Node {
		return batchLoss(ctx, cfg, model.Options{Hook: lcfg.Hook(), Segments: seg}, tok, pos, tg, w, 16, false)
	})
	mustf(t, err, "exec")
	loss := func(bt batch) float64 {
		out, err := e.Exec1(batchArgs(bt)...)
		mustf(t, err, "run")
		return float64(out.Value().(float32))
	}
	lp, lr := loss(packed), loss(padded)
	if math.Abs(lp-lr) > 1e-5*math.Abs(lr) {
		t.Fatalf("packed loss %.7f, padded %.7f", lp, lr)
	}
	// Without the segments, the packed examples would see each other.
	noSeg := packed
	noSeg.Segments = make([]int32, len(packed.Segments))
	if l := loss(noSeg); math.Abs(l-lr) < 1e-3 {
		t.Fatalf("a packed row without segment ids gives the padded loss too (%.6f); the mask test proves nothing", l)
	}

	data := filepath.Join(t.TempDir(), "train.jsonl")
	writeJSONL(t, data, taskPairs(words[:48]))
	job, err := Run(t.Context(), Config{Base: dir, Data: data, Out: t.TempDir(), Pack: true, MaxLen: 128, Batch: 2, LoRA: lcfg, LR: 1e-2, Epochs: 2, Seed: 1}, Options{Backend: b})
	mustf(t, err, "packed run")
	// ~22 tokens an example: 5 in a row of 128, so 5 batches of 2 rows an
	// epoch where one example a row would take 24.
	if job.Steps > 12 || job.Train[len(job.Train)-1].Loss >= job.Train[0].Loss {
		t.Fatalf("packed run: %d steps for 2 epochs (want ≤ 12), losses %v", job.Steps, job.Train)
	}
}
