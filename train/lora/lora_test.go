package lora

import (
	"math"
	"testing"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/model/nn"
)

func TestScaleAndDelta(t *testing.T) {
	for _, tc := range []struct {
		l    LoRA
		want float64
	}{{LoRA{Rank: 16, Alpha: 32}, 2}, {LoRA{Rank: 16, Alpha: 32, RSLoRA: true}, 8}} {
		if got := tc.l.Scale(); got != tc.want {
			t.Errorf("%+v: scale %g, want %g", tc.l, got, tc.want)
		}
	}
	// B [2, 1]·A [1, 3] scaled by 2.
	a := &Adapter{LoRA: LoRA{Rank: 1, Alpha: 2}, Modules: map[string]LoRAWeights{
		"m": {A: []float32{1, 2, 3}, B: []float32{10, -1}, In: 3, Out: 2},
	}}
	want := []float32{20, 40, 60, -2, -4, -6}
	for i, v := range a.Delta("m") {
		if math.Abs(float64(v-want[i])) > 1e-6 {
			t.Fatalf("Delta = %v, want %v", a.Delta("m"), want)
		}
	}
}

func TestModuleNames(t *testing.T) {
	cfg := model.RandomConfig()
	if got := ModuleName(3, nn.Gate); got != "model.layers.3.mlp.gate_proj" {
		t.Fatalf("ModuleName = %q", got)
	}
	if got := ModuleScope(ModuleName(0, nn.Q)); got != "/model/layers/0/self_attn/q_proj" {
		t.Fatalf("ModuleScope = %q", got)
	}
	if out, in := ProjectionDims(cfg, nn.K); out != cfg.NumKVHeads*cfg.HeadDim || in != cfg.HiddenSize {
		t.Fatalf("k_proj dims [%d, %d]", out, in)
	}
	if out, in := ProjectionDims(cfg, nn.Down); out != cfg.HiddenSize || in != cfg.IntermediateSize {
		t.Fatalf("down_proj dims [%d, %d]", out, in)
	}
	for _, bad := range []string{"model.layers.x.mlp.up_proj", "model.layers.0.mlp.q_proj", "model.layers.0.self_attn.lm_head"} {
		if _, _, ok := parseModule(bad); ok {
			t.Errorf("parseModule(%q) accepted", bad)
		}
	}
}
