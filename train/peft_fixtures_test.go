package train

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/model/nn"

	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/engine/npy"
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/safetensors"
	"github.com/foundryhq/foundry/train/lora"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

var writeFoundryAdapters = flag.Bool("write-foundry-adapters", false, "write testdata/peft/<arch>/foundry_adapter for tools/fixtures/make_peft_fixtures.py to load in PEFT")

type peftReference struct {
	InputIDs []int32 `json:"input_ids"`
	LossMask []int   `json:"loss_mask"`
	Loss     float64 `json:"loss"`
	MadeBy   string  `json:"made_by"`
}

// TestPEFTFixtures checks Foundry against the references of
// tools/fixtures/make_peft_fixtures.py: the adapter loads, gives the same
// logits (1e-4), and one training step's loss and LoRA gradients match.
// With foundry_logits.npy present (made by PEFT from an adapter Foundry
// wrote), Foundry's own adapter gives PEFT's logits too.
func TestPEFTFixtures(t *testing.T) {
	b := testBackend(t)
	nn.RegisterGradients()
	archs, _ := filepath.Glob(filepath.Join("testdata", "peft", "*", "reference.json"))
	if len(archs) == 0 {
		t.Skip("no PEFT fixtures: run tools/fixtures/make_peft_fixtures.py")
	}
	for _, refPath := range archs {
		dir := filepath.Dir(refPath)
		arch := filepath.Base(dir)
		t.Run(arch, func(t *testing.T) {
			var ref peftReference
			raw, err := os.ReadFile(refPath)
			mustf(t, err, "read reference")
			mustf(t, json.Unmarshal(raw, &ref), "parse reference")
			base := filepath.Join("..", "model", "testdata", arch)
			cfg, err := model.LoadConfig(base)
			mustf(t, err, "base config")
			a, err := lora.LoadAdapter(filepath.Join(dir, "adapter"), cfg)
			mustf(t, err, "load the reference adapter")

			_, want, err := npy.ReadFile(filepath.Join(dir, "logits.npy"))
			mustf(t, err, "logits.npy")
			got := forwardLogits(t, b, base, a, ref.InputIDs)
			worst := 0.0
			for i, row := range got {
				for j, v := range row {
					worst = max(worst, math.Abs(float64(v-want[i*cfg.VocabSize+j])))
				}
			}
			if worst > 1e-4 {
				t.Errorf("logits with the adapter differ from the reference by %g (> 1e-4)", worst)
			}

			loss, grads := lossAndGrads(t, b, base, a, ref)
			if d := math.Abs(loss-ref.Loss) / ref.Loss; d > 1e-5 {
				t.Errorf("loss %.7f, reference %.7f (relative %.2g)", loss, ref.Loss, d)
			}
			f, err := safetensors.Open(filepath.Join(dir, "grads.safetensors"))
			mustf(t, err, "grads.safetensors")
			defer f.Close()
			worstGrad, scale := 0.0, 0.0
			for key, g := range grads {
				wantG, _, err := f.Float32(key)
				mustf(t, err, "reference gradient %s", key)
				for i := range g {
					worstGrad = max(worstGrad, math.Abs(float64(g[i]-wantG[i])))
					scale = max(scale, math.Abs(float64(wantG[i])))
				}
			}
			if len(grads) != len(f.Names()) {
				t.Errorf("%d gradients, the reference has %d", len(grads), len(f.Names()))
			}
			if worstGrad > 1e-4*max(scale, 1e-2) {
				t.Errorf("LoRA gradients differ from the reference by up to %g (largest reference gradient %g)", worstGrad, scale)
			}
			t.Logf("%s: logits within %.2g, loss %.6f vs %.6f, gradients within %.2g of max %.2g (%s)", arch, worst, loss, ref.Loss, worstGrad, scale, ref.MadeBy)

			foundryDir := filepath.Join(dir, "foundry_adapter")
			if *writeFoundryAdapters {
				fa := randomAdapter(cfg, lora.LoRA{Rank: 4, Alpha: 8, RSLoRA: arch == "qwen3"}, 77, 0.2)
				fa.BaseModel = "model/testdata/" + arch
				mustf(t, fa.Save(foundryDir), "write Foundry adapter")
			}
			if _, err := os.Stat(filepath.Join(dir, "foundry_logits.npy")); err == nil {
				fa, err := lora.LoadAdapter(foundryDir, cfg)
				mustf(t, err, "load Foundry's adapter")
				_, want, err := npy.ReadFile(filepath.Join(dir, "foundry_logits.npy"))
				mustf(t, err, "foundry_logits.npy")
				got := forwardLogits(t, b, base, fa, ref.InputIDs)
				for i, row := range got {
					for j, v := range row {
						if d := math.Abs(float64(v - want[i*cfg.VocabSize+j])); d > 1e-4 {
							t.Fatalf("PEFT's logits with Foundry's adapter differ by %g at [%d, %d]", d, i, j)
						}
					}
				}
			}
		})
	}
}

// lossAndGrads is one training step's loss (mean cross-entropy over the
// masked next tokens) and its gradients, keyed by PEFT tensor name.
func lossAndGrads(t *testing.T, be *engine.Backend, base string, a *lora.Adapter, ref peftReference) (float64, map[string][]float32) {
	t.Helper()
	m, err := model.Load(base)
	mustf(t, err, "load base")
	defer m.Close()
	ctx := mlctx.New()
	mustf(t, m.Bind(ctx, dtypes.Float32), "bind")
	a.Bind(ctx)
	n := len(ref.InputIDs) - 1
	w := make([]float32, n)
	total := 0.0
	for i := range w {
		w[i] = float32(ref.LossMask[i+1])
		total += float64(w[i])
	}
	var vars []*mlctx.Variable
	e, err := mlctx.NewExec(be, ctx, func(ctx *mlctx.Context, in []*Node) []*Node {
		loss := DivScalar(batchLoss(ctx, m.Config, model.Options{Hook: a.LoRA.Hook()}, in[0], nil, in[1], in[2], 5, true), total)
		g := loss.Graph()
		vars = vars[:0]
		for v := range ctx.IterVariables() {
			if v.Trainable && v.InUseByGraph(g) {
				vars = append(vars, v)
			}
		}
		return append([]*Node{loss}, ctx.BuildTrainableVariablesGradientsGraph(loss)...)
	})
	mustf(t, err, "exec")
	outs, err := e.Exec(tensors.FromFlatDataAndDimensions(ref.InputIDs[:n], 1, n), tensors.FromFlatDataAndDimensions(ref.InputIDs[1:], 1, n), tensors.FromFlatDataAndDimensions(w, 1, n))
	mustf(t, err, "run")
	grads := map[string][]float32{}
	for i, v := range vars {
		key := lora.PEFTPrefix + strings.ReplaceAll(strings.TrimPrefix(v.Scope(), "/"), "/", ".") + "." + v.Name() + ".weight"
		grads[key], _ = tensors.CopyFlatData[float32](outs[i+1])
	}
	loss, _ := tensors.CopyFlatData[float32](outs[0])
	return float64(loss[0]), grads
}
