package train

import (
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/model/nn"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified, as in GoMLX's examples
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// crossEntropy returns Σ weights·(−log p(target)) over hidden [B, T, H],
// targets int32 [B, T] and weights [B, T], as a scalar whose gradient is
// exact but whose vocabulary-sized tensors never reach the backward pass.
//
// Logits are computed chunk positions at a time; each chunk's gradient with
// respect to the hidden states, (softmax − onehot)·weights·W, [B, chunk, H],
// is computed right there (and, when the head is trained, Σ (softmax −
// onehot)ᵀ·h, [V, H]). The returned value is the loss plus S − stop(S) with
// S = Σ hidden·stop(G) (+ Σ W·stop(G_W)): exactly zero in value, and G as the
// gradient. Autodiff therefore keeps no [B, T, V] tensor alive for the
// backward pass, which matters with 150k-token vocabularies.
func crossEntropy(ctx *context.Context, cfg model.Config, hidden, targets, weights *Node, chunk int, withGrad bool) *Node {
	g := hidden.Graph()
	T, H := hidden.Shape().Dim(1), hidden.Shape().Dim(2)
	head := ctx.In("lm_head")
	if cfg.TieWordEmbeddings {
		head = ctx.In("model").In("embed_tokens")
	}
	w := nn.Weight(head, g, "weight", hidden.DType(), cfg.VocabSize, H)
	headVar := head.GetVariableByScopeAndName(head.Scope(), "weight")
	trainHead := headVar != nil && headVar.Trainable
	ws := StopGradient(w)
	f := dtypes.Float32
	if hidden.DType() == dtypes.Float64 {
		f = dtypes.Float64 // gradient checks
	}
	if chunk <= 0 || chunk > T {
		chunk = T
	}
	var (
		loss    = ScalarZero(g, f)
		gradH   []*Node
		gradW   *Node
		hidden0 = StopGradient(hidden)
	)
	for c0 := 0; c0 < T; c0 += chunk {
		c1 := min(c0+chunk, T)
		h := SliceAxis(hidden0, 1, AxisRange(c0, c1))
		tg := SliceAxis(targets, 1, AxisRange(c0, c1))
		wt := ConvertDType(SliceAxis(weights, 1, AxisRange(c0, c1)), f)
		logits := ConvertDType(nn.DotGeneral(h, []int{-1}, nil, ws, []int{1}, nil), f) // [B, C, V]
		mx := ReduceAndKeep(logits, ReduceMax, -1)
		shifted := Sub(logits, mx)
		lse := Log(ReduceAndKeep(Exp(shifted), ReduceSum, -1)) // [B, C, 1]
		// The target's column as a bool mask, not a float one-hot [B, C, V].
		dims := shifted.Shape().Dimensions
		isTarget := Equal(Iota(g, shapes.Make(dtypes.Int32, dims...), 2), BroadcastToDims(InsertAxes(ConvertDType(tg, dtypes.Int32), -1), dims...))
		tl := ReduceSum(Where(isTarget, shifted, ZerosLike(shifted)), -1) // [B, C]
		loss = Add(loss, ReduceAllSum(Mul(Sub(Squeeze(lse, -1), tl), wt)))
		if !withGrad {
			continue
		}
		p := Exp(Sub(shifted, lse))
		dlogits := Mul(Where(isTarget, AddScalar(p, -1), p), InsertAxes(wt, -1)) // softmax − onehot, weighted
		dl := ConvertDType(dlogits, hidden.DType())
		gradH = append(gradH, nn.DotGeneral(dl, []int{-1}, nil, ws, []int{0}, nil)) // [B, C, H]
		if trainHead {
			gw := nn.DotGeneral(dl, []int{0, 1}, nil, h, []int{0, 1}, nil) // [V, H]
			if gradW == nil {
				gradW = gw
			} else {
				gradW = Add(gradW, gw)
			}
		}
	}
	if !withGrad {
		return loss
	}
	gh := StopGradient(ConvertDType(Concatenate(gradH, 1), hidden.DType()))
	s := ReduceAllSum(ConvertDType(Mul(hidden, gh), f))
	if trainHead {
		s = Add(s, ReduceAllSum(ConvertDType(Mul(w, StopGradient(gradW)), f)))
	}
	return Add(loss, Sub(s, StopGradient(s)))
}
