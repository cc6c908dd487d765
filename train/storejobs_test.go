package train

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
	"github.com/foundryhq/foundry/train/lora"
)

// TestRunSavesJobToStoreAndDir: with a MultiStore, Run keeps job.json and a
// row in the store's jobs table in step, curves and peak memory included.
func TestRunSavesJobToStoreAndDir(t *testing.T) {
	b := testBackend(t)
	dir, _ := tinyModelDir(t, 3)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "train.jsonl")
	writeJSONL(t, data, [][2]string{{"a", "b"}, {"c", "d"}, {"e", "f"}, {"g", "h"}})
	db, err := sqlite.Open(t.Context(), filepath.Join(tmp, "foundry.db"))
	mustf(t, err, "open store")
	defer db.Close()
	out := filepath.Join(tmp, "out")
	cfg := Config{Base: dir, Data: data, ValFraction: 0.25, Out: out, LoRA: lora.LoRA{Rank: 2, Alpha: 4}, Batch: 2, Epochs: 2, LR: 1e-3}
	job, err := Run(t.Context(), cfg, Options{Backend: b, ID: "job-1", Store: MultiStore{DirStore{out}, StoreJobs{db}}})
	mustf(t, err, "run")
	if job.ID != "job-1" || job.Status != StatusSucceeded || job.PeakMemoryBytes <= 0 || job.MemoryKind == "" {
		t.Fatalf("job = %s %s, peak memory %d %q", job.ID, job.Status, job.PeakMemoryBytes, job.MemoryKind)
	}

	sj, err := db.GetJob(t.Context(), "job-1")
	mustf(t, err, "GetJob")
	if sj.Kind != JobKind || sj.Status != StatusSucceeded {
		t.Errorf("stored job: kind %q status %q", sj.Kind, sj.Status)
	}
	fromStore, err := StoreJobs{db}.Job(t.Context(), "job-1")
	mustf(t, err, "StoreJobs.Job")
	raw, err := os.ReadFile(filepath.Join(out, "job.json"))
	mustf(t, err, "read job.json")
	var fromDir Job
	mustf(t, json.Unmarshal(raw, &fromDir), "decode job.json")
	a, _ := json.Marshal(fromStore)
	c, _ := json.Marshal(&fromDir)
	if string(a) != string(c) {
		t.Errorf("store and job.json differ:\nstore %s\ndir   %s", a, c)
	}
	if len(fromStore.Train) != job.Steps || len(fromStore.Val) == 0 || fromStore.PeakMemoryBytes != job.PeakMemoryBytes {
		t.Errorf("stored curves: %d train points for %d steps, %d val; peak memory %d", len(fromStore.Train), job.Steps, len(fromStore.Val), fromStore.PeakMemoryBytes)
	}
	if js, err := db.ListJobs(t.Context(), store.JobQuery{Kind: JobKind}); err != nil || len(js) != 1 {
		t.Errorf("ListJobs = %d jobs, %v", len(js), err)
	}
}
