package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/hub/hubtest"
)

func runPull(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newPullCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestPullCommand(t *testing.T) {
	for _, k := range []string{"HF_TOKEN", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN_PATH"} {
		t.Setenv(k, "")
	}
	h := hubtest.New(t)
	commit := h.Commit("org/tiny", "main", map[string][]byte{
		"config.json":       []byte(`{"model_type":"llama"}`),
		"model.safetensors": bytes.Repeat([]byte{7}, 4096),
		"pytorch_model.bin": []byte("skipped by default"),
	})
	t.Setenv("HF_ENDPOINT", h.URL)
	t.Setenv("HF_HOME", t.TempDir())
	cache := t.TempDir()

	out, errOut, err := runPull(t, "org/tiny@main", "--cache-dir", cache)
	if err != nil {
		t.Fatalf("pull: %v\n%s", err, errOut)
	}
	want := filepath.Join(cache, "models--org--tiny", "snapshots", commit)
	if out != want+"\n" {
		t.Fatalf("stdout %q, want the snapshot path %q", out, want)
	}
	if !strings.Contains(errOut, "pull org/tiny: downloading 2 file(s)") {
		t.Errorf("no progress lines on stderr:\n%s", errOut)
	}
	entries, _ := os.ReadDir(want)
	if len(entries) != 2 {
		t.Errorf("snapshot holds %d files, want 2 (config.json, model.safetensors)", len(entries))
	}

	out, _, err = runPull(t, "org/tiny", "--cache-dir", t.TempDir(), "--include", "*.json,*.bin", "--exclude", "*.bin")
	if err != nil {
		t.Fatal(err)
	}
	entries, _ = os.ReadDir(strings.TrimSpace(out))
	if len(entries) != 1 || entries[0].Name() != "config.json" {
		t.Errorf("--include/--exclude: got %v", entries)
	}

	_, _, err = runPull(t, "org/missing", "--cache-dir", cache)
	if err == nil || !strings.Contains(err.Error(), "org/missing not found") || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("missing repo: %v", err)
	}
	if _, _, err = runPull(t, "../evil", "--cache-dir", cache); err == nil || !strings.Contains(err.Error(), "not a Hugging Face repo id") {
		t.Fatalf("bad id: %v", err)
	}
}

func TestPullDataset(t *testing.T) {
	for _, k := range []string{"HF_TOKEN", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN_PATH"} {
		t.Setenv(k, "")
	}
	h := hubtest.New(t)
	commit := h.Commit("datasets/org/chats", "main", map[string][]byte{
		"data/train.parquet": bytes.Repeat([]byte{3}, 4096), // LFS, from the CDN
		"data/more.jsonl":    []byte(`{"messages":[]}` + "\n"),
		"README.md":          []byte("# chats\n"),
	})
	t.Setenv("HF_ENDPOINT", h.URL)
	t.Setenv("HF_HOME", t.TempDir())
	cache := t.TempDir()
	want := filepath.Join(cache, "datasets--org--chats", "snapshots", commit)

	for _, args := range [][]string{{"--dataset", "org/chats@main"}, {"datasets/org/chats"}} {
		out, errOut, err := runPull(t, append(args, "--cache-dir", cache)...)
		if err != nil {
			t.Fatalf("pull %v: %v\n%s", args, err, errOut)
		}
		if out != want+"\n" {
			t.Fatalf("pull %v: stdout %q, want the snapshot path %q", args, out, want)
		}
	}
	for _, name := range []string{"data/train.parquet", "data/more.jsonl", "README.md"} {
		if _, err := os.Stat(filepath.Join(want, filepath.FromSlash(name))); err != nil {
			t.Errorf("a dataset pull fetches every file: %v", err)
		}
	}
	if n := h.Count("hub", "GET", "/api/datasets/org/chats/revision/main"); n != 2 {
		t.Errorf("%d dataset API lookups, want 2", n)
	}

	// Offline, the cached snapshot is found without the hub.
	t.Setenv("HF_HUB_OFFLINE", "1")
	h.ResetRequests()
	out, _, err := runPull(t, "--dataset", "org/chats", "--cache-dir", cache)
	if err != nil || out != want+"\n" || len(h.Requests()) != 0 {
		t.Fatalf("offline pull: %q, %v, %d requests", out, err, len(h.Requests()))
	}
	_, _, err = runPull(t, "--dataset", "org/other", "--cache-dir", cache)
	if err == nil || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Fatalf("offline pull of an uncached dataset: %v", err)
	}
}
