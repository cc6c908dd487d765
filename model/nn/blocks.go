package nn

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Projection names one of the seven linear projections of a Llama-family
// block, spelled as in Hugging Face tensor names and PEFT target_modules.
type Projection string

// The projections an adapter can attach to.
const (
	Q    Projection = "q_proj"
	K    Projection = "k_proj"
	V    Projection = "v_proj"
	O    Projection = "o_proj"
	Gate Projection = "gate_proj"
	Up   Projection = "up_proj"
	Down Projection = "down_proj"
)

// Projections lists all seven, in block order.
var Projections = []Projection{Q, K, V, O, Gate, Up, Down}

// Hook is the adapter seam: Linear calls it with the projection's input x and
// base output y (y = x·Wᵀ + b) and uses what it returns. LoRA returns
// y + scale·(x·Aᵀ)·Bᵀ. ctx is scoped at the projection (for example
// "/model/layers/3/self_attn/q_proj"), so adapter variables created under it
// sit beside the weight they adapt. A nil Hook means no adapter.
type Hook func(ctx *context.Context, layer int, proj Projection, x, y *graph.Node) *graph.Node

// Weight returns the variable name in ctx's scope as a graph node. It reuses
// a variable already in the context (loaded weights) after checking its
// dimensions, or creates one of dtype with ctx's initializer.
func Weight(ctx *context.Context, g *graph.Graph, name string, dtype dtypes.DType, dims ...int) *graph.Node {
	if v := ctx.GetVariableByScopeAndName(ctx.Scope(), name); v != nil {
		if !shapes.Make(v.DType(), dims...).Equal(v.Shape()) {
			panic(fmt.Errorf("weight %s/%s has shape %s but the model config implies %v", ctx.Scope(), name, v.Shape(), dims))
		}
		return v.ValueGraph(g)
	}
	return ctx.Checked(false).VariableWithShape(name, shapes.Make(dtype, dims...)).ValueGraph(g)
}

// Linear applies the projection whose weight ([out, in], Hugging Face layout)
// lives in ctx's scope as "weight" (and "bias" when bias is set) to the last
// axis of x, then the hook, if any.
func Linear(ctx *context.Context, x *graph.Node, out int, bias bool, hook Hook, layer int, proj Projection) *graph.Node {
	in := x.Shape().Dim(-1)
	w := Weight(ctx, x.Graph(), "weight", x.DType(), out, in)
	y := DotGeneral(x, []int{-1}, nil, w, []int{1}, nil)
	if bias {
		y = graph.Add(y, graph.ExpandLeftToRank(Weight(ctx, x.Graph(), "bias", x.DType(), out), y.Rank()))
	}
	if hook != nil {
		y = hook(ctx, layer, proj, x, y)
	}
	return y
}

// RMSNorm normalises the last axis of x in float32 and scales it by ctx's
// "weight", as transformers' LlamaRMSNorm: weight · (x·rsqrt(mean(x²)+eps)).
func RMSNorm(ctx *context.Context, x *graph.Node, eps float64) *graph.Node {
	dtype := x.DType()
	w := Weight(ctx, x.Graph(), "weight", dtype, x.Shape().Dim(-1))
	x32 := graph.ConvertDType(x, dtypes.Float32)
	variance := graph.ReduceAndKeep(graph.Square(x32), graph.ReduceMean, -1)
	x32 = graph.Mul(x32, graph.Rsqrt(graph.AddScalar(variance, eps)))
	return graph.Mul(graph.ExpandLeftToRank(w, x.Rank()), graph.ConvertDType(x32, dtype))
}

// Rotary returns cos and sin, [batch, seq, headDim] in dtype, for positions
// [batch, seq], from the inverse frequencies and cos/sin scale of Config.InvFreq.
func Rotary(positions *graph.Node, invFreq []float64, scale float64, dtype dtypes.DType) (cos, sin *graph.Node) {
	g := positions.Graph()
	f := make([]float32, len(invFreq))
	for i, v := range invFreq {
		f[i] = float32(v)
	}
	inv := graph.Reshape(graph.Const(g, f), 1, 1, len(f))                                        // [D/2]
	freqs := graph.Mul(graph.InsertAxes(graph.ConvertDType(positions, dtypes.Float32), -1), inv) // [B, T, D/2]
	emb := graph.Concatenate([]*graph.Node{freqs, freqs}, -1)                                    // [B, T, D]
	cos, sin = graph.Cos(emb), graph.Sin(emb)
	if scale != 1 {
		cos, sin = graph.MulScalar(cos, scale), graph.MulScalar(sin, scale)
	}
	return graph.ConvertDType(cos, dtype), graph.ConvertDType(sin, dtype)
}

// ApplyRotary rotates x [batch, seq, heads, headDim] by cos/sin [batch, seq,
// headDim] with the rotate_half convention of transformers' Llama.
func ApplyRotary(x, cos, sin *graph.Node) *graph.Node {
	d := x.Shape().Dim(-1)
	x1 := graph.SliceAxis(x, -1, graph.AxisRange(0, d/2))
	x2 := graph.SliceAxis(x, -1, graph.AxisRange(d/2, d))
	rot := graph.Concatenate([]*graph.Node{graph.Neg(x2), x1}, -1)
	cos, sin = graph.InsertAxes(cos, -2), graph.InsertAxes(sin, -2)
	return graph.Add(graph.Mul(x, cos), graph.Mul(rot, sin))
}
