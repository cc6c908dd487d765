// Package lora is Foundry's LoRA adapter: its shape (rank, alpha, targets,
// rsLoRA), its variables in a GoMLX context and the nn.Hook that applies
// them, the PEFT file format (adapter_config.json and
// adapter_model.safetensors, read and written) and Merge into the base
// weights. It depends only on model, model/nn and safetensors, so the
// engine can serve adapters without importing the training loop.
package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/model/nn"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// LoRA variables sit beside the weight they adapt, in the projection's
// scope: /model/layers/3/self_attn/q_proj/lora_A.
const (
	VarA = "lora_A" // [rank, in]
	VarB = "lora_B" // [out, rank]
)

// LoRA is the shape of an adapter: which projections, rank, scaling and dropout.
type LoRA struct {
	Rank    int
	Alpha   float64
	Dropout float64 // on the adapter's input, training only
	// Targets are the adapted projections; empty means all seven.
	Targets []nn.Projection
	// RSLoRA scales by Alpha/√Rank instead of Alpha/Rank (rank-stabilised LoRA).
	RSLoRA bool
}

// Scale is the factor applied to B·A: Alpha/Rank, or Alpha/√Rank with RSLoRA.
func (l LoRA) Scale() float64 {
	if l.RSLoRA {
		return l.Alpha / math.Sqrt(float64(l.Rank))
	}
	return l.Alpha / float64(l.Rank)
}

// targets returns the adapted projections in block order.
// Projections lists the adapted projections in block order (all seven when Targets is empty).
func (l LoRA) Projections() []nn.Projection {
	if len(l.Targets) == 0 {
		return slices.Clone(nn.Projections)
	}
	var out []nn.Projection
	for _, p := range nn.Projections {
		if slices.Contains(l.Targets, p) {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks rank, alpha, dropout and targets.
func (l LoRA) Validate() error {
	if l.Rank <= 0 {
		return fmt.Errorf("LoRA rank must be positive, got %d", l.Rank)
	}
	if l.Alpha <= 0 {
		return fmt.Errorf("LoRA alpha must be positive, got %g", l.Alpha)
	}
	if l.Dropout < 0 || l.Dropout >= 1 {
		return fmt.Errorf("LoRA dropout must be in [0, 1), got %g", l.Dropout)
	}
	for _, p := range l.Targets {
		if !slices.Contains(nn.Projections, p) {
			return fmt.Errorf("LoRA target %q is not one of %v", p, nn.Projections)
		}
	}
	return nil
}

// ParseTargets turns "q,k,v,o,gate,up,down" (short or full names, or "all")
// into projections.
func ParseTargets(s string) ([]nn.Projection, error) {
	var out []nn.Projection
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "all" {
			return slices.Clone(nn.Projections), nil
		}
		p := nn.Projection(f)
		if !strings.HasSuffix(f, "_proj") {
			p = nn.Projection(f + "_proj")
		}
		if !slices.Contains(nn.Projections, p) {
			return nil, fmt.Errorf("unknown LoRA target %q: use q, k, v, o, gate, up, down (or q_proj ... down_proj)", f)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no LoRA targets in %q", s)
	}
	return out, nil
}

// ProjectionDims returns the [out, in] shape of projection p's weight.
func ProjectionDims(cfg model.Config, p nn.Projection) (out, in int) {
	h, q, kv := cfg.HiddenSize, cfg.NumHeads*cfg.HeadDim, cfg.NumKVHeads*cfg.HeadDim
	switch p {
	case nn.Q:
		return q, h
	case nn.K, nn.V:
		return kv, h
	case nn.O:
		return h, q
	case nn.Gate, nn.Up:
		return cfg.IntermediateSize, h
	default: // nn.Down
		return h, cfg.IntermediateSize
	}
}

// ModuleName is the Hugging Face module of layer l's projection p:
// "model.layers.3.self_attn.q_proj".
func ModuleName(l int, p nn.Projection) string {
	group := "mlp"
	switch p {
	case nn.Q, nn.K, nn.V, nn.O:
		group = "self_attn"
	}
	return fmt.Sprintf("model.layers.%d.%s.%s", l, group, p)
}

// ModuleScope is ModuleName as a context scope.
func ModuleScope(module string) string { return "/" + strings.ReplaceAll(module, ".", "/") }

// Init creates the adapter variables of lora in ctx for a model of cfg,
// as PEFT initialises them: A [r, in] Kaiming-uniform (a=√5, so uniform in
// ±1/√in), B [out, r] zeros, both float32 and trainable. seed fixes A.
func Init(ctx *context.Context, cfg model.Config, lora LoRA, seed uint64) error {
	if err := lora.Validate(); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, 0x10a4))
	for l := range cfg.NumLayers {
		for _, p := range lora.Projections() {
			out, in := ProjectionDims(cfg, p)
			a := make([]float32, lora.Rank*in)
			bound := 1 / math.Sqrt(float64(in))
			for i := range a {
				a[i] = float32((2*r.Float64() - 1) * bound)
			}
			setLoRAVars(ctx, ModuleName(l, p), tensors.FromFlatDataAndDimensions(a, lora.Rank, in),
				tensors.FromShape(shapes.Make(dtypes.Float32, out, lora.Rank)))
		}
	}
	return nil
}

// setLoRAVars creates (or overwrites) a module's trainable A and B.
func setLoRAVars(ctx *context.Context, module string, a, b *tensors.Tensor) {
	mctx := ctx.InAbsPath(ModuleScope(module)).Checked(false)
	for _, nt := range []struct {
		name string
		t    *tensors.Tensor
	}{{VarA, a}, {VarB, b}} { // A before B: variable order fixes the gradients' order
		name, t := nt.name, nt.t
		if v := mctx.GetVariableByScopeAndName(mctx.Scope(), name); v != nil {
			v.MustSetValue(t)
			continue
		}
		mctx.VariableWithValue(name, t).SetTrainable(true)
	}
}

// loraHook is the nn.Hook that adds scale·dropout(x)·Aᵀ·Bᵀ to the
// projections that have adapter variables in their scope.
type loraHook struct {
	scale   float64
	dropout float64
	rng     *graph.Node // RNG state threaded through the dropout masks; nil: no dropout
}

// Hook returns the inference hook (no dropout) for LoRA variables in the context.
func (l LoRA) Hook() nn.Hook { return (&loraHook{scale: l.Scale()}).apply }

// TrainingHook is Hook with dropout on the adapter's input, its masks drawn
// from rng (a graph RNG state, threaded through the projections in order).
func (l LoRA) TrainingHook(rng *graph.Node) nn.Hook {
	return (&loraHook{scale: l.Scale(), dropout: l.Dropout, rng: rng}).apply
}

func (h *loraHook) apply(ctx *context.Context, _ int, _ nn.Projection, x, y *graph.Node) *graph.Node {
	va := ctx.GetVariableByScopeAndName(ctx.Scope(), VarA)
	vb := ctx.GetVariableByScopeAndName(ctx.Scope(), VarB)
	if va == nil || vb == nil {
		return y
	}
	g := x.Graph()
	a, b := va.ValueGraph(g), vb.ValueGraph(g)
	xin := graph.ConvertDType(x, a.DType())
	if h.rng != nil && h.dropout > 0 {
		var u *graph.Node
		h.rng, u = graph.RandomUniform(h.rng, xin.Shape())
		keep := graph.GreaterOrEqual(u, graph.Scalar(g, u.DType(), h.dropout))
		xin = graph.Where(keep, graph.MulScalar(xin, 1/(1-h.dropout)), graph.ZerosLike(xin))
	}
	d := nn.DotGeneral(nn.DotGeneral(xin, []int{-1}, nil, a, []int{1}, nil), []int{-1}, nil, b, []int{1}, nil)
	return graph.Add(y, graph.ConvertDType(graph.MulScalar(d, h.scale), y.DType()))
}
