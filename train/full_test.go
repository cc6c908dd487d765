package train

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/foundryhq/foundry/model"
)

// TestFullFromScratch trains every weight of a tiny model that exists only
// as a config.json (random start), and writes a loadable model.
func TestFullFromScratch(t *testing.T) {
	b := testBackend(t)
	dir, _ := tinyModelDir(t, 51)
	mustf(t, os.Remove(filepath.Join(dir, "model.safetensors")), "remove weights")
	words, _, _ := taskWords(8)
	data := filepath.Join(t.TempDir(), "d.jsonl")
	writeJSONL(t, data, taskPairs(words[:32]))
	out := t.TempDir()
	job, err := Run(t.Context(), Config{Base: dir, Data: data, Out: out, Full: true, LR: 1e-2, Batch: 8, Epochs: 6, AllTokens: true, Seed: 2}, Options{Backend: b})
	mustf(t, err, "train")
	first, last := job.Train[0].Loss, job.Train[len(job.Train)-1].Loss
	if last > first/2 {
		t.Fatalf("full fine-tuning from scratch: loss %.3f -> %.3f, want at least halved", first, last)
	}
	m, err := model.Load(out)
	mustf(t, err, "load the trained model")
	m.Close()
	if job.Artifacts["model"] != out {
		t.Fatalf("artifacts %v", job.Artifacts)
	}
	t.Logf("full, from scratch: loss %.3f -> %.3f in %d steps", first, last, job.Step)
}
