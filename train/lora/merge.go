package lora

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/foundryhq/foundry/internal/atomicfile"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/safetensors"
)

// Merge folds the PEFT adapter in adapterDir into the base model in baseDir
// (W + scale·B·A for every adapted projection) and writes a plain model to
// outDir: model.safetensors, in each tensor's original dtype, plus the
// base's config, tokenizer and generation files, so the result loads
// anywhere a Hugging Face model does.
func Merge(baseDir, adapterDir, outDir string) error {
	base, err := model.Load(baseDir)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	defer base.Close()
	a, err := LoadAdapter(adapterDir, base.Config)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	set, err := safetensors.OpenDir(baseDir)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	defer set.Close()
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	var ts []safetensors.Tensor
	merged := 0
	for _, name := range set.Names() {
		info, raw, err := set.Raw(name)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		mod, isWeight := strings.CutSuffix(name, ".weight")
		w, adapted := a.Modules[mod]
		if !isWeight || !adapted {
			ts = append(ts, safetensors.Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: raw})
			continue
		}
		if len(info.Shape) != 2 || info.Shape[0] != w.Out || info.Shape[1] != w.In {
			return fmt.Errorf("merge: %s has shape %v but the adapter's B·A is [%d, %d] (was the adapter trained on another base?)", name, info.Shape, w.Out, w.In)
		}
		vals, _, err := set.Float32(name)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		for i, d := range a.Delta(mod) {
			vals[i] += d
		}
		t, err := safetensors.Float32Tensor(name, info.DType, info.Shape, vals)
		if err != nil {
			return fmt.Errorf("merge: %w", err)
		}
		ts = append(ts, t)
		merged++
	}
	if merged != len(a.Modules) {
		return fmt.Errorf("merge: the adapter adapts %d modules but only %d weights were found in %s", len(a.Modules), merged, baseDir)
	}
	if err := safetensors.Write(filepath.Join(outDir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	return CopyModelFiles(baseDir, outDir)
}

// CopyModelFiles copies a model directory's small files (config, tokenizer,
// generation config, chat template) to outDir; weights are left out.
func CopyModelFiles(from, to string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return fmt.Errorf("copy model files: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasSuffix(n, ".safetensors") || n == safetensors.IndexFile || strings.HasPrefix(n, ".") ||
			strings.HasSuffix(n, ".bin") || strings.HasSuffix(n, ".pt") || strings.HasSuffix(n, ".npy") {
			continue
		}
		if !strings.HasSuffix(n, ".json") && !strings.HasSuffix(n, ".jinja") && !strings.HasSuffix(n, ".txt") && !strings.HasSuffix(n, ".model") {
			continue
		}
		if err := atomicfile.Copy(filepath.Join(from, n), filepath.Join(to, n)); err != nil {
			return fmt.Errorf("copy model files: %w", err)
		}
	}
	return nil
}
