package lora

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/foundryhq/foundry/internal/atomicfile"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/model/nn"
	"github.com/foundryhq/foundry/safetensors"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// PEFT file names and the prefix PEFT puts before Hugging Face module names.
const (
	AdapterConfigFile  = "adapter_config.json"
	AdapterWeightsFile = "adapter_model.safetensors"
	PEFTPrefix         = "base_model.model."
)

// Adapter is a LoRA adapter on the host: its shape and, per adapted module
// ("model.layers.3.self_attn.q_proj"), the float32 A [r, in] and B [out, r].
type Adapter struct {
	LoRA LoRA
	// BaseModel is PEFT's base_model_name_or_path: the model it was trained on.
	BaseModel string
	Modules   map[string]LoRAWeights
}

// LoRAWeights are one module's adapter matrices, row-major.
type LoRAWeights struct {
	A       []float32 // [Rank, In]
	B       []float32 // [Out, Rank]
	In, Out int
}

// PEFTConfig is adapter_config.json as PEFT writes it for a LoRA adapter.
type PEFTConfig struct {
	AlphaPattern        map[string]float64 `json:"alpha_pattern"`
	AutoMapping         any                `json:"auto_mapping"`
	BaseModelNameOrPath string             `json:"base_model_name_or_path"`
	Bias                string             `json:"bias"`
	FanInFanOut         bool               `json:"fan_in_fan_out"`
	InferenceMode       bool               `json:"inference_mode"`
	InitLoraWeights     bool               `json:"init_lora_weights"`
	LayersPattern       any                `json:"layers_pattern"`
	LayersToTransform   any                `json:"layers_to_transform"`
	LoraAlpha           float64            `json:"lora_alpha"`
	LoraDropout         float64            `json:"lora_dropout"`
	ModulesToSave       []string           `json:"modules_to_save"`
	PeftType            string             `json:"peft_type"`
	R                   int                `json:"r"`
	RankPattern         map[string]int     `json:"rank_pattern"`
	Revision            any                `json:"revision"`
	TargetModules       json.RawMessage    `json:"target_modules"`
	TaskType            string             `json:"task_type"`
	UseDora             bool               `json:"use_dora"`
	UseRSLoRA           bool               `json:"use_rslora"`
}

// peftConfig renders a's adapter_config.json.
func (a *Adapter) peftConfig() PEFTConfig {
	var targets []string
	for _, p := range a.LoRA.Projections() {
		targets = append(targets, string(p))
	}
	sort.Strings(targets) // PEFT writes a set; sorted is stable
	tm, _ := json.Marshal(targets)
	return PEFTConfig{
		AlphaPattern: map[string]float64{}, BaseModelNameOrPath: a.BaseModel, Bias: "none",
		InferenceMode: true, InitLoraWeights: true, LoraAlpha: a.LoRA.Alpha, LoraDropout: a.LoRA.Dropout,
		PeftType: "LORA", R: a.LoRA.Rank, RankPattern: map[string]int{}, TargetModules: tm,
		TaskType: "CAUSAL_LM", UseRSLoRA: a.LoRA.RSLoRA,
	}
}

// FromContext reads the adapter variables Init (or Bind) put in
// ctx for a model of cfg.
func FromContext(ctx *context.Context, cfg model.Config, lora LoRA, baseModel string) (*Adapter, error) {
	a := &Adapter{LoRA: lora, BaseModel: baseModel, Modules: map[string]LoRAWeights{}}
	for l := range cfg.NumLayers {
		for _, p := range lora.Projections() {
			mod := ModuleName(l, p)
			scope := ModuleScope(mod)
			va, vb := ctx.GetVariableByScopeAndName(scope, VarA), ctx.GetVariableByScopeAndName(scope, VarB)
			if va == nil || vb == nil {
				return nil, fmt.Errorf("adapter: no LoRA variables for %s in the context (was Init called with the same targets?)", mod)
			}
			av, err := tensors.CopyFlatData[float32](va.MustValue())
			if err != nil {
				return nil, fmt.Errorf("adapter: %s lora_A: %w", mod, err)
			}
			bv, err := tensors.CopyFlatData[float32](vb.MustValue())
			if err != nil {
				return nil, fmt.Errorf("adapter: %s lora_B: %w", mod, err)
			}
			out, in := ProjectionDims(cfg, p)
			a.Modules[mod] = LoRAWeights{A: av, B: bv, In: in, Out: out}
		}
	}
	return a, nil
}

// Bind puts the adapter's matrices into ctx as trainable float32 variables,
// where LoRA.Hook (and training) find them.
func (a *Adapter) Bind(ctx *context.Context) {
	for _, mod := range a.ModuleNames() {
		w := a.Modules[mod]
		setLoRAVars(ctx, mod, tensors.FromFlatDataAndDimensions(slices.Clone(w.A), a.LoRA.Rank, w.In),
			tensors.FromFlatDataAndDimensions(slices.Clone(w.B), w.Out, a.LoRA.Rank))
	}
}

func (a *Adapter) ModuleNames() []string {
	names := make([]string, 0, len(a.Modules))
	for k := range a.Modules {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return moduleLess(names[i], names[j]) })
	return names
}

// moduleLess orders modules by layer number, then block order of the projection.
func moduleLess(x, y string) bool {
	lx, px, _ := parseModule(x)
	ly, py, _ := parseModule(y)
	if lx != ly {
		return lx < ly
	}
	return slices.Index(nn.Projections, px) < slices.Index(nn.Projections, py)
}

// parseModule splits "model.layers.3.self_attn.q_proj" into 3 and q_proj.
func parseModule(mod string) (int, nn.Projection, bool) {
	parts := strings.Split(mod, ".")
	if len(parts) != 5 || parts[0] != "model" || parts[1] != "layers" {
		return 0, "", false
	}
	l, err := strconv.Atoi(parts[2])
	p := nn.Projection(parts[4])
	if err != nil || l < 0 || !slices.Contains(nn.Projections, p) || ModuleName(l, p) != mod {
		return 0, "", false
	}
	return l, p, true
}

// Save writes the adapter to dir in PEFT format: adapter_config.json and
// adapter_model.safetensors with PEFT's key names
// (base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight).
// Both files are written to temporary names and renamed into place.
func (a *Adapter) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	var ts []safetensors.Tensor
	for _, mod := range a.ModuleNames() {
		w := a.Modules[mod]
		ta, err := safetensors.Float32Tensor(PEFTPrefix+mod+".lora_A.weight", safetensors.F32, []int{a.LoRA.Rank, w.In}, w.A)
		if err != nil {
			return fmt.Errorf("save adapter: %w", err)
		}
		tb, err := safetensors.Float32Tensor(PEFTPrefix+mod+".lora_B.weight", safetensors.F32, []int{w.Out, a.LoRA.Rank}, w.B)
		if err != nil {
			return fmt.Errorf("save adapter: %w", err)
		}
		ts = append(ts, ta, tb)
	}
	if err := safetensors.Write(filepath.Join(dir, AdapterWeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	b, err := json.MarshalIndent(a.peftConfig(), "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, AdapterConfigFile), append(b, '\n'))
}

// LoadAdapter reads a PEFT LoRA adapter from dir (made by Foundry or by PEFT)
// and checks every matrix against the base model's config cfg. It accepts
// PEFT's ".default" key variants and keys without the base_model.model prefix.
func LoadAdapter(dir string, cfg model.Config) (*Adapter, error) {
	name := filepath.Base(filepath.Clean(dir))
	fail := func(format string, args ...any) error {
		return fmt.Errorf("load adapter %q: %s", name, fmt.Sprintf(format, args...))
	}
	b, err := os.ReadFile(filepath.Join(dir, AdapterConfigFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fail("no %s in %s (is it a PEFT adapter directory?)", AdapterConfigFile, dir)
		}
		return nil, fail("%v", err)
	}
	var pc PEFTConfig
	if err := json.Unmarshal(b, &pc); err != nil {
		return nil, fail("%s is not valid JSON: %v", AdapterConfigFile, err)
	}
	switch {
	case pc.PeftType != "" && pc.PeftType != "LORA":
		return nil, fail("peft_type %q is not supported (only LORA)", pc.PeftType)
	case pc.UseDora:
		return nil, fail("DoRA adapters (use_dora) are not supported")
	case pc.FanInFanOut:
		return nil, fail("fan_in_fan_out adapters (GPT-2 Conv1D) are not supported")
	case pc.Bias != "" && pc.Bias != "none":
		return nil, fail("bias %q is not supported (only \"none\")", pc.Bias)
	case len(pc.RankPattern) > 0 || len(pc.AlphaPattern) > 0:
		return nil, fail("per-module rank_pattern/alpha_pattern is not supported")
	case len(pc.ModulesToSave) > 0:
		return nil, fail("modules_to_save %v (fully trained extra modules) is not supported", pc.ModulesToSave)
	case pc.R <= 0:
		return nil, fail("%s has r=%d; it must be positive", AdapterConfigFile, pc.R)
	}
	f, err := safetensors.Open(filepath.Join(dir, AdapterWeightsFile))
	if err != nil {
		return nil, fail("%v (PEFT adapters need %s; .bin adapters are not read: convert them with PEFT)", err, AdapterWeightsFile)
	}
	defer f.Close()
	a := &Adapter{
		LoRA:      LoRA{Rank: pc.R, Alpha: pc.LoraAlpha, Dropout: pc.LoraDropout, RSLoRA: pc.UseRSLoRA},
		BaseModel: pc.BaseModelNameOrPath, Modules: map[string]LoRAWeights{},
	}
	for _, key := range f.Names() {
		k := strings.TrimPrefix(key, PEFTPrefix)
		var which string
		for _, suffix := range []string{".lora_A.weight", ".lora_A.default.weight", ".lora_B.weight", ".lora_B.default.weight"} {
			if strings.HasSuffix(k, suffix) {
				k, which = strings.TrimSuffix(k, suffix), suffix[6:7]
				break
			}
		}
		if which == "" {
			return nil, fail("tensor %q is not a LoRA A or B matrix (only LoRA weights are supported)", key)
		}
		l, p, ok := parseModule(k)
		if !ok {
			return nil, fail("tensor %q adapts module %q, which is not one of a Llama-family layer's projections", key, k)
		}
		if l >= cfg.NumLayers {
			return nil, fail("tensor %q adapts layer %d but the base model has %d layers (was it trained on another base?)", key, l, cfg.NumLayers)
		}
		vals, shape, err := f.Float32(key)
		if err != nil {
			return nil, fail("%v", err)
		}
		out, in := ProjectionDims(cfg, p)
		w := a.Modules[k]
		w.In, w.Out = in, out
		want := []int{pc.R, in}
		if which == "B" {
			want = []int{out, pc.R}
		}
		if len(shape) != 2 {
			return nil, fail("%s lora_%s has shape %v; want a matrix %v", k, which, shape, want)
		}
		rank, dim, dimWant, role := shape[0], shape[1], in, "takes"
		if which == "B" {
			rank, dim, dimWant, role = shape[1], shape[0], out, "produces"
		}
		if rank != pc.R {
			return nil, fail("%s lora_%s has rank %d but %s says r=%d (were the files mixed from two adapters?)", k, which, rank, AdapterConfigFile, pc.R)
		}
		if dim != dimWant {
			return nil, fail("%s lora_%s has shape %v but the base model's %s %s %d features, so it needs %v (was it trained on another base?)", k, which, shape, p, role, dimWant, want)
		}
		if which == "A" {
			w.A = vals
		} else {
			w.B = vals
		}
		a.Modules[k] = w
	}
	if len(a.Modules) == 0 {
		return nil, fail("%s holds no LoRA matrices", AdapterWeightsFile)
	}
	var targets []nn.Projection
	for mod, w := range a.Modules {
		if w.A == nil || w.B == nil {
			return nil, fail("%s has lora_A without lora_B or the other way round", mod)
		}
		_, p, _ := parseModule(mod)
		if !slices.Contains(targets, p) {
			targets = append(targets, p)
		}
	}
	a.LoRA.Targets = LoRA{Targets: targets}.Projections()
	return a, nil
}

// Delta returns module mod's weight update scale·B·A, [out, in] row-major,
// accumulated in float64.
func (a *Adapter) Delta(mod string) []float32 {
	w := a.Modules[mod]
	r, s := a.LoRA.Rank, a.LoRA.Scale()
	d := make([]float32, w.Out*w.In)
	row := make([]float64, w.In)
	for o := range w.Out {
		clear(row)
		for k := range r {
			bk := float64(w.B[o*r+k])
			if bk == 0 {
				continue
			}
			ak := w.A[k*w.In : (k+1)*w.In]
			for i, v := range ak {
				row[i] += bk * float64(v)
			}
		}
		for i, v := range row {
			d[o*w.In+i] = float32(s * v)
		}
	}
	return d
}

// CheckBase reports whether a model of cfg can carry the adapter (LoadAdapter checks this too).
func (a *Adapter) CheckBase(cfg model.Config) error {
	for mod, w := range a.Modules {
		l, p, _ := parseModule(mod)
		out, in := ProjectionDims(cfg, p)
		if l >= cfg.NumLayers || w.In != in || w.Out != out {
			return fmt.Errorf("adapter module %s is [%d, %d] but the base model's is [%d, %d] (was it trained on another base?)", mod, w.Out, w.In, out, in)
		}
	}
	return nil
}
