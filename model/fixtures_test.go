package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/foundryhq/foundry/engine/npy"
	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// fixtureArchs are the directories under testdata made by tools/fixtures/make_model_fixtures.py.
var fixtureArchs = []string{"llama", "llama_linear", "mistral", "qwen2", "qwen3"}

// Reference is a fixture's reference.json.
type reference struct {
	InputIDs  []int32 `json:"input_ids"`
	GreedyIDs []int32 `json:"greedy_ids"`
}

func loadReference(t *testing.T, dir string) (reference, []float32) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	_, logits, err := npy.ReadFile(filepath.Join(dir, "logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	return ref, logits
}

// TestForwardMatchesReference runs the full-sequence forward of each fixture
// model and compares every position's logits with the reference (1e-4).
func TestForwardMatchesReference(t *testing.T) {
	// ops_sequential: simplego's parallel executor reads a buffer-reuse counter
	// without a lock (GoMLX v0.26), which -race reports; sequential is as fast here.
	backend, err := backends.NewWithConfig("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range fixtureArchs {
		t.Run(arch, func(t *testing.T) {
			dir := filepath.Join("testdata", arch)
			ref, want := loadReference(t, dir)
			m, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx := context.New()
			if err := m.Bind(ctx, dtypes.Float32); err != nil {
				t.Fatal(err)
			}
			exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, tokens *graph.Node) *graph.Node {
				return Forward(ctx, m.Config, tokens, Options{})
			})
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Exec([][]int32{ref.InputIDs})
			if err != nil {
				t.Fatal(err)
			}
			got := out[0].Value().([][][]float32)[0]
			v := m.Config.VocabSize
			var maxDiff float64
			for pos := range got {
				for j := range v {
					maxDiff = math.Max(maxDiff, math.Abs(float64(got[pos][j]-want[pos*v+j])))
				}
			}
			if maxDiff > 1e-4 {
				t.Fatalf("max |logit - reference| = %.3g over %d positions, want ≤ 1e-4", maxDiff, len(got))
			}
			t.Logf("max |logit - reference| = %.3g", maxDiff)
		})
	}
}
