package hub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/foundryhq/foundry/hub"
	"github.com/foundryhq/foundry/hub/hubtest"
)

const repoID = "org/tiny"

// clearEnv keeps the developer's own Hugging Face settings out of the tests.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE",
		"HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		t.Setenv(k, "")
	}
	t.Setenv("HF_HOME", t.TempDir()) // no stray token file
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// modelFiles is a tiny model repo: small git files, an LFS weight file, a
// nested file, and files the default filters skip.
func modelFiles() map[string][]byte {
	return map[string][]byte{
		"config.json":           []byte(`{"model_type":"llama","hidden_size":8}`),
		"tokenizer.json":        []byte(`{"version":"1.0","model":{"type":"BPE"}}`),
		"tokenizer_config.json": []byte(`{"chat_template":"{{ messages }}"}`),
		"model.safetensors":     randBytes(300_000, 1),
		"sub/dir/extra.json":    []byte(`{"nested":true}`),
		"pytorch_model.bin":     randBytes(5000, 2),
		"onnx/model.onnx":       randBytes(3000, 3),
		"onnx/config.json":      []byte(`{}`),
		"README.md":             []byte("# tiny\n"),
		".gitattributes":        []byte("*.safetensors filter=lfs\n"),
	}
}

var wantDefault = []string{"config.json", "model.safetensors", "sub/dir/extra.json", "tokenizer.json", "tokenizer_config.json"}

type fixture struct {
	hub    *hubtest.Hub
	files  map[string][]byte
	commit string
	cache  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clearEnv(t)
	h := hubtest.New(t)
	files := modelFiles()
	return &fixture{hub: h, files: files, commit: h.Commit(repoID, "main", files), cache: t.TempDir()}
}

func (f *fixture) client(t *testing.T, mod ...func(*hub.Options)) *hub.Client {
	t.Helper()
	o := hub.Options{Endpoint: f.hub.URL, CacheDir: f.cache, RetryBackoff: time.Millisecond}
	for _, m := range mod {
		m(&o)
	}
	c, err := hub.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func snapshot(t *testing.T, c *hub.Client, repo, rev string) string {
	t.Helper()
	dir, err := c.Snapshot(context.Background(), repo, rev)
	if err != nil {
		t.Fatalf("Snapshot(%s@%s): %v", repo, rev, err)
	}
	return dir
}

// listTree returns every path under dir (relative, slash-separated), with
// symlinks not followed.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(out)
	return out
}

func TestSnapshotLayoutMatchesHuggingFaceHub(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	dir := snapshot(t, c, repoID, "")

	repoDir := filepath.Join(f.cache, "models--org--tiny")
	if want := filepath.Join(repoDir, "snapshots", f.commit); dir != want {
		t.Fatalf("snapshot dir = %s, want %s", dir, want)
	}
	var wantTree []string
	wantTree = append(wantTree, "blobs/", "refs/", "refs/main", "snapshots/", "snapshots/"+f.commit+"/")
	for _, name := range wantDefault {
		wantTree = append(wantTree, "blobs/"+f.hub.Etag(name, f.files[name]), "snapshots/"+f.commit+"/"+name)
	}
	wantTree = append(wantTree, "snapshots/"+f.commit+"/sub/", "snapshots/"+f.commit+"/sub/dir/")
	sort.Strings(wantTree)
	if got := listTree(t, repoDir); strings.Join(got, "\n") != strings.Join(wantTree, "\n") {
		t.Fatalf("cache tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantTree, "\n"))
	}
	ref, err := os.ReadFile(filepath.Join(repoDir, "refs", "main"))
	if err != nil || string(ref) != f.commit {
		t.Fatalf("refs/main = %q, %v; want %q", ref, err, f.commit)
	}
	for _, name := range wantDefault {
		p := filepath.Join(dir, filepath.FromSlash(name))
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatalf("%s is not a symlink: %v", name, err)
		}
		up := strings.Repeat("../", 2+strings.Count(name, "/"))
		if want := up + "blobs/" + f.hub.Etag(name, f.files[name]); target != filepath.FromSlash(want) {
			t.Errorf("%s -> %s, want %s", name, target, want)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, f.files[name]) {
			t.Errorf("%s content differs from the hub's (%v)", name, err)
		}
	}
	// The LFS etag is the file's sha256; small files are named by git blob sha1.
	if e := f.hub.Etag("model.safetensors", f.files["model.safetensors"]); e != hubtest.SHA256(f.files["model.safetensors"]) {
		t.Fatalf("fixture: safetensors should be LFS")
	}
	if _, err := os.Stat(filepath.Join(f.cache, ".locks", "models--org--tiny")); err != nil {
		t.Errorf("no lock folder: %v", err)
	}
}

func TestRepullDoesNoDownloads(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	first := snapshot(t, c, repoID, "main")
	if n := f.hub.Count("cdn", "GET", ""); n != 1 {
		t.Fatalf("first pull made %d CDN GETs, want 1", n)
	}
	f.hub.ResetRequests()
	if second := snapshot(t, c, repoID, "main"); second != first {
		t.Fatalf("re-pull dir %s != %s", second, first)
	}
	if n := f.hub.Count("", "", "/resolve/"); n != 0 {
		t.Errorf("re-pull made %d resolve requests, want 0", n)
	}
	if n := f.hub.Count("cdn", "", ""); n != 0 {
		t.Errorf("re-pull made %d CDN requests, want 0", n)
	}
	if n := f.hub.Count("hub", "GET", "/api/models/"); n != 1 {
		t.Errorf("re-pull made %d revision lookups, want 1", n)
	}
	// ResolveModel of a cached id needs no network at all.
	f.hub.ResetRequests()
	dir, err := c.ResolveModel(context.Background(), repoID)
	if err != nil || dir != first {
		t.Fatalf("ResolveModel = %s, %v; want %s", dir, err, first)
	}
	if n := len(f.hub.Requests()); n != 0 {
		t.Errorf("ResolveModel of a cached model made %d requests", n)
	}
}

func TestResumeAfterDroppedConnection(t *testing.T) {
	f := newFixture(t)
	f.hub.Fail("model.safetensors", hubtest.Fault{DropAfter: 100_000})
	dir := snapshot(t, f.client(t), repoID, "main")

	var ranges []string
	for _, r := range f.hub.Requests() {
		if r.Server == "cdn" && r.Method == "GET" {
			ranges = append(ranges, r.Header.Get("Range"))
		}
	}
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != "bytes=100000-" {
		t.Fatalf("CDN GET ranges = %q, want [\"\" \"bytes=100000-\"]", ranges)
	}
	got, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(got)
	if hex.EncodeToString(sum[:]) != hubtest.SHA256(f.files["model.safetensors"]) {
		t.Fatal("resumed file's sha256 does not match")
	}
}

func TestResumeFromPartialLeftByEarlierPull(t *testing.T) {
	f := newFixture(t)
	data := f.files["model.safetensors"]
	blobs := filepath.Join(f.cache, "models--org--tiny", "blobs")
	os.MkdirAll(blobs, 0o755)
	inc := filepath.Join(blobs, hubtest.SHA256(data)+".incomplete")
	if err := os.WriteFile(inc, data[:123_456], 0o644); err != nil {
		t.Fatal(err)
	}
	var last, total int64
	c := f.client(t, func(o *hub.Options) {
		o.Include = []string{"model.safetensors"}
		o.OnProgress = func(d, tot int64) { last, total = d, tot }
	})
	dir := snapshot(t, c, repoID, "main")
	if n := f.hub.Count("cdn", "GET", ""); n != 1 {
		t.Fatalf("%d CDN GETs, want 1", n)
	}
	if r := f.hub.Requests()[len(f.hub.Requests())-1]; r.Header.Get("Range") != "bytes=123456-" {
		t.Fatalf("last request Range = %q, want bytes=123456-", r.Header.Get("Range"))
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); !bytes.Equal(got, data) {
		t.Fatal("resumed file differs")
	}
	if _, err := os.Stat(inc); !os.IsNotExist(err) {
		t.Fatalf(".incomplete still there: %v", err)
	}
	if last != total || total != int64(len(data)) {
		t.Fatalf("progress ended at %d/%d, want %d/%d", last, total, len(data), len(data))
	}
}

func TestChecksumMismatchLeavesNoBlob(t *testing.T) {
	for _, name := range []string{"model.safetensors", "config.json"} { // sha256 (LFS) and git sha1
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.hub.Fail(name, hubtest.Fault{Corrupt: true})
			c := f.client(t, func(o *hub.Options) { o.Include = []string{name} })
			_, err := c.Snapshot(context.Background(), repoID, "main")
			if !errors.Is(err, hub.ErrChecksum) {
				t.Fatalf("err = %v, want ErrChecksum", err)
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "run the pull again") {
				t.Errorf("error does not name the file and the fix: %v", err)
			}
			blobs := filepath.Join(f.cache, "models--org--tiny", "blobs")
			if left := listTree(t, blobs); len(left) != 0 {
				t.Fatalf("blobs left after a bad checksum: %v", left)
			}
			if _, err := os.Lstat(filepath.Join(f.cache, "models--org--tiny", "snapshots", f.commit, name)); !os.IsNotExist(err) {
				t.Fatalf("snapshot pointer exists after a bad checksum")
			}
			if _, err := os.Stat(filepath.Join(f.cache, "models--org--tiny", "refs", "main")); !os.IsNotExist(err) {
				t.Fatalf("refs/main written for a failed pull")
			}
			snapshot(t, c, repoID, "main") // the next pull succeeds
		})
	}
}

func TestTokenGoesToHubOnlyNotCDN(t *testing.T) {
	f := newFixture(t)
	f.hub.SetPrivate(repoID)
	f.hub.Grant("hf_secret", repoID)
	snapshot(t, f.client(t, func(o *hub.Options) { o.Token = "hf_secret" }), repoID, "main")
	var hubN, cdnN int
	for _, r := range f.hub.Requests() {
		auth := r.Header.Get("Authorization")
		switch r.Server {
		case "hub":
			hubN++
			if auth != "Bearer hf_secret" {
				t.Errorf("hub %s %s: Authorization %q", r.Method, r.Path, auth)
			}
		case "cdn":
			cdnN++
			if auth != "" {
				t.Errorf("token leaked to the CDN: %s %s", r.Method, r.Path)
			}
		}
	}
	if hubN == 0 || cdnN == 0 {
		t.Fatalf("requests: hub %d, cdn %d; want both > 0", hubN, cdnN)
	}
}

func TestHubErrorsSayWhatToDo(t *testing.T) {
	f := newFixture(t)
	f.hub.Commit("org/gated", "main", map[string][]byte{"config.json": []byte("{}")})
	f.hub.SetGated("org/gated")
	f.hub.Commit("org/private", "main", map[string][]byte{"config.json": []byte("{}")})
	f.hub.SetPrivate("org/private")
	f.hub.Grant("hf_other") // a valid token without access

	cases := []struct {
		name, token, repo, rev string
		is                     error
		says                   []string
	}{
		{"missing repo, no token", "", "org/nope", "main", hub.ErrRepoNotFound, []string{"org/nope not found", "check the name", "HF_TOKEN"}},
		{"missing repo, token", "hf_other", "org/nope", "main", hub.ErrRepoNotFound, []string{"not found", "check the name"}},
		{"private, no token", "", "org/private", "main", hub.ErrRepoNotFound, []string{"private", "HF_TOKEN"}},
		{"gated, no token", "", "org/gated", "main", hub.ErrGated, []string{"gated", "accept its terms", f.hub.URL + "/org/gated", "HF_TOKEN"}},
		{"gated, token without access", "hf_other", "org/gated", "main", hub.ErrGated, []string{"gated", "accept its terms"}},
		{"bad token", "hf_wrong", repoID, "main", hub.ErrUnauthorized, []string{"rejected the token", "HF_TOKEN"}},
		{"missing revision", "", repoID, "nope", hub.ErrRevisionNotFound, []string{`revision "nope"`, "branch, tag or commit"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := f.client(t, func(o *hub.Options) { o.Token = tc.token })
			_, err := c.Snapshot(context.Background(), tc.repo, tc.rev)
			t.Log(err)
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
	// A missing file in an existing repo.
	_, err := f.client(t).Download(context.Background(), repoID, "main", "nope.json")
	if !errors.Is(err, hub.ErrEntryNotFound) || !strings.Contains(err.Error(), "nope.json") {
		t.Fatalf("missing file: %v", err)
	}
}

// handMadeCache writes a repo into cache the way huggingface_hub does.
func handMadeCache(t *testing.T, cache, repo, commit string, files map[string][]byte, etag func(string, []byte) string) string {
	t.Helper()
	root := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
	snap := filepath.Join(root, "snapshots", commit)
	for name, data := range files {
		e := etag(name, data)
		must(t, os.MkdirAll(filepath.Join(root, "blobs"), 0o755))
		must(t, os.WriteFile(filepath.Join(root, "blobs", e), data, 0o644))
		p := filepath.Join(snap, filepath.FromSlash(name))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		rel, _ := filepath.Rel(filepath.Dir(p), filepath.Join(root, "blobs", e))
		must(t, os.Symlink(rel, p))
	}
	must(t, os.MkdirAll(filepath.Join(root, "refs"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "refs", "main"), []byte(commit), 0o644))
	return snap
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOfflineFromHandMadeCache(t *testing.T) {
	f := newFixture(t)
	commit := strings.Repeat("ab", 20)
	files := map[string][]byte{"config.json": []byte(`{"a":1}`), "sub/x.json": []byte(`{}`)}
	snap := handMadeCache(t, f.cache, "org/cached", commit, files, func(n string, d []byte) string { return hubtest.GitBlobSHA1(d) })

	t.Setenv("HF_HUB_OFFLINE", "1")
	c := f.client(t)
	if !c.Offline() {
		t.Fatal("HF_HUB_OFFLINE=1 did not turn offline mode on")
	}
	for _, rev := range []string{"", "main", commit} {
		dir, err := c.Snapshot(context.Background(), "org/cached", rev)
		if err != nil || dir != snap {
			t.Fatalf("offline Snapshot(@%q) = %s, %v; want %s", rev, dir, err, snap)
		}
	}
	p, err := c.Download(context.Background(), "org/cached", "main", "sub/x.json")
	if err != nil || p != filepath.Join(snap, "sub", "x.json") {
		t.Fatalf("offline Download = %s, %v", p, err)
	}
	dir, err := c.ResolveModel(context.Background(), "org/cached@main")
	if err != nil || dir != snap {
		t.Fatalf("offline ResolveModel = %s, %v", dir, err)
	}
	_, err = c.Snapshot(context.Background(), repoID, "main")
	if !errors.Is(err, hub.ErrNotCached) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Fatalf("offline, uncached: %v", err)
	}
	_, err = c.Snapshot(context.Background(), "org/cached", "dev")
	if !errors.Is(err, hub.ErrNotCached) || !strings.Contains(err.Error(), `"dev"`) {
		t.Fatalf("offline, uncached revision: %v", err)
	}
	if n := len(f.hub.Requests()); n != 0 {
		t.Fatalf("offline mode made %d requests", n)
	}
}

func TestReusesCacheWrittenByHuggingFaceHub(t *testing.T) {
	f := newFixture(t)
	want := map[string][]byte{}
	for _, n := range wantDefault {
		want[n] = f.files[n]
	}
	handMadeCache(t, f.cache, repoID, f.commit, want, f.hub.Etag)
	snapshot(t, f.client(t), repoID, "main")
	if n := f.hub.Count("", "", "/resolve/") + f.hub.Count("cdn", "", ""); n != 0 {
		t.Fatalf("pull over a complete huggingface_hub cache made %d file requests", n)
	}
	// A blob present but not linked in this snapshot is linked without a GET.
	os.Remove(filepath.Join(f.cache, "models--org--tiny", "snapshots", f.commit, "model.safetensors"))
	f.hub.ResetRequests()
	snapshot(t, f.client(t), repoID, "main")
	if f.hub.Count("", "HEAD", "model.safetensors") != 1 || f.hub.Count("cdn", "GET", "") != 0 {
		t.Fatalf("relinking an existing blob: requests %+v", f.hub.Requests())
	}
}

func TestRevisionByBranchTagAndCommit(t *testing.T) {
	f := newFixture(t)
	first := f.commit
	files2 := modelFiles()
	files2["config.json"] = []byte(`{"model_type":"llama","hidden_size":16}`)
	second := f.hub.Commit(repoID, "main", files2)
	f.hub.Tag(repoID, "v1", first)
	f.hub.Tag(repoID, "refs/pr/1", second)
	c := f.client(t)
	repoDir := filepath.Join(f.cache, "models--org--tiny")

	old := snapshot(t, c, repoID, first)
	if old != filepath.Join(repoDir, "snapshots", first) {
		t.Fatalf("by commit: %s", old)
	}
	if b, _ := os.ReadFile(filepath.Join(old, "config.json")); !bytes.Equal(b, f.files["config.json"]) {
		t.Fatalf("commit %s has config %s", first, b)
	}
	if _, err := os.Stat(filepath.Join(repoDir, "refs", first)); !os.IsNotExist(err) {
		t.Fatal("a ref was written for a commit sha")
	}
	cur := snapshot(t, c, repoID, "main")
	if cur != filepath.Join(repoDir, "snapshots", second) {
		t.Fatalf("main: %s", cur)
	}
	if b, _ := os.ReadFile(filepath.Join(cur, "config.json")); !bytes.Equal(b, files2["config.json"]) {
		t.Fatalf("main has config %s", b)
	}
	if n := f.hub.Count("cdn", "GET", ""); n != 1 {
		t.Fatalf("the unchanged weights were fetched %d times, want 1 (blob shared by both snapshots)", n)
	}
	for rev, want := range map[string]string{"v1": first, "refs/pr/1": second, "main": second} {
		snapshot(t, c, repoID, rev)
		b, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(rev)))
		if err != nil || string(b) != want {
			t.Errorf("refs/%s = %q, %v; want %s", rev, b, err, want)
		}
	}
}

func TestPathTraversalRejected(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	ctx := context.Background()
	for _, bad := range []string{"../etc", "org/../x", "/abs/x", "org/x/y", "org--x/y", "org/.x", ".."} {
		if _, err := c.Snapshot(ctx, bad, "main"); !errors.Is(err, hub.ErrInvalidName) {
			t.Errorf("repo %q: %v, want ErrInvalidName", bad, err)
		}
	}
	for _, bad := range []string{"../x", "a/../../x", "/etc/passwd", "a//b", "./a", `a\..\b`} {
		if _, err := c.Download(ctx, repoID, "main", bad); !errors.Is(err, hub.ErrInvalidName) {
			t.Errorf("file %q: %v, want ErrInvalidName", bad, err)
		}
	}
	for _, bad := range []string{"../../x", "a/../b", "/main"} {
		if _, err := c.Snapshot(ctx, repoID, bad); !errors.Is(err, hub.ErrInvalidName) {
			t.Errorf("revision %q: %v, want ErrInvalidName", bad, err)
		}
	}
	if n := len(f.hub.Requests()); n != 0 {
		t.Errorf("invalid names reached the network (%d requests)", n)
	}
	// A hostile hub listing a file that climbs out of the snapshot.
	f.hub.Commit("org/evil", "main", map[string][]byte{"config.json": []byte("{}"), "../../../../evil.json": []byte("{}")})
	_, err := c.Snapshot(ctx, "org/evil", "main")
	if !errors.Is(err, hub.ErrInvalidName) {
		t.Fatalf("hostile file list: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.cache, "models--org--evil")); !os.IsNotExist(err) {
		t.Fatal("something was written for the hostile repo")
	}
}

func TestEnvironment(t *testing.T) {
	f := newFixture(t)
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_ENDPOINT", f.hub.URL+"/")
	must(t, os.WriteFile(filepath.Join(home, "token"), []byte("hf_fromfile\n"), 0o600))
	f.hub.SetPrivate(repoID)
	f.hub.Grant("hf_fromfile", repoID)
	f.hub.Grant("hf_fromenv", repoID)

	c, err := hub.New(hub.Options{RetryBackoff: time.Millisecond})
	must(t, err)
	if c.Endpoint() != f.hub.URL || c.CacheDir() != filepath.Join(home, "hub") || c.Offline() {
		t.Fatalf("endpoint %s cache %s offline %v", c.Endpoint(), c.CacheDir(), c.Offline())
	}
	dir := snapshot(t, c, repoID, "main") // needs the token from $HF_HOME/token
	if !strings.HasPrefix(dir, filepath.Join(home, "hub", "models--org--tiny")) {
		t.Fatalf("snapshot %s not under $HF_HOME/hub", dir)
	}
	if got := f.hub.Requests()[0].Header.Get("Authorization"); got != "Bearer hf_fromfile" {
		t.Fatalf("token file: Authorization %q", got)
	}

	t.Setenv("HF_TOKEN", "hf_fromenv")
	cacheEnv := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cacheEnv)
	f.hub.ResetRequests()
	c, err = hub.New(hub.Options{RetryBackoff: time.Millisecond})
	must(t, err)
	if c.CacheDir() != cacheEnv {
		t.Fatalf("HF_HUB_CACHE ignored: %s", c.CacheDir())
	}
	snapshot(t, c, repoID, "main")
	if got := f.hub.Requests()[0].Header.Get("Authorization"); got != "Bearer hf_fromenv" {
		t.Fatalf("HF_TOKEN: Authorization %q", got)
	}
	// Options win over the environment.
	c, err = hub.New(hub.Options{Endpoint: "http://example.invalid", CacheDir: "/x", Token: "t"})
	must(t, err)
	if c.Endpoint() != "http://example.invalid" || c.CacheDir() != "/x" {
		t.Fatalf("options did not override env: %s %s", c.Endpoint(), c.CacheDir())
	}
	t.Setenv("HF_ENDPOINT", "ftp://nope")
	if _, err := hub.New(hub.Options{}); err == nil || !strings.Contains(err.Error(), "HF_ENDPOINT") {
		t.Fatalf("bad HF_ENDPOINT: %v", err)
	}
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/someone")
	if d, _ := hub.DefaultCacheDir(); d != "/home/someone/.cache/huggingface/hub" {
		t.Fatalf("default cache dir %s", d)
	}
}

func TestRetriesServerErrors(t *testing.T) {
	f := newFixture(t)
	f.hub.FailAPI(hubtest.Fault{Status: 500})
	f.hub.Fail("config.json", hubtest.Fault{Status: 503}, hubtest.Fault{Status: 502})
	f.hub.Fail("model.safetensors", hubtest.Fault{Status: 500})
	dir := snapshot(t, f.client(t), repoID, "main")
	if got, _ := os.ReadFile(filepath.Join(dir, "config.json")); !bytes.Equal(got, f.files["config.json"]) {
		t.Fatal("config.json wrong after retries")
	}
	if n := f.hub.Count("hub", "GET", "/api/models/"); n != 2 {
		t.Errorf("revision lookups = %d, want 2 (one 500, one retry)", n)
	}
	if n := f.hub.Count("hub", "GET", "/config.json"); n != 3 {
		t.Errorf("config.json GETs = %d, want 3", n)
	}
	// Retries are bounded: a hub that keeps failing gives a clear error.
	f.hub.FailAPI(hubtest.Fault{Status: 500}, hubtest.Fault{Status: 500}, hubtest.Fault{Status: 500})
	c := f.client(t, func(o *hub.Options) { o.MaxRetries = 2; o.CacheDir = t.TempDir() })
	_, err := c.Snapshot(context.Background(), repoID, "main")
	if err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "try again later") {
		t.Fatalf("persistent 500: %v", err)
	}
}

func TestConcurrentPullsShareTheCache(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	errs := make([]error, 4)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := hub.New(hub.Options{Endpoint: f.hub.URL, CacheDir: f.cache, RetryBackoff: time.Millisecond})
			if err != nil {
				errs[i] = err
				return
			}
			dirs[i], errs[i] = c.Snapshot(context.Background(), repoID, "main")
		}()
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("pull %d: %s, %v", i, dirs[i], errs[i])
		}
	}
	for _, name := range wantDefault {
		got, err := os.ReadFile(filepath.Join(dirs[0], filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, f.files[name]) {
			t.Fatalf("%s corrupted by concurrent pulls: %v", name, err)
		}
	}
	for _, e := range listTree(t, filepath.Join(f.cache, "models--org--tiny", "blobs")) {
		if strings.HasSuffix(e, ".incomplete") {
			t.Fatalf("left %s", e)
		}
	}
	// The blob locks let exactly one pull download each file.
	if n := f.hub.Count("cdn", "GET", ""); n != 1 {
		t.Errorf("the weights were downloaded %d times by concurrent pulls, want 1", n)
	}
	if n := f.hub.Count("hub", "GET", "/resolve/"); n != len(wantDefault)-1 {
		t.Errorf("small files were downloaded %d times, want %d", n, len(wantDefault)-1)
	}
}

func TestFilters(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		include, exclude []string
		want             []string
	}{
		{nil, nil, wantDefault},
		{nil, []string{"tokenizer*"}, []string{"config.json", "model.safetensors", "sub/dir/extra.json"}},
		{[]string{"*.json"}, []string{"sub/"}, []string{"config.json", "onnx/config.json", "tokenizer.json", "tokenizer_config.json"}},
		{[]string{"*.bin", "README.md"}, nil, []string{"README.md", "pytorch_model.bin"}},
		{[]string{"sub/*"}, nil, []string{"sub/dir/extra.json"}},
	}
	for _, tc := range cases {
		c := f.client(t, func(o *hub.Options) { o.Include, o.Exclude, o.CacheDir = tc.include, tc.exclude, t.TempDir() })
		dir := snapshot(t, c, repoID, "main")
		var got []string
		for _, p := range listTree(t, dir) {
			if !strings.HasSuffix(p, "/") {
				got = append(got, p)
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("include %v exclude %v: got %v, want %v", tc.include, tc.exclude, got, tc.want)
		}
	}
	c := f.client(t, func(o *hub.Options) { o.Include = []string{"*.gguf"} })
	if _, err := c.Snapshot(context.Background(), repoID, "main"); err == nil || !strings.Contains(err.Error(), "no file of org/tiny@main matches") {
		t.Fatalf("no match: %v", err)
	}
	// A repo without safetensors: the defaults fall back to PyTorch weights.
	f.hub.Commit("org/old", "main", map[string][]byte{"config.json": []byte("{}"), "pytorch_model.bin": []byte("weights"), "flax_model.msgpack": []byte("x")})
	dir := snapshot(t, f.client(t), "org/old", "main")
	if got := listTree(t, dir); strings.Join(got, ",") != "config.json,pytorch_model.bin" {
		t.Fatalf("no-safetensors fallback: %v", got)
	}
}

func TestResolveModel(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	ctx := context.Background()
	local := t.TempDir()
	if dir, err := c.ResolveModel(ctx, local); err != nil || dir != local {
		t.Fatalf("local dir: %s, %v", dir, err)
	}
	if _, err := c.ResolveModel(ctx, "./no/such/dir"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing dir: %v", err)
	}
	dir, err := c.ResolveModel(ctx, repoID+"@main")
	if err != nil || !strings.HasSuffix(dir, f.commit) {
		t.Fatalf("download: %s, %v", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResolveModel(ctx, "not a model"); !errors.Is(err, hub.ErrInvalidName) {
		t.Fatalf("bad id: %v", err)
	}
}

func TestProgressLinesWhenNotATerminal(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	var last, total int64
	c := f.client(t, func(o *hub.Options) {
		o.Progress = &buf
		o.OnProgress = func(d, tot int64) { mu.Lock(); last, total = d, tot; mu.Unlock() }
	})
	snapshot(t, c, repoID, "main")
	out := buf.String()
	for _, s := range []string{"pull org/tiny: downloading 5 file(s)", "model.safetensors done", "(5/5 files)", "pull org/tiny: 5 file(s)"} {
		if !strings.Contains(out, s) {
			t.Errorf("progress output lacks %q:\n%s", s, out)
		}
	}
	var sum int64
	for _, n := range wantDefault {
		sum += int64(len(f.files[n]))
	}
	if last != sum || total != sum {
		t.Fatalf("progress callback ended at %d/%d, want %d/%d", last, total, sum, sum)
	}
}

func TestDownloadSingleFile(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	p, err := c.Download(context.Background(), repoID, "main", "sub/dir/extra.json")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.cache, "models--org--tiny", "snapshots", f.commit, "sub", "dir", "extra.json"); p != want {
		t.Fatalf("path %s, want %s", p, want)
	}
	if b, _ := os.ReadFile(filepath.Join(f.cache, "models--org--tiny", "refs", "main")); string(b) != f.commit {
		t.Fatalf("refs/main = %q", b)
	}
	f.hub.ResetRequests()
	if _, err := c.Download(context.Background(), repoID, f.commit, "sub/dir/extra.json"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.hub.Requests()); n != 0 {
		t.Fatalf("cached file by commit made %d requests", n)
	}
}

func TestParseRepoRef(t *testing.T) {
	for in, want := range map[string][2]string{
		"org/name":           {"org/name", "main"},
		"org/name@dev":       {"org/name", "dev"},
		"gpt2":               {"gpt2", "main"},
		"org/name@refs/pr/1": {"org/name", "refs/pr/1"},
		"Qwen/Qwen2.5-0.5B-Instruct@" + strings.Repeat("a", 40): {"Qwen/Qwen2.5-0.5B-Instruct", strings.Repeat("a", 40)},
	} {
		repo, rev, err := hub.ParseRepoRef(in)
		if err != nil || repo != want[0] || rev != want[1] {
			t.Errorf("ParseRepoRef(%q) = %q %q %v", in, repo, rev, err)
		}
	}
	for _, bad := range []string{"org/name@", "org/name@../x", "a/b/c", "", "org/na me"} {
		if _, _, err := hub.ParseRepoRef(bad); err == nil {
			t.Errorf("ParseRepoRef(%q) accepted", bad)
		}
	}
}

func TestUnreachableHubFallsBackToCache(t *testing.T) {
	f := newFixture(t)
	c := f.client(t)
	dir := snapshot(t, c, repoID, "main")
	f.hub.Close()
	if got, err := c.Snapshot(context.Background(), repoID, "main"); err != nil || got != dir {
		t.Fatalf("hub down, cached: %s, %v; want %s", got, err, dir)
	}
	_, err := c.Snapshot(context.Background(), "org/other", "main")
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Fatalf("hub down, not cached: %v", err)
	}
}

func TestPartialFilesThatCannotBeResumed(t *testing.T) {
	data := modelFiles()["model.safetensors"]
	cases := []struct {
		name    string
		partial []byte
		fault   hubtest.Fault
	}{
		{"server ignores Range", data[:5000], hubtest.Fault{IgnoreRange: true}},
		{"partial longer than the file", append(bytes.Clone(data), 1, 2, 3), hubtest.Fault{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.hub.Fail("model.safetensors", tc.fault)
			blobs := filepath.Join(f.cache, "models--org--tiny", "blobs")
			must(t, os.MkdirAll(blobs, 0o755))
			must(t, os.WriteFile(filepath.Join(blobs, hubtest.SHA256(data)+".incomplete"), tc.partial, 0o644))
			var last int64
			c := f.client(t, func(o *hub.Options) {
				o.Include = []string{"model.safetensors"}
				o.OnProgress = func(d, _ int64) { last = d }
			})
			dir := snapshot(t, c, repoID, "main")
			if got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); !bytes.Equal(got, data) {
				t.Fatal("file differs")
			}
			if last != int64(len(data)) {
				t.Fatalf("progress ended at %d, want %d", last, len(data))
			}
		})
	}
}

func TestCancelledPullResumesNextTime(t *testing.T) {
	f := newFixture(t)
	data := f.files["model.safetensors"]
	f.hub.Fail("model.safetensors", hubtest.Fault{StallAfter: 100_000})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := f.client(t, func(o *hub.Options) {
		o.Include = []string{"model.safetensors"}
		o.OnProgress = func(d, _ int64) {
			if d >= 50_000 {
				cancel() // like Ctrl-C in the middle of the download
			}
		}
	})
	if _, err := c.Snapshot(ctx, repoID, "main"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
	inc := filepath.Join(f.cache, "models--org--tiny", "blobs", hubtest.SHA256(data)+".incomplete")
	st, err := os.Stat(inc)
	if err != nil || st.Size() == 0 || st.Size() >= int64(len(data)) {
		t.Fatalf("partial file after cancel: %v %v", st, err)
	}
	f.hub.ResetRequests()
	dir := snapshot(t, f.client(t, func(o *hub.Options) { o.Include = []string{"model.safetensors"} }), repoID, "main")
	reqs := f.hub.Requests()
	if r := reqs[len(reqs)-1]; r.Server != "cdn" || r.Header.Get("Range") != "bytes="+strconv.FormatInt(st.Size(), 10)+"-" {
		t.Fatalf("second pull's download: %s Range %q, want bytes=%d-", r.Server, r.Header.Get("Range"), st.Size())
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); !bytes.Equal(got, data) {
		t.Fatal("resumed file differs")
	}
}

func TestRenamedRepoFollowsRelativeRedirects(t *testing.T) {
	f := newFixture(t)
	f.hub.Rename(repoID, "org/tiny-v2")
	f.hub.SetPrivate("org/tiny-v2")
	f.hub.Grant("hf_tok", "org/tiny-v2")
	dir := snapshot(t, f.client(t, func(o *hub.Options) { o.Token = "hf_tok" }), repoID, "main")
	// Stored under the name asked for, as huggingface_hub does.
	if want := filepath.Join(f.cache, "models--org--tiny", "snapshots", f.commit); dir != want {
		t.Fatalf("dir %s, want %s", dir, want)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); !bytes.Equal(got, f.files["model.safetensors"]) {
		t.Fatal("weights differ")
	}
	if n := f.hub.Count("hub", "", "/org/tiny-v2/"); n == 0 {
		t.Fatal("no request reached the new name")
	}
	for _, r := range f.hub.Requests() {
		if r.Server == "hub" && r.Header.Get("Authorization") != "Bearer hf_tok" {
			t.Errorf("token not kept across a same-host redirect: %s %s", r.Method, r.Path)
		}
	}
}

func TestGivesUpWhenRetriesMakeNoProgress(t *testing.T) {
	f := newFixture(t)
	for range 10 { // drops every time and never resumes: no attempt gets further
		f.hub.Fail("model.safetensors", hubtest.Fault{DropAfter: 1000, IgnoreRange: true})
	}
	c := f.client(t, func(o *hub.Options) { o.MaxRetries = 2; o.Include = []string{"model.safetensors"} })
	_, err := c.Snapshot(context.Background(), repoID, "main")
	if err == nil || !strings.Contains(err.Error(), "gave up after 2 retries") || !strings.Contains(err.Error(), "model.safetensors") {
		t.Fatalf("err = %v", err)
	}
	if n := f.hub.Count("cdn", "GET", ""); n != 4 {
		t.Fatalf("%d GETs, want 4 (one that got 1000 bytes, then 3 that got no further)", n)
	}
}
