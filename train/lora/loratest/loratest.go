// Package loratest makes adapters and float32 model copies for tests of
// code that serves or merges LoRA adapters.
package loratest

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/model/nn"
	"github.com/foundryhq/foundry/safetensors"
	"github.com/foundryhq/foundry/train/lora"
)

// RandomAdapter returns an adapter for cfg with nonzero A and B (N(0, 0.1²),
// seeded) on targets (nil: all seven projections) of every layer.
func RandomAdapter(cfg model.Config, rank int, alpha float64, targets []nn.Projection, seed uint64) *lora.Adapter {
	rng := rand.New(rand.NewPCG(seed, 1))
	l := lora.LoRA{Rank: rank, Alpha: alpha, Targets: targets}
	a := &lora.Adapter{LoRA: l, BaseModel: "fixture", Modules: map[string]lora.LoRAWeights{}}
	for layer := range cfg.NumLayers {
		for _, p := range l.Projections() {
			out, in := lora.ProjectionDims(cfg, p)
			w := lora.LoRAWeights{A: make([]float32, rank*in), B: make([]float32, out*rank), In: in, Out: out}
			for i := range w.A {
				w.A[i] = float32(rng.NormFloat64() * 0.1)
			}
			for i := range w.B {
				w.B[i] = float32(rng.NormFloat64() * 0.1)
			}
			a.Modules[lora.ModuleName(layer, p)] = w
		}
	}
	return a
}

// Float32Model copies the model directory from into a temporary directory
// with float32 weights (fixtures are bfloat16, which would round a merged
// model's weights) and returns it.
func Float32Model(t testing.TB, from string) string {
	t.Helper()
	dir := t.TempDir()
	set, err := safetensors.OpenDir(from)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var ts []safetensors.Tensor
	for _, name := range set.Names() {
		vals, shape, err := set.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		tt, err := safetensors.Float32Tensor(name, safetensors.F32, shape, vals)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tt)
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	if err := lora.CopyModelFiles(from, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}
