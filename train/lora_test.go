package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/model/nn"
	"github.com/foundryhq/foundry/train/lora"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// randomAdapter is an adapter on every projection with A and B drawn from
// ±bound, so that it changes the model's outputs visibly.
func randomAdapter(cfg model.Config, lcfg lora.LoRA, seed uint64, bound float64) *lora.Adapter {
	r := rand.New(rand.NewPCG(seed, 7))
	a := &lora.Adapter{LoRA: lcfg, Modules: map[string]lora.LoRAWeights{}}
	for l := range cfg.NumLayers {
		for _, p := range lcfg.Projections() {
			out, in := lora.ProjectionDims(cfg, p)
			w := lora.LoRAWeights{A: make([]float32, lcfg.Rank*in), B: make([]float32, out*lcfg.Rank), In: in, Out: out}
			for i := range w.A {
				w.A[i] = float32((2*r.Float64() - 1) * bound)
			}
			for i := range w.B {
				w.B[i] = float32((2*r.Float64() - 1) * bound)
			}
			a.Modules[lora.ModuleName(l, p)] = w
		}
	}
	return a
}

var testIDs = []int32{imStart, 'u', 's', 'e', 'r', '\n', 'h', 'i', imEnd, '\n', imStart, 'a', 'b', 'c', 'd', 'e', 'f'}

// TestLoRAForward: with B = 0 (PEFT's initialisation) the adapted model's
// logits are the base's exactly; with random A and B they equal those of
// the merged model W + scale·B·A (Merge) within 1e-5.
func TestLoRAForward(t *testing.T) {
	b := testBackend(t)
	dir, cfg := tinyModelDir(t, 3)
	base := forwardLogits(t, b, dir, nil, testIDs)

	lcfg := lora.LoRA{Rank: 4, Alpha: 8}
	ctx := mlctx.New()
	mustf(t, lora.Init(ctx, cfg, lcfg, 1), "lora.Init")
	fresh, err := lora.FromContext(ctx, cfg, lcfg, dir)
	mustf(t, err, "lora.FromContext")
	if d := maxAbsDiff(base, forwardLogits(t, b, dir, fresh, testIDs)); d != 0 {
		t.Fatalf("B=0 adapter changes the logits by %g; want exactly 0", d)
	}

	for _, rs := range []bool{false, true} {
		lcfg := lora.LoRA{Rank: 4, Alpha: 8, RSLoRA: rs, Targets: []nn.Projection{nn.Q, nn.V, nn.O, nn.Down}}
		a := randomAdapter(cfg, lcfg, 5, 0.3)
		adapted := forwardLogits(t, b, dir, a, testIDs)
		if d := maxAbsDiff(base, adapted); d < 1e-3 {
			t.Fatalf("random adapter moves the logits by only %g", d)
		}
		adir, mdir := t.TempDir(), t.TempDir()
		mustf(t, a.Save(adir), "save adapter")
		mustf(t, lora.Merge(dir, adir, mdir), "merge")
		merged := forwardLogits(t, b, mdir, nil, testIDs)
		if d := maxAbsDiff(adapted, merged); d > 1e-5 {
			t.Fatalf("rslora=%v: merged model's logits differ from base+adapter by %g (> 1e-5)", rs, d)
		} else {
			t.Logf("rslora=%v: |adapter − merged| = %.2g, |adapter − base| = %.2g", rs, d, maxAbsDiff(base, adapted))
		}
	}
}

// TestLoRAGradients checks the LoRA gradients of the training loss (the
// chunked cross-entropy with its surrogate gradient, dropout off) against
// central finite differences. Weights, adapter and loss are float64; the
// model still rounds to float32 inside RMSNorm and the attention softmax,
// which puts ~1e-7 relative noise on the loss (≈4e-6 here): ε = 1e-2 keeps
// that below ~1e-4 on a difference quotient while the O(ε²) truncation error
// stays smaller still. Measured worst relative error: 4.4e-4; bound 2e-3.
func TestLoRAGradients(t *testing.T) {
	b := testBackend(t)
	dir, cfg := tinyModelDir(t, 4)
	m, err := model.Load(dir)
	mustf(t, err, "load")
	defer m.Close()
	f32 := mlctx.New()
	mustf(t, m.Bind(f32, dtypes.Float32), "bind")
	ctx := mlctx.New()
	for v := range f32.IterVariables() {
		vals, _ := tensors.CopyFlatData[float32](v.MustValue())
		d := make([]float64, len(vals))
		for i, x := range vals {
			d[i] = float64(x)
		}
		ctx.InAbsPath(v.Scope()).Checked(false).VariableWithValue(v.Name(), tensors.FromFlatDataAndDimensions(d, v.Shape().Dimensions...)).SetTrainable(false)
	}
	lcfg := lora.LoRA{Rank: 2, Alpha: 4, Targets: []nn.Projection{nn.Q, nn.K, nn.V, nn.O, nn.Gate, nn.Up, nn.Down}}
	a := randomAdapter(cfg, lcfg, 9, 0.2)
	var vars []*mlctx.Variable
	for _, mod := range a.ModuleNames() {
		w := a.Modules[mod]
		for _, x := range []struct {
			name string
			v    []float32
			dims []int
		}{{lora.VarA, w.A, []int{lcfg.Rank, w.In}}, {lora.VarB, w.B, []int{w.Out, lcfg.Rank}}} {
			d := make([]float64, len(x.v))
			for i, f := range x.v {
				d[i] = float64(f)
			}
			vars = append(vars, ctx.InAbsPath(lora.ModuleScope(mod)).Checked(false).VariableWithValue(x.name, tensors.FromFlatDataAndDimensions(d, x.dims...)).SetTrainable(true))
		}
	}
	nn.RegisterGradients()
	opts := model.Options{DType: dtypes.Float64, Hook: lcfg.Hook()}
	tokens := tensors.FromFlatDataAndDimensions(testIDs[:len(testIDs)-1], 1, len(testIDs)-1)
	targets := tensors.FromFlatDataAndDimensions(testIDs[1:], 1, len(testIDs)-1)
	wts := make([]float32, len(testIDs)-1)
	for i := range wts {
		wts[i] = float32(i%3) / 2 // uneven weights, some zero
	}
	weights := tensors.FromFlatDataAndDimensions(wts, 1, len(wts))
	lossExec, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, tok, tg, w *Node) *Node {
		return batchLoss(ctx, cfg, opts, tok, nil, tg, w, 5, true)
	})
	mustf(t, err, "exec")
	gradExec, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, in []*Node) []*Node {
		loss := batchLoss(ctx, cfg, opts, in[0], nil, in[1], in[2], 5, true)
		return append([]*Node{loss}, ctx.BuildTrainableVariablesGradientsGraph(loss)...)
	})
	mustf(t, err, "exec")
	outs, err := gradExec.Exec(tokens, targets, weights)
	mustf(t, err, "gradients")
	if len(outs) != len(vars)+1 {
		t.Fatalf("%d gradients for %d variables", len(outs)-1, len(vars))
	}
	loss := func() float64 {
		out, err := lossExec.Exec1(tokens, targets, weights)
		mustf(t, err, "loss")
		return out.Value().(float64)
	}
	grads := make([][]float64, len(vars))
	for i := range vars {
		grads[i], _ = tensors.CopyFlatData[float64](outs[i+1])
	}
	perturb := func(v *mlctx.Variable, i int, delta float64) {
		vals, _ := tensors.CopyFlatData[float64](v.MustValue())
		vals[i] += delta
		v.MustSetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...))
	}
	const eps = 1e-2
	r := rand.New(rand.NewPCG(1, 2))
	worst := 0.0
	for k := range 24 {
		vi := r.IntN(len(vars))
		if k < len(vars) {
			vi = k // every variable at least once
		}
		v := vars[vi]
		i := r.IntN(v.Shape().Size())
		perturb(v, i, eps)
		up := loss()
		perturb(v, i, -2*eps)
		down := loss()
		perturb(v, i, eps)
		fd, an := (up-down)/(2*eps), grads[vi][i]
		errRel := math.Abs(fd-an) / max(math.Abs(an), 1e-2)
		worst = max(worst, errRel)
		if errRel > 2e-3 {
			t.Errorf("%s[%d]: analytic %.6g, finite difference %.6g (relative error %.2g)", v.ScopeAndName(), i, an, fd, errRel)
		}
	}
	t.Logf("LoRA gradient vs central finite differences: worst relative error %.2g over 24 coordinates (loss %.4f)", worst, loss())
}

// TestChunkedCrossEntropy: the loss and its gradient do not depend on the chunk size.
func TestChunkedCrossEntropy(t *testing.T) {
	b := testBackend(t)
	dir, cfg := tinyModelDir(t, 5)
	ctx := mlctx.New()
	m, err := model.Load(dir)
	mustf(t, err, "load")
	defer m.Close()
	mustf(t, m.Bind(ctx, dtypes.Float32), "bind")
	lcfg := lora.LoRA{Rank: 2, Alpha: 4}
	randomAdapter(cfg, lcfg, 2, 0.2).Bind(ctx)
	nn.RegisterGradients()
	n := len(testIDs) - 1
	tokens := tensors.FromFlatDataAndDimensions(testIDs[:n], 1, n)
	targets := tensors.FromFlatDataAndDimensions(testIDs[1:], 1, n)
	w := make([]float32, n)
	for i := range w {
		w[i] = 1
	}
	weights := tensors.FromFlatDataAndDimensions(w, 1, n)
	results := map[int][]float32{}
	for _, chunk := range []int{n, 3} {
		e, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, in []*Node) []*Node {
			loss := batchLoss(ctx, cfg, model.Options{Hook: lcfg.Hook()}, in[0], nil, in[1], in[2], chunk, true)
			g := ctx.BuildTrainableVariablesGradientsGraph(loss)
			return []*Node{loss, g[0], g[len(g)-1]}
		})
		mustf(t, err, "exec")
		outs, err := e.Exec(tokens, targets, weights)
		mustf(t, err, "run")
		for _, o := range outs {
			v, _ := tensors.CopyFlatData[float32](o)
			results[chunk] = append(results[chunk], v...)
		}
	}
	for i := range results[n] {
		x, y := float64(results[n][i]), float64(results[3][i])
		if math.Abs(x-y) > 1e-5*max(1, math.Abs(x)) {
			t.Fatalf("chunk %d vs %d: value %d is %g vs %g", n, 3, i, x, y)
		}
	}
}
