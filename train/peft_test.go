package train

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/internal/atomicfile"

	"github.com/foundryhq/foundry/model/nn"
	"github.com/foundryhq/foundry/safetensors"
	"github.com/foundryhq/foundry/train/lora"
)

var update = flag.Bool("update", false, "rewrite golden files (go test ./train -run PEFT -update)")

// TestPEFTRoundTrip writes an adapter, checks its files against PEFT's
// layout (golden adapter_config.json, key names and shapes), reads it back
// (also with PEFT's ".default" key variant and without the base_model
// prefix) and gets the same logits.
func TestPEFTRoundTrip(t *testing.T) {
	b := testBackend(t)
	dir, cfg := tinyModelDir(t, 31)
	lcfg := lora.LoRA{Rank: 4, Alpha: 16, Dropout: 0.05, Targets: []nn.Projection{nn.Q, nn.K, nn.V, nn.O, nn.Gate, nn.Up, nn.Down}}
	a := randomAdapter(cfg, lcfg, 3, 0.2)
	a.BaseModel = "foundry/tiny-llama"
	out := t.TempDir()
	mustf(t, a.Save(out), "save")

	got, err := os.ReadFile(filepath.Join(out, lora.AdapterConfigFile))
	mustf(t, err, "read config")
	golden := filepath.Join("testdata", "adapter_config.golden.json")
	if *update {
		mustf(t, os.WriteFile(golden, got, 0o644), "update golden")
	}
	want, err := os.ReadFile(golden)
	mustf(t, err, "read golden (regenerate with: go test ./train -run PEFT -update)")
	if string(got) != string(want) {
		t.Fatalf("adapter_config.json differs from %s:\n%s", golden, got)
	}
	var fields map[string]any
	mustf(t, json.Unmarshal(got, &fields), "parse config")
	for k, v := range map[string]any{"peft_type": "LORA", "task_type": "CAUSAL_LM", "bias": "none", "r": 4.0, "lora_alpha": 16.0, "use_rslora": false, "base_model_name_or_path": "foundry/tiny-llama"} {
		if fields[k] != v {
			t.Errorf("adapter_config.json %s = %v, want %v", k, fields[k], v)
		}
	}

	f, err := safetensors.Open(filepath.Join(out, lora.AdapterWeightsFile))
	mustf(t, err, "open weights")
	if n := len(f.Names()); n != 2*7*cfg.NumLayers {
		t.Errorf("%d tensors, want %d", n, 2*7*cfg.NumLayers)
	}
	for key, shape := range map[string][]int{
		"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": {4, cfg.HiddenSize},
		"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": {cfg.NumHeads * cfg.HeadDim, 4},
		"base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight": {cfg.NumKVHeads * cfg.HeadDim, 4},
		"base_model.model.model.layers.1.mlp.down_proj.lora_A.weight":    {4, cfg.IntermediateSize},
		"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight":    {cfg.HiddenSize, 4},
	} {
		info, ok := f.Info(key)
		if !ok || info.DType != safetensors.F32 || !slices.Equal(info.Shape, shape) {
			t.Errorf("%s: %v (present %v), want F32 %v", key, info.Shape, ok, shape)
		}
	}
	f.Close()

	back, err := lora.LoadAdapter(out, cfg)
	mustf(t, err, "load")
	if back.LoRA.Rank != 4 || back.LoRA.Alpha != 16 || back.BaseModel != a.BaseModel || len(back.LoRA.Projections()) != 7 {
		t.Fatalf("loaded adapter %+v", back.LoRA)
	}
	want1 := forwardLogits(t, b, dir, a, testIDs)
	if d := maxAbsDiff(want1, forwardLogits(t, b, dir, back, testIDs)); d != 0 {
		t.Fatalf("logits after a PEFT round trip differ by %g", d)
	}

	// Keys as some PEFT versions write them: ".default" before ".weight", and no base_model prefix.
	variant := t.TempDir()
	copyTo(t, filepath.Join(out, lora.AdapterConfigFile), filepath.Join(variant, lora.AdapterConfigFile))
	f, _ = safetensors.Open(filepath.Join(out, lora.AdapterWeightsFile))
	var ts []safetensors.Tensor
	for i, name := range f.Names() {
		info, raw, _ := f.Raw(name)
		n := strings.Replace(name, ".weight", ".default.weight", 1)
		if i%2 == 0 {
			n = strings.TrimPrefix(n, "base_model.model.")
		}
		ts = append(ts, safetensors.Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: raw})
	}
	mustf(t, safetensors.Write(filepath.Join(variant, lora.AdapterWeightsFile), ts, nil), "write variant")
	f.Close() // after Write: the raw bytes are memory-mapped
	v, err := lora.LoadAdapter(variant, cfg)
	mustf(t, err, "load .default variant")
	if d := maxAbsDiff(want1, forwardLogits(t, b, dir, v, testIDs)); d != 0 {
		t.Fatalf("logits with the .default key variant differ by %g", d)
	}
}

func copyTo(t testing.TB, src, dst string) {
	t.Helper()
	mustf(t, atomicfile.Copy(src, dst), "copy %s", src)
}

// TestAdapterMismatch: an adapter checked against the wrong base, or with
// files from two adapters, fails with a message naming the module and the cause.
func TestAdapterMismatch(t *testing.T) {
	_, cfg := tinyModelDir(t, 32)
	a := randomAdapter(cfg, lora.LoRA{Rank: 4, Alpha: 8}, 1, 0.1)
	dir := filepath.Join(t.TempDir(), "support-v3")
	mustf(t, a.Save(dir), "save")

	other := cfg
	other.HiddenSize, other.HeadDim = 96, 24
	_, err := lora.LoadAdapter(dir, other)
	if err == nil || !strings.Contains(err.Error(), `load adapter "support-v3"`) || !strings.Contains(err.Error(), "was it trained on another base?") {
		t.Fatalf("adapter on a base with another hidden size: %v", err)
	}
	t.Logf("wrong base: %v", err)
	fewer := cfg
	fewer.NumLayers = 1
	if _, err := lora.LoadAdapter(dir, fewer); err == nil || !strings.Contains(err.Error(), "layer 1 but the base model has 1 layers") {
		t.Fatalf("adapter with more layers than the base: %v", err)
	}

	// adapter_config.json saying r=16 over rank-4 matrices.
	b, _ := os.ReadFile(filepath.Join(dir, lora.AdapterConfigFile))
	mustf(t, os.WriteFile(filepath.Join(dir, lora.AdapterConfigFile), []byte(strings.Replace(string(b), `"r": 4`, `"r": 16`, 1)), 0o644), "edit")
	_, err = lora.LoadAdapter(dir, cfg)
	if err == nil || !strings.Contains(err.Error(), "has rank 4 but adapter_config.json says r=16") {
		t.Fatalf("rank mismatch: %v", err)
	}
	t.Logf("rank mismatch: %v", err)

	if _, err := lora.LoadAdapter(t.TempDir(), cfg); err == nil || !strings.Contains(err.Error(), "no adapter_config.json") {
		t.Fatalf("empty directory: %v", err)
	}
	// Merge refuses too, before writing anything.
	base, _ := tinyModelDir(t, 33)
	if err := lora.Merge(base, dir, t.TempDir()); err == nil {
		t.Fatal("merge with a mismatched adapter: want an error")
	}
}
