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

	"github.com/foundryhq/foundry/engine/npy"
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
