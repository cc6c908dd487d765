package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/foundryhq/foundry/model"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// RunnerOptions size a Runner. The zero value gives 4 slots, a context of
// min(max_position_embeddings, 2048) tokens, power-of-two prefill buckets
// and no LoRA adapters.
type RunnerOptions struct {
	// Slots is the number of sequences decoded together (the decode batch).
	Slots int
	// MaxContext is the most tokens (prompt + completion) a slot holds.
	MaxContext int
	// Buckets are the prefill lengths a prompt is padded to, ascending; a
	// graph is compiled once per bucket used. Default: 16, 32, 64, ... up to
	// MaxContext (MaxContext itself is always the last bucket).
	Buckets []int
	// MaxAdapters is how many LoRA adapters can be loaded at once (see
	// LoadAdapter). The default, 0, serves the base model only, with no
	// adapter memory: the stacks cost MaxAdapters+1 adapters of MaxRank.
	MaxAdapters int
	// MaxRank is the largest LoRA rank an adapter may have; default 64.
	// Smaller ranks are padded to it with zeros, so graphs keep one shape.
	MaxRank int
}

// Runner holds a model's weights, bound once on a backend, and a KV cache
// of fixed slots. It runs the model's graphs at static shapes (XLA compiles
// once per shape): Prefill pads a prompt to a bucket and writes its keys and
// values into one slot; Decode advances every slot by one token.
//
// A Runner is safe for concurrent use, but its calls run one at a time;
// Engine is the scheduler that shares one Runner among requests.
type Runner struct {
	backend *Backend
	cfg     model.Config
	slots   int
	maxCtx  int
	buckets []int

	maxAdapters, maxRank int

	mu      sync.Mutex
	ctx     *mlctx.Context
	prefill *mlctx.Exec
	decode  *mlctx.Exec
	forward *mlctx.Exec
	// The same graphs with per-slot LoRA adapters, used when a sequence in
	// the call has one (base-only calls keep the cheaper graphs above).
	prefillLoRA, decodeLoRA, forwardLoRA *mlctx.Exec

	amu      sync.Mutex      // guards adapters; changing them also takes mu
	adapters []loadedAdapter // by index; [0] is the base model (none)
}

const (
	cacheKScope = "/kv_cache/k"
	cacheVScope = "/kv_cache/v"
)

// NewRunner binds m's weights on b (in b.DType) and allocates the KV cache.
// m may be closed once NewRunner returns.
func NewRunner(ctx context.Context, b *Backend, m *model.Model, opts RunnerOptions) (*Runner, error) {
	cfg := m.Config
	if opts.Slots == 0 {
		opts.Slots = 4
	}
	if opts.MaxContext == 0 {
		opts.MaxContext = min(cfg.MaxPositions, 2048)
		if opts.MaxContext <= 0 {
			opts.MaxContext = 2048
		}
	}
	if opts.Slots < 1 || opts.MaxContext < 2 {
		return nil, fmt.Errorf("engine runner for %s: need at least 1 slot and a context of 2 tokens, got %d slots and %d tokens", m.Dir, opts.Slots, opts.MaxContext)
	}
	buckets, err := makeBuckets(opts.Buckets, opts.MaxContext)
	if err != nil {
		return nil, fmt.Errorf("engine runner for %s: %w", m.Dir, err)
	}
	dtype := b.DType
	if dtype == dtypes.InvalidDType {
		dtype = dtypes.Float32
	}
	gctx := mlctx.New()
	if err := m.Bind(gctx, dtype); err != nil {
		return nil, err
	}
	cacheShape := shapes.Make(dtype, opts.Slots, opts.MaxContext, cfg.NumKVHeads, cfg.HeadDim)
	for l := range cfg.NumLayers {
		for _, scope := range []string{cacheKScope, cacheVScope} {
			gctx.InAbsPath(scope).Checked(false).VariableWithValue(fmt.Sprint(l), tensors.FromShape(cacheShape)).SetTrainable(false)
		}
	}
	r := &Runner{backend: b, cfg: cfg, slots: opts.Slots, maxCtx: opts.MaxContext, buckets: buckets, ctx: gctx}
	if err := r.initAdapters(opts, dtype); err != nil {
		return nil, fmt.Errorf("engine runner for %s: %w", m.Dir, err)
	}
	if err := r.compile(); err != nil {
		return nil, fmt.Errorf("engine runner for %s: %w", m.Dir, err)
	}
	return r, nil
}

func makeBuckets(want []int, maxCtx int) ([]int, error) {
	if len(want) == 0 {
		for b := 16; b < maxCtx; b *= 2 {
			want = append(want, b)
		}
	}
	out := slices.Clone(want)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > 0 && out[0] < 1 {
		return nil, fmt.Errorf("prefill buckets must be positive, got %v", want)
	}
	for len(out) > 0 && out[len(out)-1] >= maxCtx {
		out = out[:len(out)-1]
	}
	return append(out, maxCtx), nil
}

// Config is the model's architecture.
func (r *Runner) Config() model.Config { return r.cfg }

// Slots is the number of decode slots.
func (r *Runner) Slots() int { return r.slots }

// MaxContext is the most tokens (prompt and completion together) one slot holds.
func (r *Runner) MaxContext() int { return r.maxCtx }

// Buckets are the prefill lengths prompts are padded to.
func (r *Runner) Buckets() []int { return slices.Clone(r.buckets) }

// Backend is the backend the runner's graphs run on.
func (r *Runner) Backend() *Backend { return r.backend }

// bucket is the smallest bucket holding n tokens.
func (r *Runner) bucket(n int) (int, error) {
	for _, b := range r.buckets {
		if n <= b {
			return b, nil
		}
	}
	return 0, r.tooLong(n)
}

func (r *Runner) tooLong(n int) error {
	return &ContextError{Tokens: n, Limit: r.maxCtx}
}

// ContextError is a prompt that does not fit the context.
type ContextError struct {
	Tokens int // prompt tokens
	Limit  int // the runner's context, prompt and completion together
}

func (e *ContextError) Error() string {
	return fmt.Sprintf("prompt is %d tokens but the engine's context holds %d tokens, prompt and completion together (so at most %d prompt tokens); shorten the prompt, or raise the engine's max context (up to the model's max_position_embeddings)", e.Tokens, e.Limit, e.Limit-1)
}

func (r *Runner) cacheVars(ctx *mlctx.Context, scope string) []*mlctx.Variable {
	vars := make([]*mlctx.Variable, r.cfg.NumLayers)
	for l := range vars {
		vars[l] = ctx.GetVariableByScopeAndName(scope, fmt.Sprint(l))
	}
	return vars
}

// compile creates the executables; graphs are built (and compiled) lazily,
// once per input shape.
func (r *Runner) compile() error {
	cfg := r.cfg
	opts := func(adapters *graph.Node) model.Options {
		o := model.Options{DType: r.backend.DType}
		if adapters != nil {
			o.Hook = r.loraHook(adapters)
		}
		return o
	}
	// Prefill: tokens [1, bucket] int32, slot and length int32 scalars (and
	// the adapter index, an int32 scalar) -> logits [vocab] of the last real
	// token; the slot's cache rows 0..bucket-1 are written.
	prefill := func(ctx *mlctx.Context, tokens, slot, length, adapter *graph.Node) *graph.Node {
		g := tokens.Graph()
		kv, vv := r.cacheVars(ctx, cacheKScope), r.cacheVars(ctx, cacheVScope)
		cache := &model.Cache{K: make([]*graph.Node, cfg.NumLayers), V: make([]*graph.Node, cfg.NumLayers), Slot: slot, Length: length}
		for l := range cfg.NumLayers {
			cache.K[l], cache.V[l] = kv[l].ValueGraph(g), vv[l].ValueGraph(g)
		}
		if adapter != nil {
			adapter = graph.Reshape(adapter, 1)
		}
		positions := graph.Iota(g, tokens.Shape(), 1)
		hidden := model.Decoder(ctx, cfg, tokens, positions, cache, opts(adapter))
		for l := range cfg.NumLayers {
			kv[l].SetValueGraph(cache.K[l])
			vv[l].SetValueGraph(cache.V[l])
		}
		// The last real token's hidden state (Gather: simplego has no DynamicSlice).
		rows := graph.Reshape(hidden, tokens.Shape().Dim(1), cfg.HiddenSize)
		last := graph.Gather(rows, graph.Reshape(graph.SubScalar(length, 1), 1, 1)) // [1, hidden]
		return graph.Reshape(model.Logits(ctx, cfg, last, model.Options{}), cfg.VocabSize)
	}
	// Decode: tokens [slots, 1], positions [slots] int32, active [slots] bool,
	// window [attend] (only its length counts: attention reads cache rows
	// [0, attend), a bucket above every active position), and the adapter
	// indices [slots] int32 -> logits [slots, vocab]; each active slot's
	// key/value is written at its position.
	decode := func(ctx *mlctx.Context, tokens, positions, active, window, adapters *graph.Node) *graph.Node {
		g := tokens.Graph()
		kv, vv := r.cacheVars(ctx, cacheKScope), r.cacheVars(ctx, cacheVScope)
		cache := &model.Cache{K: make([]*graph.Node, cfg.NumLayers), V: make([]*graph.Node, cfg.NumLayers), Active: active,
			Attend: window.Shape().Dim(0)}
		for l := range cfg.NumLayers {
			cache.K[l], cache.V[l] = kv[l].ValueGraph(g), vv[l].ValueGraph(g)
		}
		hidden := model.Decoder(ctx, cfg, tokens, graph.InsertAxes(positions, -1), cache, opts(adapters))
		for l := range cfg.NumLayers {
			kv[l].SetValueGraph(cache.K[l])
			vv[l].SetValueGraph(cache.V[l])
		}
		return graph.Reshape(model.Logits(ctx, cfg, hidden, model.Options{}), r.slots, cfg.VocabSize)
	}
	// Forward: tokens [1, bucket] (and the adapter index) -> logits [bucket, vocab], no cache.
	forward := func(ctx *mlctx.Context, tokens, adapter *graph.Node) *graph.Node {
		if adapter != nil {
			adapter = graph.Reshape(adapter, 1)
		}
		out := model.Forward(ctx, cfg, tokens, opts(adapter))
		return graph.Reshape(out, tokens.Shape().Dim(1), cfg.VocabSize)
	}
	var err error
	if r.prefill, err = mlctx.NewExec(r.backend, r.ctx, func(ctx *mlctx.Context, tokens, slot, length *graph.Node) *graph.Node {
		return prefill(ctx, tokens, slot, length, nil)
	}); err != nil {
		return err
	}
	if r.decode, err = mlctx.NewExec(r.backend, r.ctx, func(ctx *mlctx.Context, tokens, positions, active, window *graph.Node) *graph.Node {
		return decode(ctx, tokens, positions, active, window, nil)
	}); err != nil {
		return err
	}
	if r.forward, err = mlctx.NewExec(r.backend, r.ctx, func(ctx *mlctx.Context, tokens *graph.Node) *graph.Node {
		return forward(ctx, tokens, nil)
	}); err != nil {
		return err
	}
	execs := []*mlctx.Exec{r.prefill, r.decode, r.forward}
	if r.maxAdapters > 0 {
		if r.prefillLoRA, err = mlctx.NewExec(r.backend, r.ctx, prefill); err != nil {
			return err
		}
		if r.decodeLoRA, err = mlctx.NewExec(r.backend, r.ctx, decode); err != nil {
			return err
		}
		if r.forwardLoRA, err = mlctx.NewExec(r.backend, r.ctx, forward); err != nil {
			return err
		}
		execs = append(execs, r.prefillLoRA, r.decodeLoRA, r.forwardLoRA)
	}
	for _, e := range execs {
		e.SetMaxCache(len(r.buckets) + 2)
	}
	return nil
}

// Warmup builds (on XLA: compiles) the prefill and decode graphs of every
// bucket, so that no request waits for a compilation. It overwrites slot 0,
// so call it before serving.
func (r *Runner) Warmup(ctx context.Context) error {
	tokens, positions, active := make([]int32, r.slots), make([]int32, r.slots), make([]bool, r.slots)
	active[0] = true
	for _, b := range r.buckets {
		if err := ctx.Err(); err != nil {
			return err
		}
		graphs := []bool{false} // the base graphs, and the adapter graphs (with index 0, which adds zero)
		if r.maxAdapters > 0 {
			graphs = append(graphs, true)
		}
		for _, lora := range graphs {
			if _, err := r.run(0, make([]int32, min(b, r.maxCtx-1)), lora, 0); err != nil {
				return fmt.Errorf("warm up prefill bucket %d: %w", b, err)
			}
			positions[0] = int32(b - 1)
			if _, err := r.step(tokens, positions, active, make([]int32, r.slots), lora); err != nil {
				return fmt.Errorf("warm up decode bucket %d: %w", b, err)
			}
		}
	}
	return nil
}

// checkIDs rejects token ids outside the vocabulary.
func (r *Runner) checkIDs(ids []int32) error {
	for i, id := range ids {
		if id < 0 || int(id) >= r.cfg.VocabSize {
			return fmt.Errorf("token %d (position %d) is outside the model's vocabulary of %d (was the prompt encoded with another model's tokenizer?)", id, i, r.cfg.VocabSize)
		}
	}
	return nil
}

// Prefill and Decode errors from running the graph (not from checking their
// arguments) leave every slot's cache cleared: callers must restart all the
// sequences in flight.

// Prefill writes the prompt ids into slot's cache rows 0..len(ids)-1 and
// returns the next-token logits after the last prompt token, through the
// LoRA adapter at index adapter (0: the base model). The slot's earlier
// contents are overwritten (rows past the prompt are masked out).
func (r *Runner) Prefill(slot int, ids []int32, adapter int) ([]float32, error) {
	if slot < 0 || slot >= r.slots {
		return nil, fmt.Errorf("prefill: slot %d out of range [0, %d)", slot, r.slots)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("prefill: empty prompt (a prompt needs at least one token)")
	}
	if err := r.checkIDs(ids); err != nil {
		return nil, fmt.Errorf("prefill: %w", err)
	}
	if err := r.checkAdapter(adapter); err != nil {
		return nil, fmt.Errorf("prefill: %w", err)
	}
	return r.run(slot, ids, adapter != 0, int32(adapter))
}

// run prefills, through the adapter graph when lora is set.
func (r *Runner) run(slot int, ids []int32, lora bool, adapter int32) ([]float32, error) {
	b, err := r.bucket(len(ids))
	if err != nil {
		return nil, err
	}
	tokens := make([]int32, b)
	copy(tokens, ids)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out *tensors.Tensor
	if lora {
		out, err = execute(r.prefillLoRA, [][]int32{tokens}, int32(slot), int32(len(ids)), adapter)
	} else {
		out, err = execute(r.prefill, [][]int32{tokens}, int32(slot), int32(len(ids)))
	}
	if err != nil {
		r.resetCache()
		return nil, fmt.Errorf("prefill %d tokens (bucket %d): %w", len(ids), b, err)
	}
	return flat(out)
}

// Decode feeds tokens[s] at positions[s] to every slot s where active[s],
// through the LoRA adapter at index adapters[s] (0: the base model; nil:
// the base model for every slot); the slices have one entry per slot. It
// returns each slot's next-token logits; rows of inactive slots are
// meaningless and their caches untouched.
func (r *Runner) Decode(tokens, positions []int32, active []bool, adapters []int32) ([][]float32, error) {
	if len(tokens) != r.slots || len(positions) != r.slots || len(active) != r.slots {
		return nil, fmt.Errorf("decode: want %d tokens, positions and active flags (one per slot), got %d, %d and %d", r.slots, len(tokens), len(positions), len(active))
	}
	if adapters == nil {
		adapters = make([]int32, r.slots)
	}
	if len(adapters) != r.slots {
		return nil, fmt.Errorf("decode: want %d adapter indices (one per slot), got %d", r.slots, len(adapters))
	}
	if err := r.checkIDs(tokens); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	lora := false
	for s, a := range adapters {
		if !active[s] {
			continue
		}
		if err := r.checkAdapter(int(a)); err != nil {
			return nil, fmt.Errorf("decode: slot %d: %w", s, err)
		}
		lora = lora || a != 0
	}
	return r.step(tokens, positions, active, adapters, lora)
}

// step runs one decode step, through the adapter graph when lora is set.
func (r *Runner) step(tokens, positions []int32, active []bool, adapters []int32, lora bool) ([][]float32, error) {
	last := int32(0)
	for s, p := range positions {
		if active[s] && (p < 0 || int(p) >= r.maxCtx) {
			return nil, fmt.Errorf("decode: slot %d position %d outside the context [0, %d)", s, p, r.maxCtx)
		}
		if active[s] {
			last = max(last, p)
		}
	}
	attend, err := r.bucket(int(last) + 1)
	if err != nil {
		return nil, err
	}
	col := make([][]int32, r.slots)
	for s, t := range tokens {
		col[s] = []int32{t}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out *tensors.Tensor
	if lora {
		idx := make([]int32, r.slots)
		for s, a := range adapters {
			if active[s] {
				idx[s] = a
			}
		}
		out, err = execute(r.decodeLoRA, col, slices.Clone(positions), slices.Clone(active), make([]int32, attend), idx)
	} else {
		out, err = execute(r.decode, col, slices.Clone(positions), slices.Clone(active), make([]int32, attend))
	}
	if err != nil {
		r.resetCache()
		return nil, fmt.Errorf("decode step: %w", err)
	}
	data, err := flat(out)
	if err != nil {
		return nil, err
	}
	rows := make([][]float32, r.slots)
	v := r.cfg.VocabSize
	for s := range rows {
		rows[s] = data[s*v : (s+1)*v : (s+1)*v]
	}
	return rows, nil
}

// Logits runs the full-sequence forward pass (no cache) over ids and
// returns float32 logits [len(ids)][vocab]: row i scores the token after
// ids[i]. adapter is a LoRA adapter's index (0: the base model).
func (r *Runner) Logits(ids []int32, adapter int) ([][]float32, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("logits: no token ids")
	}
	if err := r.checkIDs(ids); err != nil {
		return nil, fmt.Errorf("logits: %w", err)
	}
	if err := r.checkAdapter(adapter); err != nil {
		return nil, fmt.Errorf("logits: %w", err)
	}
	b, err := r.bucket(len(ids))
	if err != nil {
		return nil, err
	}
	tokens := make([]int32, b)
	copy(tokens, ids)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out *tensors.Tensor
	if adapter != 0 {
		out, err = execute(r.forwardLoRA, [][]int32{tokens}, int32(adapter))
	} else {
		out, err = execute(r.forward, [][]int32{tokens})
	}
	if err != nil {
		return nil, fmt.Errorf("logits of %d tokens (bucket %d): %w", len(ids), b, err)
	}
	data, err := flat(out)
	if err != nil {
		return nil, err
	}
	v := r.cfg.VocabSize
	rows := make([][]float32, len(ids))
	for i := range rows {
		rows[i] = data[i*v : (i+1)*v : (i+1)*v]
	}
	return rows, nil
}

// resetCache gives every cache variable a fresh zero value: a failed
// execution may have consumed (donated) the old buffers.
func (r *Runner) resetCache() {
	for _, scope := range []string{cacheKScope, cacheVScope} {
		for _, v := range r.cacheVars(r.ctx, scope) {
			_ = v.SetValue(tensors.FromShape(v.Shape()))
		}
	}
}

// execute runs e, turning a panic while building or running the graph into an error.
func execute(e *mlctx.Exec, args ...any) (out *tensors.Tensor, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("engine graph failed: %v", p)
		}
	}()
	outs, err := e.Exec(args...)
	if err != nil {
		return nil, err
	}
	if len(outs) != 1 {
		return nil, fmt.Errorf("engine graph returned %d outputs, want 1", len(outs))
	}
	return outs[0], nil
}

// flat copies a float32 tensor to the host and frees its device memory.
func flat(t *tensors.Tensor) ([]float32, error) {
	data, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return nil, fmt.Errorf("read logits: %w", err)
	}
	_ = t.FinalizeAll()
	return data, nil
}
