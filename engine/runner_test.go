package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/foundryhq/foundry/engine/npy"
	"github.com/foundryhq/foundry/model"
)

// fixtureArchs are the tiny reference models in model/testdata, made by
// tools/fixtures/make_model_fixtures.py.
var fixtureArchs = []string{"llama", "llama_linear", "mistral", "qwen2", "qwen3"}

type fixture struct {
	dir          string
	InputIDs     []int32 `json:"input_ids"`
	GreedyIDs    []int32 `json:"greedy_ids"`
	logits       []float32
	greedyLogits []float32
}

func loadFixture(t testing.TB, arch string) fixture {
	t.Helper()
	f := fixture{dir: filepath.Join("..", "model", "testdata", arch)}
	b, err := os.ReadFile(filepath.Join(f.dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if _, f.logits, err = npy.ReadFile(filepath.Join(f.dir, "logits.npy")); err != nil {
		t.Fatal(err)
	}
	if _, f.greedyLogits, err = npy.ReadFile(filepath.Join(f.dir, "greedy_logits.npy")); err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	testBackendOnce sync.Once
	testBackend     *Backend
	testBackendErr  error
)

// goBackend is the simplego backend, shared by the package's tests.
func goBackend(t testing.TB) *Backend {
	t.Helper()
	testBackendOnce.Do(func() {
		testBackend, testBackendErr = NewBackend(context.Background(), BackendOptions{Config: "go", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	})
	if testBackendErr != nil {
		t.Fatal(testBackendErr)
	}
	return testBackend
}

func newTestRunner(t testing.TB, arch string, opts RunnerOptions) *Runner {
	t.Helper()
	m, err := model.Load(filepath.Join("..", "model", "testdata", arch))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := NewRunner(context.Background(), goBackend(t), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func argmax(row []float32) int32 {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return int32(best)
}

// TestRunnerGreedyMatchesReference prefills the fixture prompt into slot 1
// of 3 and decodes 16 greedy tokens through the KV cache, checking the ids
// and every step's logits against the PyTorch reference.
func TestRunnerGreedyMatchesReference(t *testing.T) {
	for _, arch := range fixtureArchs {
		t.Run(arch, func(t *testing.T) {
			f := loadFixture(t, arch)
			r := newTestRunner(t, arch, RunnerOptions{Slots: 3, MaxContext: 64})
			v := r.Config().VocabSize
			if arch == "qwen3" { // warming up leaves nothing behind
				if err := r.Warmup(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			const slot = 1
			row, err := r.Prefill(slot, f.InputIDs, 0)
			if err != nil {
				t.Fatal(err)
			}
			var worst float64
			tokens, positions, active := make([]int32, 3), make([]int32, 3), make([]bool, 3)
			active[slot] = true
			for step, want := range f.GreedyIDs {
				worst = math.Max(worst, maxAbsDiff(row, f.greedyLogits[step*v:(step+1)*v]))
				if got := argmax(row); got != want {
					t.Fatalf("step %d: greedy id %d, reference %d", step, got, want)
				}
				tokens[slot], positions[slot] = want, int32(len(f.InputIDs)+step)
				rows, err := r.Decode(tokens, positions, active, nil)
				if err != nil {
					t.Fatal(err)
				}
				row = rows[slot]
			}
			if worst > 1e-4 {
				t.Fatalf("max |logit - reference| over 16 greedy steps = %.3g, want ≤ 1e-4", worst)
			}
			t.Logf("max |logit - reference| over 16 greedy steps = %.3g", worst)
		})
	}
}

// TestRunnerLogitsMatchReference checks the padded full-sequence pass.
func TestRunnerLogitsMatchReference(t *testing.T) {
	f := loadFixture(t, "qwen2")
	r := newTestRunner(t, "qwen2", RunnerOptions{Slots: 1, MaxContext: 32})
	rows, err := r.Logits(f.InputIDs, 0)
	if err != nil {
		t.Fatal(err)
	}
	v := r.Config().VocabSize
	var worst float64
	for i, row := range rows {
		worst = math.Max(worst, maxAbsDiff(row, f.logits[i*v:(i+1)*v]))
	}
	if worst > 1e-4 {
		t.Fatalf("max |logit - reference| = %.3g, want ≤ 1e-4", worst)
	}
}

func TestRunnerRejectsBadInput(t *testing.T) {
	r := newTestRunner(t, "llama", RunnerOptions{Slots: 2, MaxContext: 16})
	if _, err := r.Prefill(0, make([]int32, 17), 0); err == nil {
		t.Fatal("17-token prompt in a 16-token context: no error")
	} else {
		t.Log(err)
	}
	if _, err := r.Prefill(0, []int32{1, 300}, 0); err == nil {
		t.Fatal("token 300 in a vocabulary of 300: no error")
	}
	if _, err := r.Prefill(2, []int32{1}, 0); err == nil {
		t.Fatal("slot 2 of 2: no error")
	}
	if _, err := r.Prefill(0, nil, 0); err == nil {
		t.Fatal("empty prompt: no error")
	}
	if _, err := r.Decode([]int32{1}, []int32{0}, []bool{true}, nil); err == nil {
		t.Fatal("decode with 1 of 2 slots: no error")
	}
	if _, err := r.Decode([]int32{1, 1}, []int32{16, 0}, []bool{true, false}, nil); err == nil {
		t.Fatal("decode at position 16 of 16: no error")
	}
}

// TestLoadErrors: broken model directories fail with errors that say what
// is wrong, before any graph is built.
func TestLoadErrors(t *testing.T) {
	src := filepath.Join("..", "model", "testdata", "qwen2")
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	weights, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		config, weights []byte
		want            string
	}{
		"architecture": {bytes.Replace(cfg, []byte(`"qwen2"`), []byte(`"gpt2"`), 1), weights, "gpt2"},
		"truncated":    {cfg, weights[:len(weights)/2], "model.safetensors"},
		"shape":        {bytes.Replace(cfg, []byte(`"intermediate_size": 128`), []byte(`"intermediate_size": 96`), 1), weights, "shape"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "config.json"), tc.config, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), tc.weights, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := model.Load(dir)
			if err == nil {
				m.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}
