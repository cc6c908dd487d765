package hubtest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/foundryhq/foundry/hub"
	"github.com/foundryhq/foundry/hub/hubtest"
)

// A fixture directory committed to the fake hub comes back through
// hub.ResolveModel with the same bytes: the path other packages' tests take.
func TestCommitDirAndSetenv(t *testing.T) {
	src := t.TempDir()
	files := map[string]string{"config.json": `{"model_type":"llama"}`, "model.safetensors": "weights", "sub/tokenizer.json": "{}"}
	for name, body := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := hubtest.New(t)
	commit, err := h.CommitDir("org/fixture", "main", src)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	h.Setenv(t, cache)
	dir, err := hub.ResolveModel(context.Background(), "org/fixture")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "models--org--fixture", "snapshots", commit); dir != want {
		t.Fatalf("dir %s, want %s", dir, want)
	}
	for name, body := range files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || string(b) != body {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}
	if n := h.Count("cdn", "GET", ""); n != 1 {
		t.Errorf("CDN GETs = %d, want 1 (model.safetensors is LFS)", n)
	}
}
