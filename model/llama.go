package model

import (
	"fmt"
	"math"

	"github.com/foundryhq/foundry/model/nn"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified, as in GoMLX's examples
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// This file is the whole Llama-family network (Llama, Mistral, Qwen2, Qwen3):
// the Config flags switch on q/k/v bias and q/k RMSNorm. Variables live in the
// context under the Hugging Face tensor names, "." becoming "/" in scopes:
// /model/layers/3/self_attn/q_proj/weight.

// Options are the knobs of a forward pass.
type Options struct {
	// Hook, when set, is applied to each of the seven projections (LoRA).
	Hook nn.Hook
	// DType is the dtype of variables the pass creates (only when the context
	// has no loaded weights, e.g. training from scratch). Default Float32.
	DType dtypes.DType
	// Segments, int32 [batch, seq], packs several sequences into one row
	// (training): a token attends only to earlier tokens with the same
	// segment id. Pass positions that restart at each segment to Decoder.
	// Full-sequence passes only (no cache); nil means one sequence per row.
	Segments *Node
}

// Cache is a KV cache the forward pass reads and extends: K[l] and V[l] are
// [slots, maxSeq, kvHeads, headDim]; Forward replaces them with the updated nodes.
//
// Prefill (Slot != nil): tokens are [1, L] with L ≤ maxSeq; their keys and
// values are written at [Slot, 0:Length), the rest of the slot's rows are
// zeroed, and attention is causal within the prompt.
// Decode (Slot == nil): tokens are [slots, 1]; each slot's key and value are
// written at its position where Active is true, and each slot attends to
// cache positions ≤ its own position.
type Cache struct {
	K, V   []*Node
	Slot   *Node // int32 scalar, prefill only
	Length *Node // int32 scalar, prefill only (optional): tokens past it are padding, their rows are zeroed
	Active *Node // bool [slots], decode only
	// Attend, when > 0 (decode only), limits attention to cache rows
	// [0, Attend): every active position must be below it. Short sequences
	// in a long cache then cost what their length needs.
	Attend int
}

// Forward returns float32 logits [batch, seq, vocab] for tokens [batch, seq]
// at positions 0..seq-1, with causal attention: the full-sequence pass used
// for scoring and training.
func Forward(ctx *context.Context, cfg Config, tokens *Node, opts Options) *Node {
	positions := Iota(tokens.Graph(), tokens.Shape(), 1)
	return Logits(ctx, cfg, Decoder(ctx, cfg, tokens, positions, nil, opts), opts)
}

// Decoder runs the embedding, every block and the final norm: hidden states
// [batch, seq, hidden]. positions are int32 [batch, seq]; cache may be nil.
func Decoder(ctx *context.Context, cfg Config, tokens, positions *Node, cache *Cache, opts Options) *Node {
	dtype := opts.DType
	if dtype == dtypes.InvalidDType {
		dtype = dtypes.Float32
	}
	mctx := ctx.In("model")
	embed := nn.Weight(mctx.In("embed_tokens"), tokens.Graph(), "weight", dtype, cfg.VocabSize, cfg.HiddenSize)
	x := Gather(embed, InsertAxes(tokens, -1)) // [B, T, H]
	invFreq, scale := cfg.InvFreq()
	cos, sin := nn.Rotary(positions, invFreq, scale, x.DType())
	for l := range cfg.NumLayers {
		b := block{cfg: cfg, ctx: mctx.In("layers").In(fmt.Sprint(l)), layer: l, hook: opts.Hook, segments: opts.Segments}
		x = b.Forward(x, cos, sin, positions, cache)
	}
	return nn.RMSNorm(mctx.In("norm"), x, cfg.RMSNormEps)
}

// Logits projects hidden states to float32 vocabulary logits through lm_head
// (or the embedding matrix when the model ties them).
func Logits(ctx *context.Context, cfg Config, hidden *Node, opts Options) *Node {
	head := ctx.In("lm_head")
	if cfg.TieWordEmbeddings {
		head = ctx.In("model").In("embed_tokens")
	}
	w := nn.Weight(head, hidden.Graph(), "weight", hidden.DType(), cfg.VocabSize, cfg.HiddenSize)
	return ConvertDType(nn.DotGeneral(hidden, []int{-1}, nil, w, []int{1}, nil), dtypes.Float32)
}

// block is one decoder layer: pre-norm attention and pre-norm SwiGLU MLP, each residual.
type block struct {
	cfg      Config
	ctx      *context.Context
	layer    int
	hook     nn.Hook
	segments *Node // packed sequences, see Options.Segments
}

func (b block) Forward(x, cos, sin, positions *Node, cache *Cache) *Node {
	h := nn.RMSNorm(b.ctx.In("input_layernorm"), x, b.cfg.RMSNormEps)
	x = Add(x, b.attention(h, cos, sin, positions, cache))
	h = nn.RMSNorm(b.ctx.In("post_attention_layernorm"), x, b.cfg.RMSNormEps)
	return Add(x, b.mlp(h))
}

func (b block) linear(scope *context.Context, x *Node, out int, bias bool, p nn.Projection) *Node {
	return nn.Linear(scope.In(string(p)), x, out, bias, b.hook, b.layer, p)
}

func (b block) mlp(x *Node) *Node {
	c, m := b.cfg, b.ctx.In("mlp")
	gate := b.linear(m, x, c.IntermediateSize, false, nn.Gate)
	up := b.linear(m, x, c.IntermediateSize, false, nn.Up)
	return b.linear(m, Mul(Mul(gate, Sigmoid(gate)), up), c.HiddenSize, false, nn.Down)
}

func (b block) attention(x, cos, sin, positions *Node, cache *Cache) *Node {
	c, a := b.cfg, b.ctx.In("self_attn")
	batch, seq := x.Shape().Dim(0), x.Shape().Dim(1)
	q := Reshape(b.linear(a, x, c.NumHeads*c.HeadDim, c.QKVBias, nn.Q), batch, seq, c.NumHeads, c.HeadDim)
	k := Reshape(b.linear(a, x, c.NumKVHeads*c.HeadDim, c.QKVBias, nn.K), batch, seq, c.NumKVHeads, c.HeadDim)
	v := Reshape(b.linear(a, x, c.NumKVHeads*c.HeadDim, c.QKVBias, nn.V), batch, seq, c.NumKVHeads, c.HeadDim)
	if c.QKNorm {
		q = nn.RMSNorm(a.In("q_norm"), q, c.RMSNormEps)
		k = nn.RMSNorm(a.In("k_norm"), k, c.RMSNormEps)
	}
	q, k = nn.ApplyRotary(q, cos, sin), nn.ApplyRotary(k, cos, sin)

	// mask[b, t, s]: may query t attend to key s.
	var mask *Node
	g := x.Graph()
	switch {
	case cache == nil || cache.Slot != nil: // causal within this sequence
		mask = GreaterOrEqual(Iota(g, shapeI32(batch, seq, seq), 1), Iota(g, shapeI32(batch, seq, seq), 2))
		if b.segments != nil && cache == nil { // block-diagonal: only within one packed sequence
			seg := ConvertDType(b.segments, dtypes.Int32)
			same := Equal(BroadcastToDims(InsertAxes(seg, 2), batch, seq, seq), BroadcastToDims(InsertAxes(seg, 1), batch, seq, seq))
			mask = LogicalAnd(mask, same)
		}
		if cache != nil {
			cache.K[b.layer] = writeSlot(cache.K[b.layer], k, cache.Slot, cache.Length)
			cache.V[b.layer] = writeSlot(cache.V[b.layer], v, cache.Slot, cache.Length)
		}
	default: // decode: write each active slot's key/value at its position, attend to the cache
		maxSeq := cache.K[b.layer].Shape().Dim(1)
		pos := Reshape(positions, batch, 1) // [S, 1]
		cache.K[b.layer] = writeRows(cache.K[b.layer], k, pos, cache.Active)
		cache.V[b.layer] = writeRows(cache.V[b.layer], v, pos, cache.Active)
		k, v = cache.K[b.layer], cache.V[b.layer]
		if n := cache.Attend; n > 0 && n < maxSeq {
			k, v, maxSeq = SliceAxis(k, 1, AxisRange(0, n)), SliceAxis(v, 1, AxisRange(0, n)), n
		}
		keyPos := Iota(g, shapeI32(batch, maxSeq), 1)  // [S, maxSeq]
		mask = InsertAxes(LessOrEqual(keyPos, pos), 1) // [S, 1, maxSeq]
	}

	// Grouped-query attention without copying k/v: split the query heads into
	// [kvHeads, groups] (head h = kv·groups + r, as transformers' repeat_kv).
	groups := c.NumHeads / c.NumKVHeads
	q = Reshape(q, batch, seq, c.NumKVHeads, groups, c.HeadDim)
	scores := nn.DotGeneral(q, []int{4}, []int{0, 2}, k, []int{3}, []int{0, 2}) // [B, KV, T, G, S]
	scores = ConvertDType(MulScalar(scores, 1/math.Sqrt(float64(c.HeadDim))), dtypes.Float32)
	mask = BroadcastToShape(Reshape(mask, batch, 1, seq, 1, mask.Shape().Dim(-1)), scores.Shape())
	scores = Where(mask, scores, Infinity(g, dtypes.Float32, -1))
	probs := ConvertDType(Softmax(scores, -1), v.DType())
	out := nn.DotGeneral(probs, []int{4}, []int{0, 1}, v, []int{1}, []int{0, 2}) // [B, KV, T, G, D]
	out = Reshape(TransposeAllAxes(out, 0, 2, 1, 3, 4), batch, seq, c.NumHeads*c.HeadDim)
	return b.linear(a, out, c.HiddenSize, c.OBias, nn.O)
}

// The cache is written with Gather and ScatterSum (simplego has neither
// DynamicUpdateSlice nor ScatterUpdate): a row is replaced by subtracting its
// old value and adding the new one in two scatters, which is exact in IEEE
// arithmetic (a + -a = 0, 0 + x = x) and touches only the rows written.

// writeSlot returns cache [slots, maxSeq, kvHeads, headDim] with slot's rows
// replaced by x [1, L, kvHeads, headDim] (L ≤ maxSeq) in rows [0, length)
// and zeros after (length nil: L).
func writeSlot(cache, x, slot, length *Node) *Node {
	g := x.Graph()
	dims := cache.Shape().Dimensions
	maxSeq, seq := dims[1], x.Shape().Dim(1)
	if seq < maxSeq {
		x = Concatenate([]*Node{x, Zeros(g, shapes.Make(x.DType(), 1, maxSeq-seq, dims[2], dims[3]))}, 1)
	}
	if length != nil {
		keep := LessThan(Iota(g, shapeI32(1, maxSeq), 1), BroadcastToDims(ConvertDType(length, dtypes.Int32), 1, maxSeq))
		x = Where(BroadcastToDims(Reshape(keep, 1, maxSeq, 1, 1), x.Shape().Dimensions...), x, ZerosLike(x))
	}
	return replaceRows(cache, Reshape(ConvertDType(slot, dtypes.Int32), 1, 1), x)
}

// writeRows returns cache with row (s, pos[s]) replaced by x[s] for every
// slot s where active[s]; x is [slots, 1, kvHeads, headDim], pos int32 [slots, 1].
func writeRows(cache, x, pos, active *Node) *Node {
	g := x.Graph()
	dims := cache.Shape().Dimensions
	slots := dims[0]
	idx := Concatenate([]*Node{Iota(g, shapeI32(slots, 1), 0), ConvertDType(pos, dtypes.Int32)}, 1) // [S, 2]
	x = Reshape(x, slots, dims[2], dims[3])
	on := BroadcastToDims(Reshape(active, slots, 1, 1), x.Shape().Dimensions...)
	return replaceRowsWhere(cache, idx, x, on)
}

// replaceRows sets cache[idx[i]] = x[i]; idx are unique and ascending.
func replaceRows(cache, idx, x *Node) *Node {
	old := Gather(cache, idx, true)
	return ScatterSum(ScatterSum(cache, idx, Neg(old), true, true), idx, x, true, true)
}

// replaceRowsWhere sets cache[idx[i]] = x[i] where on[i], leaving other rows as they are.
func replaceRowsWhere(cache, idx, x, on *Node) *Node {
	old := Gather(cache, idx, true)
	zero := ZerosLike(x)
	return ScatterSum(ScatterSum(cache, idx, Where(on, Neg(old), zero), true, true), idx, Where(on, x, zero), true, true)
}

// shapeI32 is an int32 shape, for Iota masks.
func shapeI32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Int32, dims...) }
