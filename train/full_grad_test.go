package train

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/foundryhq/foundry/model/nn"

	"github.com/foundryhq/foundry/model"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// TestFullGradientsMatchAutodiff: with every weight trainable (Full), the
// chunked cross-entropy's surrogate gradients equal plain autodiff of the
// unchunked loss for all weights, the head included, on a model with tied
// embeddings (the head's gradient adds to the embedding's).
func TestFullGradientsMatchAutodiff(t *testing.T) {
	b := testBackend(t)
	nn.RegisterGradients()
	for _, arch := range []string{"llama", "qwen2"} { // tied, untied
		t.Run(arch, func(t *testing.T) {
			dir := filepath.Join("..", "model", "testdata", arch)
			m, err := model.Load(dir)
			mustf(t, err, "load")
			defer m.Close()
			cfg := m.Config
			ctx := mlctx.New()
			mustf(t, m.Bind(ctx, dtypes.Float32), "bind")
			for v := range ctx.IterVariables() {
				v.SetTrainable(true)
			}
			ids := []int32{1, 17, 42, 256, 3, 99, 150, 7, 211, 64, 5, 280}
			n := len(ids) - 1
			w := make([]float32, n)
			for i := range w {
				w[i] = float32(i % 2)
			}
			args := []any{tensors.FromFlatDataAndDimensions(ids[:n], 1, n), tensors.FromFlatDataAndDimensions(ids[1:], 1, n), tensors.FromFlatDataAndDimensions(w, 1, n)}
			grads := func(chunked bool) [][]float32 {
				e, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, in []*Node) []*Node {
					var loss *Node
					if chunked {
						loss = batchLoss(ctx, cfg, model.Options{}, in[0], nil, in[1], in[2], 4, true)
					} else {
						logits := model.Forward(ctx, cfg, in[0], model.Options{}) // [1, n, V]
						mx := StopGradient(ReduceAndKeep(logits, ReduceMax, -1))
						lse := Add(Log(ReduceAndKeep(Exp(Sub(logits, mx)), ReduceSum, -1)), mx)
						dims := logits.Shape().Dimensions
						is := Equal(Iota(logits.Graph(), shapes.Make(dtypes.Int32, dims...), 2), BroadcastToDims(InsertAxes(in[1], -1), dims...))
						tl := ReduceSum(Where(is, logits, ZerosLike(logits)), -1)
						loss = ReduceAllSum(Mul(Sub(Squeeze(lse, -1), tl), in[2]))
					}
					return ctx.BuildTrainableVariablesGradientsGraph(loss)
				})
				mustf(t, err, "exec")
				outs, err := e.Exec(args...)
				mustf(t, err, "run")
				var res [][]float32
				for _, o := range outs {
					v, _ := tensors.CopyFlatData[float32](o)
					res = append(res, v)
				}
				return res
			}
			got, want := grads(true), grads(false)
			if len(got) != len(want) {
				t.Fatalf("%d vs %d gradients", len(got), len(want))
			}
			worst := 0.0
			for i := range want {
				scale := 0.0
				for _, v := range want[i] {
					scale = max(scale, math.Abs(float64(v)))
				}
				for j := range want[i] {
					worst = max(worst, math.Abs(float64(got[i][j]-want[i][j]))/max(scale, 1e-3))
				}
			}
			if worst > 1e-4 {
				t.Fatalf("surrogate gradients differ from autodiff by %.2g (relative to each tensor's largest)", worst)
			}
			t.Logf("%s (tied %v): %d weight gradients within %.2g of autodiff", arch, cfg.TieWordEmbeddings, len(want), worst)
		})
	}
}
