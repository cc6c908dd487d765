// Package model loads Hugging Face decoder-only language models (the Llama
// family: Llama 2/3.x, Mistral, SmolLM2, TinyLlama, Qwen2/2.5, Qwen3) from
// config.json and safetensors, and builds their forward pass as a GoMLX graph.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

var supportedTypes = []string{"llama", "mistral", "qwen2", "qwen3"}

// SupportedTypes returns the config.json model_type values Foundry can run.
func SupportedTypes() []string { return append([]string(nil), supportedTypes...) }

// RopeScaling is config.json's rope_scaling (or rope_parameters) block.
type RopeScaling struct {
	Type                          string  // "llama3", "linear" or "yarn"; "" or "default" for none
	Factor                        float64 // linear, llama3, yarn
	LowFreqFactor, HighFreqFactor float64 // llama3
	OriginalMaxPositions          int     // llama3, yarn
	BetaFast, BetaSlow            float64 // yarn
	AttentionFactor               float64 // yarn; 0 means 0.1·ln(factor)+1
}

// Config is the architecture of a model, read from its config.json.
type Config struct {
	ModelType         string
	VocabSize         int
	HiddenSize        int
	IntermediateSize  int
	NumLayers         int
	NumHeads          int
	NumKVHeads        int // < NumHeads for grouped-query attention
	HeadDim           int
	RMSNormEps        float64
	RopeTheta         float64
	RopeScaling       RopeScaling
	MaxPositions      int
	TieWordEmbeddings bool
	QKVBias           bool // bias on q/k/v projections (Qwen2; Llama's attention_bias)
	OBias             bool // bias on o_proj (Llama's/Qwen3's attention_bias)
	QKNorm            bool // RMSNorm on each head's q and k (Qwen3)
	BOSTokenID        int
	EOSTokenIDs       []int
	TorchDType        string
	SlidingWindow     int // 0 = none; Foundry attends over the full context (see docs/engine.md)
}

// rawConfig mirrors the config.json fields Foundry reads.
type rawConfig struct {
	ModelType         string          `json:"model_type"`
	Architectures     []string        `json:"architectures"`
	VocabSize         int             `json:"vocab_size"`
	HiddenSize        int             `json:"hidden_size"`
	IntermediateSize  int             `json:"intermediate_size"`
	NumLayers         int             `json:"num_hidden_layers"`
	NumHeads          int             `json:"num_attention_heads"`
	NumKVHeads        *int            `json:"num_key_value_heads"`
	HeadDim           *int            `json:"head_dim"`
	RMSNormEps        *float64        `json:"rms_norm_eps"`
	RopeTheta         *float64        `json:"rope_theta"`
	RopeScaling       json.RawMessage `json:"rope_scaling"`
	RopeParameters    json.RawMessage `json:"rope_parameters"` // transformers ≥ 5
	MaxPositions      int             `json:"max_position_embeddings"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	AttentionBias     *bool           `json:"attention_bias"`
	HiddenAct         string          `json:"hidden_act"`
	BOSTokenID        *int            `json:"bos_token_id"`
	EOSTokenID        json.RawMessage `json:"eos_token_id"`
	TorchDType        string          `json:"torch_dtype"`
	DType             string          `json:"dtype"`
	SlidingWindow     *int            `json:"sliding_window"`
	UseSlidingWindow  *bool           `json:"use_sliding_window"`
	MLPBias           bool            `json:"mlp_bias"`
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, fmt.Errorf("load model %s: no config.json (is this a Hugging Face model directory?)", dir)
		}
		return Config{}, fmt.Errorf("load model %s: %w", dir, err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("load %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses a Hugging Face config.json, filling defaults the way
// transformers does for each model_type.
func ParseConfig(b []byte) (Config, error) {
	var r rawConfig
	if err := json.Unmarshal(b, &r); err != nil {
		return Config{}, fmt.Errorf("config.json is not valid JSON: %w", err)
	}
	c := Config{
		ModelType: r.ModelType, VocabSize: r.VocabSize, HiddenSize: r.HiddenSize,
		IntermediateSize: r.IntermediateSize, NumLayers: r.NumLayers, NumHeads: r.NumHeads,
		MaxPositions: r.MaxPositions, TorchDType: r.TorchDType,
	}
	if c.TorchDType == "" {
		c.TorchDType = r.DType
	}
	switch r.ModelType {
	case "llama", "mistral", "qwen2", "qwen3":
	case "":
		return Config{}, fmt.Errorf("config.json has no model_type (architectures %v); supported: %s", r.Architectures, strings.Join(supportedTypes, ", "))
	default:
		return Config{}, fmt.Errorf("unsupported architecture model_type %q (architectures %v); supported: %s", r.ModelType, r.Architectures, strings.Join(supportedTypes, ", "))
	}
	if r.HiddenAct != "" && r.HiddenAct != "silu" {
		return Config{}, fmt.Errorf("unsupported hidden_act %q: Foundry runs silu (SwiGLU) models", r.HiddenAct)
	}
	if r.MLPBias {
		return Config{}, errors.New("unsupported mlp_bias=true")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize}, {"num_hidden_layers", c.NumLayers}, {"num_attention_heads", c.NumHeads}} {
		if f.v <= 0 {
			return Config{}, fmt.Errorf("config.json %s must be positive, got %d", f.name, f.v)
		}
	}
	c.NumKVHeads = c.NumHeads
	if r.NumKVHeads != nil {
		c.NumKVHeads = *r.NumKVHeads
	}
	if c.NumKVHeads <= 0 || c.NumHeads%c.NumKVHeads != 0 {
		return Config{}, fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumHeads, c.NumKVHeads)
	}
	switch {
	case r.HeadDim != nil && *r.HeadDim > 0:
		c.HeadDim = *r.HeadDim
	case r.ModelType == "qwen3":
		c.HeadDim = 128 // transformers' Qwen3Config default
	default:
		if c.HiddenSize%c.NumHeads != 0 {
			return Config{}, fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d; set head_dim", c.HiddenSize, c.NumHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if c.HeadDim%2 != 0 {
		return Config{}, fmt.Errorf("head_dim %d must be even for rotary embeddings", c.HeadDim)
	}
	c.RMSNormEps = 1e-6
	if r.RMSNormEps != nil {
		c.RMSNormEps = *r.RMSNormEps
	}
	c.RopeTheta = 10000
	if r.ModelType == "mistral" {
		c.RopeTheta = 1e6 // MistralConfig default
	}
	if r.RopeTheta != nil {
		c.RopeTheta = *r.RopeTheta
	}
	if c.MaxPositions <= 0 {
		c.MaxPositions = 2048
	}
	if r.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *r.TieWordEmbeddings
	}
	attnBias := r.AttentionBias != nil && *r.AttentionBias
	switch r.ModelType {
	case "qwen2":
		c.QKVBias = true
	case "llama", "qwen3":
		c.QKVBias, c.OBias = attnBias, attnBias
	}
	c.QKNorm = r.ModelType == "qwen3"
	if r.SlidingWindow != nil && (r.UseSlidingWindow == nil || *r.UseSlidingWindow) && r.ModelType == "mistral" {
		c.SlidingWindow = *r.SlidingWindow
	}
	if r.BOSTokenID != nil {
		c.BOSTokenID = *r.BOSTokenID
	}
	if len(r.EOSTokenID) > 0 && string(r.EOSTokenID) != "null" {
		var one int
		if err := json.Unmarshal(r.EOSTokenID, &one); err == nil {
			c.EOSTokenIDs = []int{one}
		} else if err := json.Unmarshal(r.EOSTokenID, &c.EOSTokenIDs); err != nil {
			return Config{}, fmt.Errorf("eos_token_id must be an int or a list of ints: %s", r.EOSTokenID)
		}
	}
	rs := r.RopeScaling
	if len(r.RopeParameters) > 0 && string(r.RopeParameters) != "null" {
		rs = r.RopeParameters
	}
	if err := c.parseRope(rs); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) parseRope(b json.RawMessage) error {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("rope_scaling must be an object: %w", err)
	}
	num := func(k string) float64 {
		if v, ok := m[k].(float64); ok {
			return v
		}
		return 0
	}
	if t := num("rope_theta"); t > 0 {
		c.RopeTheta = t
	}
	typ, _ := m["rope_type"].(string)
	if typ == "" {
		typ, _ = m["type"].(string)
	}
	rs := RopeScaling{
		Type: typ, Factor: num("factor"), LowFreqFactor: num("low_freq_factor"), HighFreqFactor: num("high_freq_factor"),
		OriginalMaxPositions: int(num("original_max_position_embeddings")),
		BetaFast:             num("beta_fast"), BetaSlow: num("beta_slow"), AttentionFactor: num("attention_factor"),
	}
	switch typ {
	case "", "default":
		return nil
	case "linear":
		if rs.Factor <= 0 {
			return fmt.Errorf("rope_scaling linear needs a positive factor, got %v", rs.Factor)
		}
	case "llama3":
		if rs.Factor <= 0 || rs.LowFreqFactor <= 0 || rs.HighFreqFactor <= rs.LowFreqFactor || rs.OriginalMaxPositions <= 0 {
			return fmt.Errorf("rope_scaling llama3 needs factor, low_freq_factor < high_freq_factor and original_max_position_embeddings, got %s", b)
		}
	case "yarn":
		if rs.Factor <= 0 {
			return fmt.Errorf("rope_scaling yarn needs a positive factor, got %v", rs.Factor)
		}
		if rs.BetaFast == 0 {
			rs.BetaFast = 32
		}
		if rs.BetaSlow == 0 {
			rs.BetaSlow = 1
		}
		if rs.OriginalMaxPositions == 0 {
			rs.OriginalMaxPositions = c.MaxPositions
		}
	default:
		return fmt.Errorf("unsupported rope_scaling type %q (supported: default, linear, llama3, yarn)", typ)
	}
	c.RopeScaling = rs
	return nil
}

// InvFreq returns the rotary inverse frequencies (len HeadDim/2) after
// rope_scaling, and the factor applied to cos and sin (1 except for yarn),
// following transformers' modeling_rope_utils.
func (c Config) InvFreq() ([]float64, float64) {
	d := c.HeadDim
	inv := make([]float64, d/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(d))
	}
	rs := c.RopeScaling
	switch rs.Type {
	case "linear":
		for i := range inv {
			inv[i] /= rs.Factor
		}
	case "llama3":
		old := float64(rs.OriginalMaxPositions)
		lowWave, highWave := old/rs.LowFreqFactor, old/rs.HighFreqFactor
		for i, f := range inv {
			wave := 2 * math.Pi / f
			switch {
			case wave < highWave:
			case wave > lowWave:
				inv[i] = f / rs.Factor
			default:
				s := (old/wave - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
				inv[i] = (1-s)*f/rs.Factor + s*f
			}
		}
	case "yarn":
		old := float64(rs.OriginalMaxPositions)
		dim := float64(d)
		corr := func(rot float64) float64 {
			return dim * math.Log(old/(rot*2*math.Pi)) / (2 * math.Log(c.RopeTheta))
		}
		low := math.Max(math.Floor(corr(rs.BetaFast)), 0)
		high := math.Min(math.Ceil(corr(rs.BetaSlow)), dim-1)
		if low == high {
			high += 0.001
		}
		for i, f := range inv {
			ramp := math.Min(math.Max((float64(i)-low)/(high-low), 0), 1)
			extrap := 1 - ramp
			inv[i] = (f/rs.Factor)*(1-extrap) + f*extrap
		}
		att := rs.AttentionFactor
		if att == 0 {
			att = 1
			if rs.Factor > 1 {
				att = 0.1*math.Log(rs.Factor) + 1
			}
		}
		return inv, att
	}
	return inv, 1
}

// String summarises the architecture in one line.
func (c Config) String() string {
	var extras []string
	if c.NumKVHeads != c.NumHeads {
		extras = append(extras, fmt.Sprintf("GQA %d/%d", c.NumHeads, c.NumKVHeads))
	}
	if c.QKVBias {
		extras = append(extras, "qkv-bias")
	}
	if c.QKNorm {
		extras = append(extras, "qk-norm")
	}
	if c.TieWordEmbeddings {
		extras = append(extras, "tied")
	}
	if c.RopeScaling.Type != "" {
		extras = append(extras, "rope:"+c.RopeScaling.Type)
	}
	sort.Strings(extras)
	return fmt.Sprintf("%s: %d layers, hidden %d, %d heads × %d, vocab %d %v", c.ModelType, c.NumLayers, c.HiddenSize, c.NumHeads, c.HeadDim, c.VocabSize, extras)
}
