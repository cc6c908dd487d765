package model

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/foundryhq/foundry/safetensors"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Model is a Hugging Face model directory opened for use: its config and its
// (memory-mapped) safetensors weights, checked against each other.
type Model struct {
	Dir     string
	Config  Config
	weights *safetensors.Set
}

// Load opens dir's config.json and safetensors weights and checks that every
// tensor the architecture needs is present with the shape the config implies.
func Load(dir string) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	m := &Model{Dir: dir, Config: cfg, weights: set}
	for _, spec := range cfg.Tensors() {
		info, ok := set.Info(spec.Name)
		if !ok {
			_ = set.Close()
			return nil, fmt.Errorf("load model %s: weights have no tensor %q, which a %s model needs (incomplete download, or a different architecture than config.json says?)", dir, spec.Name, cfg.ModelType)
		}
		if !equalInts(info.Shape, spec.Shape) {
			_ = set.Close()
			return nil, fmt.Errorf("load model %s: %s has shape %v but config.json implies %v: was config.json edited, or do the weights belong to another model?", dir, describe(spec.Name), info.Shape, spec.Shape)
		}
		switch info.DType {
		case safetensors.F32, safetensors.F16, safetensors.BF16:
		default:
			_ = set.Close()
			return nil, fmt.Errorf("load model %s: tensor %q has dtype %s; Foundry reads F32, F16 and BF16 weights", dir, spec.Name, info.DType)
		}
	}
	return m, nil
}

// Close releases the weight files.
func (m *Model) Close() error { return m.weights.Close() }

// TensorSpec is one weight the architecture needs.
type TensorSpec struct {
	Name  string
	Shape []int
}

// Tensors lists the weights of the architecture, with Hugging Face names and shapes.
func (c Config) Tensors() []TensorSpec {
	h, kv, d := c.HiddenSize, c.NumKVHeads*c.HeadDim, c.HeadDim
	specs := []TensorSpec{{"model.embed_tokens.weight", []int{c.VocabSize, h}}, {"model.norm.weight", []int{h}}}
	if !c.TieWordEmbeddings {
		specs = append(specs, TensorSpec{"lm_head.weight", []int{c.VocabSize, h}})
	}
	for l := range c.NumLayers {
		p := fmt.Sprintf("model.layers.%d.", l)
		add := func(name string, shape ...int) { specs = append(specs, TensorSpec{p + name, shape}) }
		add("input_layernorm.weight", h)
		add("post_attention_layernorm.weight", h)
		add("self_attn.q_proj.weight", c.NumHeads*d, h)
		add("self_attn.k_proj.weight", kv, h)
		add("self_attn.v_proj.weight", kv, h)
		add("self_attn.o_proj.weight", h, c.NumHeads*d)
		if c.QKVBias {
			add("self_attn.q_proj.bias", c.NumHeads*d)
			add("self_attn.k_proj.bias", kv)
			add("self_attn.v_proj.bias", kv)
		}
		if c.OBias {
			add("self_attn.o_proj.bias", h)
		}
		if c.QKNorm {
			add("self_attn.q_norm.weight", d)
			add("self_attn.k_norm.weight", d)
		}
		add("mlp.gate_proj.weight", c.IntermediateSize, h)
		add("mlp.up_proj.weight", c.IntermediateSize, h)
		add("mlp.down_proj.weight", h, c.IntermediateSize)
	}
	return specs
}

// Bind puts every weight into ctx as a frozen (non-trainable) variable of
// dtype (Float32 on CPU, BFloat16 on GPU), under the scope of its Hugging
// Face name ("model.layers.3.self_attn.q_proj.weight" becomes variable
// "weight" in scope "/model/layers/3/self_attn/q_proj").
func (m *Model) Bind(ctx *context.Context, dtype dtypes.DType) error {
	for _, spec := range m.Config.Tensors() {
		vals, shape, err := m.weights.Float32(spec.Name)
		if err != nil {
			return fmt.Errorf("bind model %s: %w", m.Dir, err)
		}
		var t *tensors.Tensor
		switch dtype {
		case dtypes.Float32:
			t = tensors.FromFlatDataAndDimensions(vals, shape...)
		case dtypes.BFloat16:
			bf := make([]bfloat16.BFloat16, len(vals))
			for i, v := range vals {
				bf[i] = bfloat16.FromBits(safetensors.F32ToBF16(v))
			}
			t = tensors.FromFlatDataAndDimensions(bf, shape...)
		default:
			return fmt.Errorf("bind model %s: dtype %s not supported (use Float32 or BFloat16)", m.Dir, dtype)
		}
		scope, name := scopeOf(spec.Name)
		vctx := ctx.InAbsPath(scope)
		if v := vctx.GetVariableByScopeAndName(vctx.Scope(), name); v != nil {
			if err := v.SetValue(t); err != nil {
				return fmt.Errorf("bind model %s: %s: %w", m.Dir, spec.Name, err)
			}
			continue
		}
		vctx.Checked(false).VariableWithValue(name, t).SetTrainable(false)
	}
	return nil
}

// scopeOf maps a Hugging Face tensor name to a context scope and variable name.
func scopeOf(name string) (scope, variable string) {
	i := strings.LastIndexByte(name, '.')
	return "/" + strings.ReplaceAll(name[:i], ".", "/"), name[i+1:]
}

// describe names a tensor for people: "layer 3 q_proj weight".
func describe(name string) string {
	parts := strings.Split(name, ".")
	if len(parts) >= 5 && parts[0] == "model" && parts[1] == "layers" {
		return fmt.Sprintf("layer %s %s %s", parts[2], parts[len(parts)-2], parts[len(parts)-1])
	}
	return name
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// RandomConfig is a tiny Llama-architecture config for tests and the quick start.
func RandomConfig() Config {
	return Config{
		ModelType: "llama", VocabSize: 256, HiddenSize: 64, IntermediateSize: 128, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, HeadDim: 16, RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositions: 512,
		BOSTokenID: 1, EOSTokenIDs: []int{2},
	}
}

// WriteRandom writes a randomly initialised model of config cfg to dir
// (config.json and model.safetensors, float32): weights ~ N(0, 0.02), norms
// near 1, biases small; the same seed gives the same bytes.
func WriteRandom(dir string, cfg Config, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	return WriteWeights(dir, cfg, safetensors.F32, func(spec TensorSpec, v []float32) {
		norm := strings.HasSuffix(spec.Name, "norm.weight")
		for i := range v {
			if norm {
				v[i] = 1 + 0.1*float32(r.NormFloat64())
			} else {
				v[i] = 0.02 * float32(r.NormFloat64())
			}
		}
	})
}

// WriteWeights writes a model of config cfg to dir: config.json, and
// model.safetensors in dtype with every tensor of cfg.Tensors(), in order,
// filled by fill (v is zeroed, with spec's element count).
func WriteWeights(dir string, cfg Config, dtype safetensors.DType, fill func(spec TensorSpec, v []float32)) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	var ts []safetensors.Tensor
	for _, spec := range cfg.Tensors() {
		n := 1
		for _, d := range spec.Shape {
			n *= d
		}
		v := make([]float32, n)
		fill(spec, v)
		t, err := safetensors.Float32Tensor(spec.Name, dtype, spec.Shape, v)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	b, err := json.MarshalIndent(cfg.HFConfig(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644)
}

// HFConfig renders c as a Hugging Face config.json object.
func (c Config) HFConfig() map[string]any {
	arch := map[string]string{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[c.ModelType]
	m := map[string]any{
		"architectures": []string{arch}, "model_type": c.ModelType, "vocab_size": c.VocabSize,
		"hidden_size": c.HiddenSize, "intermediate_size": c.IntermediateSize, "num_hidden_layers": c.NumLayers,
		"num_attention_heads": c.NumHeads, "num_key_value_heads": c.NumKVHeads, "head_dim": c.HeadDim,
		"rms_norm_eps": c.RMSNormEps, "rope_theta": c.RopeTheta, "max_position_embeddings": c.MaxPositions,
		"tie_word_embeddings": c.TieWordEmbeddings, "hidden_act": "silu", "torch_dtype": "float32",
		"bos_token_id": c.BOSTokenID,
	}
	if c.ModelType == "llama" || c.ModelType == "qwen3" {
		m["attention_bias"] = c.OBias
	}
	if len(c.EOSTokenIDs) == 1 {
		m["eos_token_id"] = c.EOSTokenIDs[0]
	} else if len(c.EOSTokenIDs) > 1 {
		m["eos_token_id"] = c.EOSTokenIDs
	}
	if rs := c.RopeScaling; rs.Type != "" {
		s := map[string]any{"rope_type": rs.Type, "factor": rs.Factor}
		if rs.Type == "llama3" {
			s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"] = rs.LowFreqFactor, rs.HighFreqFactor, rs.OriginalMaxPositions
		}
		m["rope_scaling"] = s
	}
	return m
}
