package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/tokenizer/tokenizertest"
)

// byteLevelModelDir copies a fixture model and gives it a byte-level BPE
// tokenizer.json: ids 0–255 are the bytes (GPT-2's byte-to-unicode map), no
// merges, and the fixture's other ids are special tokens.
func byteLevelModelDir(t *testing.T, arch string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "model", "testdata", arch, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	special := map[int]string{}
	for id := 256; id < 300; id++ {
		special[id] = "<|s" + strings.Repeat("x", id-255) + "|>"
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tokenizertest.ByteLevel(special), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runRunCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRunCmd()
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), err
}

func TestRun(t *testing.T) {
	dir := byteLevelModelDir(t, "qwen2")
	greedy, stderr, err := runRunCmd(t, dir, "Hello, engine", "--max-tokens", "12", "--backend", "go", "--stats")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "13 prompt + 12 completion tokens, finish length") {
		t.Fatalf("stats: %q", stderr)
	}
	again, _, err := runRunCmd(t, dir, "Hello, engine", "--max-tokens", "12", "--backend", "go")
	if err != nil || again != greedy {
		t.Fatalf("greedy twice: %q then %q (%v)", greedy, again, err)
	}
	s1, _, err := runRunCmd(t, dir, "Hello, engine", "--max-tokens", "12", "--backend", "go", "--temperature", "1", "--seed", "3")
	if err != nil {
		t.Fatal(err)
	}
	s2, _, err := runRunCmd(t, dir, "Hello, engine", "--max-tokens", "12", "--backend", "go", "--temperature", "1", "--seed", "3")
	if err != nil || s1 != s2 {
		t.Fatalf("seed 3 twice: %q then %q (%v)", s1, s2, err)
	}
	t.Logf("greedy %q, sampled %q", greedy, s1)
}

func TestRunErrors(t *testing.T) {
	noTok := filepath.Join("..", "..", "model", "testdata", "qwen2")
	if _, _, err := runRunCmd(t, noTok, "hi", "--backend", "go"); err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Fatalf("model without tokenizer.json: %v", err)
	}
	dir := byteLevelModelDir(t, "qwen2")
	if _, _, err := runRunCmd(t, dir, strings.Repeat("a", 300), "--backend", "go", "--max-context", "64"); err == nil || !strings.Contains(err.Error(), "at most 63 prompt tokens") {
		t.Fatalf("over-long prompt: %v", err)
	}
	if _, _, err := runRunCmd(t, dir, "hi", "--backend", "go", "--temperature", "-1"); err == nil {
		t.Fatal("temperature -1: no error")
	}
}

// TestRunChat sends the prompt through the chat template: the output is the
// engine provider's answer to one user message.
func TestRunChat(t *testing.T) {
	dir := byteLevelModelDir(t, "qwen2")
	cfg := `{"eos_token": "<|sx|>", "chat_template": "{% for m in messages %}<|sxx|>{{ m.role }}\n{{ m.content }}<|sx|>\n{% endfor %}{% if add_generation_prompt %}<|sxx|>assistant\n{% endif %}"}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runRunCmd(t, dir, "Hello", "--max-tokens", "12", "--backend", "go", "--stats")
	if err != nil {
		t.Fatal(err)
	}
	// 1 + len("user\nHello") + 2 + 1 + len("assistant\n") prompt tokens.
	if !strings.Contains(stderr, "24 prompt + ") || strings.Contains(stderr, "no chat template") {
		t.Fatalf("stats: %q", stderr)
	}
	raw, _, err := runRunCmd(t, dir, "Hello", "--max-tokens", "12", "--backend", "go", "--raw")
	if err != nil {
		t.Fatal(err)
	}
	if raw == out {
		t.Fatalf("--raw and chat gave the same output %q", out)
	}
	t.Logf("chat %q, raw %q", out, raw)
}
