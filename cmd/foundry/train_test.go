package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
	"github.com/foundryhq/foundry/train"
	"github.com/spf13/cobra"
)

func trainCLI(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return stdout.String(), err
}

// TestTrainAndMerge runs foundry train on a tiny model and chat data, then
// foundry merge on the adapter it wrote.
func TestTrainAndMerge(t *testing.T) {
	dir := byteLevelModelDir(t, "qwen2")
	tpl := map[string]any{"chat_template": "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"}
	b, _ := json.Marshal(tpl)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var data strings.Builder
	for _, w := range []string{"red", "green", "blue", "cyan", "pink", "gray", "teal", "gold"} {
		line, _ := json.Marshal(map[string]any{"messages": []map[string]string{{"role": "user", "content": "color " + w}, {"role": "assistant", "content": "ok " + w}}})
		data.Write(line)
		data.WriteByte('\n')
	}
	tmp := t.TempDir()
	jsonl := filepath.Join(tmp, "chats.jsonl")
	if err := os.WriteFile(jsonl, []byte(data.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "adapter")
	db := filepath.Join(tmp, "foundry.db")
	stdout, err := trainCLI(t, newTrainCmd(), "--base", dir, "--data", jsonl, "--out", out, "--backend", "go", "--db", db,
		"--rank", "4", "--alpha", "8", "--batch", "4", "--epochs", "2", "--lr", "1e-3", "--val-fraction", "0.25", "--targets", "q,v,down")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, stdout)
	}
	for _, want := range []string{"succeeded after 4/4 steps", "val loss", "adapter: " + out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("train output lacks %q:\n%s", want, stdout)
		}
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors", "job.json", "checkpoint/trainer.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("train wrote no %s: %v", f, err)
		}
	}
	st, err := sqlite.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := st.ListJobs(t.Context(), store.JobQuery{Kind: train.JobKind})
	st.Close()
	if err != nil || len(jobs) != 1 || jobs[0].Status != train.StatusSucceeded {
		t.Errorf("--db has jobs %+v, %v; want the one succeeded run", jobs, err)
	}
	merged := filepath.Join(tmp, "merged")
	if _, err := trainCLI(t, newMergeCmd(), "--base", dir, "--adapter", out, "--out", merged); err != nil {
		t.Fatalf("merge: %v", err)
	}
	m, err := model.Load(merged)
	if err != nil {
		t.Fatalf("merged model does not load: %v", err)
	}
	m.Close()
	if _, err := os.Stat(filepath.Join(merged, "tokenizer.json")); err != nil {
		t.Errorf("merge did not copy the tokenizer: %v", err)
	}

	if _, err := trainCLI(t, newTrainCmd(), "--base", dir, "--data", jsonl, "--out", out, "--targets", "q,lm_head"); err == nil || !strings.Contains(err.Error(), "lm_head") {
		t.Errorf("bad --targets: %v", err)
	}
	if _, err := trainCLI(t, newMergeCmd(), "--base", dir, "--out", merged); err == nil {
		t.Error("merge without --adapter: want an error")
	}
}
