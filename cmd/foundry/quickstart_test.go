package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/config"
)

// TestQuickstartArgs checks what can be checked of --teacher and --dir
// without a real provider or a run.
func TestQuickstartArgs(t *testing.T) {
	cfg := &config.Config{}
	for _, spec := range []string{"gpt-4o-mini", "openai:", "cohere:command-r"} {
		if _, _, err := quickstartTeacher(cfg, spec); err == nil {
			t.Errorf("--teacher %q: want an error", spec)
		}
	}
	if _, _, err := quickstartTeacher(cfg, "openai:gpt-4o-mini"); err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Errorf("--teacher without an openai provider: %v, want a hint to set OPENAI_API_KEY", err)
	}
	cfg.Providers = []config.Provider{{Name: "openai", Type: "openai", BaseURL: "http://127.0.0.1:1/v1"}}
	p, model, err := quickstartTeacher(cfg, "openai:gpt-4o-mini")
	if err != nil || p == nil || model != "gpt-4o-mini" {
		t.Errorf("--teacher openai:gpt-4o-mini: %v %v %q", p, err, model)
	}

	dir := t.TempDir()
	user := filepath.Join(dir, "mine")
	os.MkdirAll(user, 0o755)
	os.WriteFile(filepath.Join(user, "foundry.db"), []byte("precious"), 0o644)
	if err := freshDir(user); err == nil {
		t.Error("freshDir emptied a directory the quick start did not make")
	}
	if b, _ := os.ReadFile(filepath.Join(user, "foundry.db")); string(b) != "precious" {
		t.Error("freshDir touched a user's file")
	}
	qs := filepath.Join(dir, "qs")
	if err := freshDir(qs); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(qs, "old.db"), []byte("x"), 0o644)
	if err := freshDir(qs); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(qs, "old.db")); !os.IsNotExist(err) {
		t.Errorf("a re-run left the previous run's files: %v", err)
	}

	if _, err := trainCLI(t, newQuickstartCmd(), "--teacher", "nonsense", "--dir", filepath.Join(dir, "x")); err == nil || !strings.Contains(err.Error(), "PROVIDER:MODEL") {
		t.Errorf("quickstart --teacher nonsense: %v", err)
	}
}
