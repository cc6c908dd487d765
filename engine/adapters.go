package engine

import (
	"cmp"
	"fmt"

	"github.com/foundryhq/foundry/model/nn"
	"github.com/foundryhq/foundry/safetensors"
	"github.com/foundryhq/foundry/train/lora"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// Many LoRA adapters are served over one base in the same batch (the idea of
// Punica, S-LoRA and LoRAX): every projection's adapters are stacked into
// A [maxAdapters+1, maxRank, in] and B [maxAdapters+1, out, maxRank], index 0
// being zeros (the base model), smaller ranks zero-padded and each adapter's
// scale folded into its B. A graph takes one adapter index per sequence and
// gathers that sequence's A and B, so one decode step mixes adapters, and
// loading or unloading one only rewrites the stacks' values: the graphs keep
// their shapes and are never recompiled.

// adapterScope holds the stacks of layer l's projection p: /lora_stack/3/q_proj.
func adapterScope(l int, p nn.Projection) string { return fmt.Sprintf("/lora_stack/%d/%s", l, p) }

// loadedAdapter is one index of the stacks.
type loadedAdapter struct {
	name    string
	adapter *lora.Adapter // nil: free
}

func (r *Runner) initAdapters(opts RunnerOptions, dtype dtypes.DType) error {
	r.maxAdapters, r.maxRank = opts.MaxAdapters, cmp.Or(opts.MaxRank, 64)
	if r.maxAdapters < 0 || r.maxRank < 0 {
		return fmt.Errorf("max adapters and max LoRA rank must be positive, got %d and %d", opts.MaxAdapters, opts.MaxRank)
	}
	if r.maxAdapters == 0 {
		return nil
	}
	r.adapters = make([]loadedAdapter, r.maxAdapters+1)
	for l := range r.cfg.NumLayers {
		for _, p := range nn.Projections {
			out, in := lora.ProjectionDims(r.cfg, p)
			actx := r.ctx.InAbsPath(adapterScope(l, p)).Checked(false)
			actx.VariableWithValue("A", tensors.FromShape(shapes.Make(dtype, r.maxAdapters+1, r.maxRank, in))).SetTrainable(false)
			actx.VariableWithValue("B", tensors.FromShape(shapes.Make(dtype, r.maxAdapters+1, out, r.maxRank))).SetTrainable(false)
		}
	}
	return nil
}

// loraHook adds each sequence's adapter to the projections: idx int32
// [batch] holds the adapter index of each row of x [batch, seq, in].
func (r *Runner) loraHook(idx *graph.Node) nn.Hook {
	return func(ctx *mlctx.Context, layer int, proj nn.Projection, x, y *graph.Node) *graph.Node {
		g := x.Graph()
		scope := adapterScope(layer, proj)
		at := graph.InsertAxes(idx, -1)                                                   // [batch, 1]
		a := graph.Gather(ctx.GetVariableByScopeAndName(scope, "A").ValueGraph(g), at)    // [batch, rank, in]
		b := graph.Gather(ctx.GetVariableByScopeAndName(scope, "B").ValueGraph(g), at)    // [batch, out, rank]
		xa := nn.DotGeneral(x, []int{2}, []int{0}, a, []int{2}, []int{0})                 // [batch, seq, rank]
		return graph.Add(y, nn.DotGeneral(xa, []int{2}, []int{0}, b, []int{2}, []int{0})) // [batch, seq, out]
	}
}

// MaxAdapters is how many LoRA adapters can be loaded at once.
func (r *Runner) MaxAdapters() int { return r.maxAdapters }

// MaxRank is the largest LoRA rank the runner serves.
func (r *Runner) MaxRank() int { return r.maxRank }

// checkAdapter rejects an index that holds no adapter.
func (r *Runner) checkAdapter(i int) error {
	if i == 0 {
		return nil
	}
	r.amu.Lock()
	defer r.amu.Unlock()
	if i < 0 || i >= len(r.adapters) || r.adapters[i].adapter == nil {
		return fmt.Errorf("no LoRA adapter is loaded at index %d (indices come from LoadAdapter; 0 is the base model)", i)
	}
	return nil
}

// Adapter returns the index of the adapter loaded as name.
func (r *Runner) Adapter(name string) (int, bool) {
	r.amu.Lock()
	defer r.amu.Unlock()
	return r.adapterIndex(name)
}

func (r *Runner) adapterIndex(name string) (int, bool) {
	for i, la := range r.adapters {
		if i > 0 && la.adapter != nil && la.name == name {
			return i, true
		}
	}
	return 0, false
}

// LoadAdapter puts a into a free index of the adapter stacks, under name,
// and returns the index that Request.Adapter (and Prefill, Decode, Logits)
// use to apply it. It waits for the graph call in progress, if any; no
// graph is recompiled.
func (r *Runner) LoadAdapter(name string, a *lora.Adapter) (int, error) {
	fail := func(format string, args ...any) (int, error) {
		return 0, fmt.Errorf("load adapter %q: %s", name, fmt.Sprintf(format, args...))
	}
	switch {
	case name == "":
		return fail("an adapter needs a name")
	case r.maxAdapters == 0:
		return fail("this engine was started without room for adapters (max adapters 0): start it with max adapters above 0")
	case a == nil || len(a.Modules) == 0:
		return fail("the adapter has no LoRA matrices")
	case a.LoRA.Rank > r.maxRank:
		return fail("rank %d is above the engine's max LoRA rank %d: raise the max rank, or train a smaller adapter", a.LoRA.Rank, r.maxRank)
	}
	if err := a.CheckBase(r.cfg); err != nil {
		return fail("%v", err)
	}
	for mod, w := range a.Modules {
		if len(w.A) != a.LoRA.Rank*w.In || len(w.B) != w.Out*a.LoRA.Rank {
			return fail("module %s: A has %d values and B %d, but rank %d and shape [%d, %d] need %d and %d", mod, len(w.A), len(w.B), a.LoRA.Rank, w.Out, w.In, a.LoRA.Rank*w.In, w.Out*a.LoRA.Rank)
		}
	}
	r.mu.Lock() // the stacks change between graph calls
	defer r.mu.Unlock()
	r.amu.Lock()
	defer r.amu.Unlock()
	if _, dup := r.adapterIndex(name); dup {
		return fail("an adapter of that name is already loaded (unload it first)")
	}
	free := 0
	for i := 1; i < len(r.adapters) && free == 0; i++ {
		if r.adapters[i].adapter == nil {
			free = i
		}
	}
	if free == 0 {
		return fail("all %d adapter places are taken: unload one, or raise the engine's max adapters", r.maxAdapters)
	}
	r.adapters[free] = loadedAdapter{name: name, adapter: a}
	if err := r.writeAdapters(); err != nil {
		r.adapters[free] = loadedAdapter{}
		return fail("%v", err)
	}
	return free, nil
}

// UnloadAdapter frees name's index: requests must no longer use it (the
// index may hold another adapter after the next LoadAdapter).
func (r *Runner) UnloadAdapter(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.amu.Lock()
	defer r.amu.Unlock()
	i, ok := r.adapterIndex(name)
	if !ok {
		return fmt.Errorf("unload adapter %q: no adapter of that name is loaded", name)
	}
	r.adapters[i] = loadedAdapter{}
	if err := r.writeAdapters(); err != nil {
		return fmt.Errorf("unload adapter %q: %w", name, err)
	}
	return nil
}

// writeAdapters sets every stack from the loaded adapters; r.mu and r.amu are held.
func (r *Runner) writeAdapters() error {
	R := r.maxRank
	for l := range r.cfg.NumLayers {
		for _, p := range nn.Projections {
			out, in := lora.ProjectionDims(r.cfg, p)
			mod := lora.ModuleName(l, p)
			av := make([]float32, len(r.adapters)*R*in)
			bv := make([]float32, len(r.adapters)*out*R)
			for i, la := range r.adapters {
				if la.adapter == nil {
					continue
				}
				w, ok := la.adapter.Modules[mod]
				if !ok {
					continue
				}
				rank, scale := la.adapter.LoRA.Rank, float32(la.adapter.LoRA.Scale())
				copy(av[i*R*in:], w.A) // rows [0, rank) of [R, in]
				for o := range out {
					row := bv[(i*out+o)*R:]
					for k := range rank {
						row[k] = scale * w.B[o*rank+k]
					}
				}
			}
			for _, nv := range []struct {
				name string
				vals []float32
				dims []int
			}{{"A", av, []int{len(r.adapters), R, in}}, {"B", bv, []int{len(r.adapters), out, R}}} {
				v := r.ctx.GetVariableByScopeAndName(adapterScope(l, p), nv.name)
				if err := v.SetValue(hostTensor(nv.vals, v.DType(), nv.dims)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// hostTensor makes a tensor of dtype (Float32 or BFloat16) from float32 values.
func hostTensor(vals []float32, dtype dtypes.DType, dims []int) *tensors.Tensor {
	if dtype == dtypes.BFloat16 {
		bf := make([]bfloat16.BFloat16, len(vals))
		for i, v := range vals {
			bf[i] = bfloat16.FromBits(safetensors.F32ToBF16(v))
		}
		return tensors.FromFlatDataAndDimensions(bf, dims...)
	}
	return tensors.FromFlatDataAndDimensions(vals, dims...)
}
