package hub_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/hub"
)

// datasetFiles is a tiny dataset repo: a Parquet shard big enough to be
// stored with LFS (served by the CDN), a small JSONL file in git and a card.
func datasetFiles() map[string][]byte {
	return map[string][]byte{
		"data/train-00000-of-00001.parquet": randBytes(40_000, 7),
		"data/extra.jsonl":                  []byte(`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}` + "\n"),
		"README.md":                         []byte("---\nlicense: mit\n---\n# data\n"),
	}
}

// TestDatasetSnapshot pulls a dataset repo: the hub's dataset API and
// resolve paths, datasets--org--name in the cache with the same
// blobs/snapshots/refs layout, every file by default, a re-pull without
// downloads, single files and offline mode.
func TestDatasetSnapshot(t *testing.T) {
	f := newFixture(t)
	files := datasetFiles()
	commit := f.hub.Commit("datasets/org/data", "main", files)
	// A model repo of the same name must not be what the client reads.
	f.hub.Commit("org/data", "main", map[string][]byte{"config.json": []byte(`{}`)})
	c := f.client(t, func(o *hub.Options) { o.RepoType = hub.RepoTypeDataset })

	dir := snapshot(t, c, "org/data", "")
	repoDir := filepath.Join(f.cache, "datasets--org--data")
	if want := filepath.Join(repoDir, "snapshots", commit); dir != want {
		t.Fatalf("snapshot dir = %s, want %s", dir, want)
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatalf("%s is not a symlink: %v", name, err)
		}
		if want := strings.Repeat("../", 2+strings.Count(name, "/")) + "blobs/" + f.hub.Etag(name, data); target != filepath.FromSlash(want) {
			t.Errorf("%s -> %s, want %s", name, target, want)
		}
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s differs from the hub's (%v)", name, err)
		}
	}
	if ref, err := os.ReadFile(filepath.Join(repoDir, "refs", "main")); err != nil || string(ref) != commit {
		t.Errorf("refs/main = %q, %v; want %q", ref, err, commit)
	}
	if _, err := os.Stat(filepath.Join(f.cache, ".locks", "datasets--org--data")); err != nil {
		t.Errorf("no lock folder for the dataset: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.cache, "models--org--data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dataset pull touched the model repo of the same name: %v", err)
	}
	if n := f.hub.Count("hub", "GET", "/api/datasets/org/data/revision/main"); n != 1 {
		t.Errorf("%d GETs of the dataset revision API, want 1", n)
	}
	if n := f.hub.Count("hub", "", "/api/models/"); n != 0 {
		t.Errorf("%d calls to the model API for a dataset", n)
	}
	if n := f.hub.Count("hub", "HEAD", "/datasets/org/data/resolve/"+commit+"/"); n != len(files) {
		t.Errorf("%d HEADs of dataset resolve URLs, want %d", n, len(files))
	}
	if n := f.hub.Count("cdn", "GET", ""); n != 1 {
		t.Errorf("%d CDN downloads, want 1 (the LFS parquet shard)", n)
	}

	f.hub.ResetRequests()
	if again := snapshot(t, c, "org/data", "main"); again != dir {
		t.Fatalf("re-pull: %s, want %s", again, dir)
	}
	if n := f.hub.Count("", "", "/resolve/"); n != 0 {
		t.Errorf("a re-pull made %d file requests", n)
	}

	// One file of another revision, as a dataset source asks for it.
	files2 := map[string][]byte{"data/extra.jsonl": []byte(`{"messages":[]}` + "\n")}
	c2 := f.hub.Commit("datasets/org/data", "v2", files2)
	p, err := c.Download(context.Background(), "org/data", "v2", "data/extra.jsonl")
	if err != nil || p != filepath.Join(repoDir, "snapshots", c2, "data", "extra.jsonl") {
		t.Fatalf("Download = %s, %v", p, err)
	}

	t.Setenv("HF_HUB_OFFLINE", "1")
	off := f.client(t, func(o *hub.Options) { o.RepoType = hub.RepoTypeDataset })
	f.hub.ResetRequests()
	if d, err := off.Snapshot(context.Background(), "org/data", "main"); err != nil || d != dir {
		t.Fatalf("offline Snapshot = %s, %v; want %s", d, err, dir)
	}
	if _, err := off.Download(context.Background(), "org/data", "main", "data/nope.jsonl"); !errors.Is(err, hub.ErrNotCached) {
		t.Errorf("offline download of an uncached file: %v, want ErrNotCached", err)
	}
	if n := len(f.hub.Requests()); n != 0 {
		t.Errorf("offline mode made %d requests", n)
	}
}

func TestDatasetErrors(t *testing.T) {
	f := newFixture(t)
	f.hub.Commit("datasets/org/private", "main", datasetFiles())
	f.hub.SetPrivate("datasets/org/private")
	c := f.client(t, func(o *hub.Options) { o.RepoType = hub.RepoTypeDataset })
	_, err := c.Snapshot(context.Background(), "org/private", "main")
	if !errors.Is(err, hub.ErrRepoNotFound) || !strings.Contains(err.Error(), "dataset org/private not found") {
		t.Errorf("private dataset without a token: %v", err)
	}
	_, err = c.Snapshot(context.Background(), repoID, "main") // a model, not a dataset
	if !errors.Is(err, hub.ErrRepoNotFound) {
		t.Errorf("a model id pulled as a dataset: %v, want ErrRepoNotFound", err)
	}
	if _, err := hub.New(hub.Options{RepoType: "space", CacheDir: f.cache}); err == nil {
		t.Error("repo type space accepted")
	}
}

func TestParseDatasetRef(t *testing.T) {
	for in, want := range map[string][2]string{
		"org/data":                      {"org/data", "main"},
		"datasets/org/data@v1.0":        {"org/data", "v1.0"},
		"org/data@refs/convert/parquet": {"org/data", "refs/convert/parquet"},
	} {
		repo, rev, err := hub.ParseDatasetRef(in)
		if err != nil || repo != want[0] || rev != want[1] {
			t.Errorf("ParseDatasetRef(%q) = %q, %q, %v; want %q", in, repo, rev, err, want)
		}
	}
	if _, _, err := hub.ParseDatasetRef("datasets/../x"); err == nil {
		t.Error("datasets/../x accepted")
	}
	if got := hub.RepoFolderNameOf(hub.RepoTypeDataset, "org/data"); got != "datasets--org--data" {
		t.Errorf("RepoFolderNameOf = %q", got)
	}
}
