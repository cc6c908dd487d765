package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/train/lora/loratest"

	"github.com/foundryhq/foundry/engine/npy"
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/train/lora"
)

// TestEngineLogits runs `foundry engine logits` on each fixture model and
// compares the file with the PyTorch reference logits.
func TestEngineLogits(t *testing.T) {
	for _, arch := range []string{"llama", "llama_linear", "mistral", "qwen2", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			dir := filepath.Join("..", "..", "model", "testdata", arch)
			b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
			if err != nil {
				t.Fatal(err)
			}
			var ref struct {
				InputIDs []int `json:"input_ids"`
			}
			if err := json.Unmarshal(b, &ref); err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(ref.InputIDs))
			for i, id := range ref.InputIDs {
				ids[i] = strconv.Itoa(id)
			}
			out := filepath.Join(t.TempDir(), "logits.npy")
			if _, err := runEngineCmd(t, "logits", dir, "--ids", strings.Join(ids, ","), "--out", out, "--backend", "go"); err != nil {
				t.Fatal(err)
			}
			gotShape, got, err := npy.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			wantShape, want, err := npy.ReadFile(filepath.Join(dir, "logits.npy"))
			if err != nil {
				t.Fatal(err)
			}
			if len(gotShape) != 2 || gotShape[0] != wantShape[0] || gotShape[1] != wantShape[1] {
				t.Fatalf("shape %v, reference %v", gotShape, wantShape)
			}
			var worst float64
			for i := range got {
				worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
			}
			if worst > 1e-4 {
				t.Fatalf("max |logit - reference| = %.3g, want ≤ 1e-4", worst)
			}
		})
	}
}

func TestEngineLogitsErrors(t *testing.T) {
	dir := filepath.Join("..", "..", "model", "testdata", "qwen2")
	out := filepath.Join(t.TempDir(), "x.npy")
	for name, args := range map[string][]string{
		"adapter":      {"logits", dir, "--ids", "1,2", "--out", out, "--adapter", "a", "--backend", "go"},
		"no ids":       {"logits", dir, "--out", out, "--backend", "go"},
		"bad id":       {"logits", dir, "--ids", "1,x", "--out", out, "--backend", "go"},
		"out of vocab": {"logits", dir, "--ids", "1,300", "--out", out, "--backend", "go"},
		"no model":     {"logits", t.TempDir(), "--ids", "1", "--out", out, "--backend", "go"},
		"bad backend":  {"logits", dir, "--ids", "1", "--out", out, "--backend", "tpu"},
	} {
		if _, err := runEngineCmd(t, args...); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestEngineInfo(t *testing.T) {
	out, err := runEngineCmd(t, "info", "--backend", "go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "backend: go") || !strings.Contains(out, "why:") {
		t.Fatalf("engine info printed %q", out)
	}
}

func runEngineCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newEngineCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return stdout.String(), err
}

// TestEngineLogitsAdapter checks `foundry engine logits --adapter` against
// the logits of the merged model (on a float32 copy of a fixture, so the
// merge does not round to bfloat16).
func TestEngineLogitsAdapter(t *testing.T) {
	base := float32ModelDir(t, filepath.Join("..", "..", "model", "testdata", "llama"))
	dir := t.TempDir()
	adapter, merged := filepath.Join(dir, "adapter"), filepath.Join(dir, "merged")
	writeRandomAdapter(t, base, adapter, 4, 8)
	if err := lora.Merge(base, adapter, merged); err != nil {
		t.Fatal(err)
	}
	ids := "1,17,42,256,3,99"
	logits := func(args ...string) []float32 {
		t.Helper()
		out := filepath.Join(t.TempDir(), "l.npy")
		if _, err := runEngineCmd(t, append([]string{"logits", "--ids", ids, "--out", out, "--backend", "go"}, args...)...); err != nil {
			t.Fatal(err)
		}
		_, data, err := npy.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	got, want, plain := logits(base, "--adapter", adapter), logits(merged), logits(base)
	var worst, moved float64
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		moved = math.Max(moved, math.Abs(float64(got[i]-plain[i])))
	}
	if worst > 1e-4 || moved < 1e-2 {
		t.Fatalf("max |logit - merged| = %.3g (want ≤ 1e-4); the adapter moves the logits by %.3g (want ≥ 1e-2)", worst, moved)
	}
	other := filepath.Join(dir, "other")
	writeRandomAdapter(t, filepath.Join("..", "..", "model", "testdata", "qwen3"), other, 2, 4)
	if _, err := runEngineCmd(t, "logits", base, "--ids", ids, "--out", filepath.Join(dir, "x.npy"), "--backend", "go", "--adapter", other); err == nil || !strings.Contains(err.Error(), "another base") {
		t.Fatalf("an adapter for another base: %v", err)
	}
}

// float32ModelDir copies the model in from with float32 weights.
func float32ModelDir(t *testing.T, from string) string { return loratest.Float32Model(t, from) }

// writeRandomAdapter saves a PEFT adapter for the model in baseDir with
// nonzero A and B on every projection (seeded by rank).
func writeRandomAdapter(t *testing.T, baseDir, dir string, rank int, alpha float64) {
	t.Helper()
	cfg, err := model.LoadConfig(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	a := loratest.RandomAdapter(cfg, rank, alpha, nil, uint64(rank))
	a.BaseModel = baseDir
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
}
