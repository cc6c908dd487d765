package dataset_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/hub/hubtest"
)

// parquetOf writes examples as a Parquet file with the dataset writer.
func parquetOf(t *testing.T, exs []*dataset.Example) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := dataset.NewWriter(&buf, dataset.FormatParquet)
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range exs {
		if err := w.Write(ex); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func chat(user, answer string) *dataset.Example {
	return &dataset.Example{FineTuneExample: api.FineTuneExample{Messages: []api.Message{
		{Role: "user", Content: api.TextContent(user)},
		{Role: "assistant", Content: api.TextContent(answer)},
	}}}
}

// TestBuildFromHubDataset builds a version from a Parquet file in
// Foundry's schema, one in a hub dataset's (messages as a list of structs)
// and a ShareGPT JSONL file of a dataset repo on a fake hub, then again
// offline from the cache alone.
func TestBuildFromHubDataset(t *testing.T) {
	h := hubtest.New(t)
	cache := t.TempDir()
	h.Setenv(t, cache)
	var exs []*dataset.Example
	for i := range 20 {
		exs = append(exs, chat(fmt.Sprintf("How do I configure feature %d of the billing module?", i),
			fmt.Sprintf("Open settings, choose billing, then enable option %d and save the change.", i*7)))
	}
	pq := parquetOf(t, exs)
	var sharegpt strings.Builder
	for i := range 5 {
		fmt.Fprintf(&sharegpt, `{"conversations": [{"from": "human", "value": "Translate %d into words."}, {"from": "gpt", "value": "It is written as number %d."}]}`+"\n", i*11, i*11)
	}
	var native []hubChatRow
	for i := range 3 {
		native = append(native, hubChatRow{Prompt: fmt.Sprint(i), Messages: []hubMessage{
			{"user", fmt.Sprintf("Which plan includes %d seats?", i+3)}, {"assistant", fmt.Sprintf("The team plan includes %d seats.", i+3)}}})
	}
	nativePQ, err := os.ReadFile(writeParquet(t, native))
	if err != nil {
		t.Fatal(err)
	}
	commit := h.Commit("datasets/org/chats", "main", map[string][]byte{
		"data/train-00000-of-00001.parquet": pq, // over the fake's LFS threshold: served by its CDN
		"native/train.parquet":              nativePQ,
		"extra/more.jsonl":                  []byte(sharegpt.String()),
		"README.md":                         []byte("# chats\n"),
	})
	if len(pq) < h.LFSThreshold {
		t.Fatalf("the Parquet fixture is %d bytes, under the LFS threshold", len(pq))
	}
	spec := `name: scavenged
sources:
  - file: hf://datasets/org/chats/data/train-00000-of-00001.parquet
  - file: hf://datasets/org/chats@main/extra/more.jsonl
    format: sharegpt
  - file: hf://datasets/org/chats/native/train.parquet
split: {train: 1, val: 0, test: 0}
`
	s, err := dataset.ParseSpec("spec.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	b, err := dataset.Build(context.Background(), s, dataset.BuildOptions{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Manifest.Rows["train"]; got != 28 {
		t.Fatalf("%d train rows, want 28 (20 + 3 from Parquet, 5 from JSONL); funnel %+v", got, b.Manifest.Funnel.Stage("select"))
	}
	sel := b.Manifest.Funnel.Stage("select")
	if sel.Counters["from hf://datasets/org/chats/data/train-00000-of-00001.parquet"] != 20 || sel.Counters["from hf://datasets/org/chats@main/extra/more.jsonl"] != 5 {
		t.Errorf("select counters %v", sel.Counters)
	}
	for _, row := range b.Manifest.Sample {
		if !strings.HasPrefix(row.Source, "hf://datasets/org/chats@main/") {
			t.Errorf("sample row %s comes from %q, want its hf:// reference", row.ID, row.Source)
		}
	}
	snap := filepath.Join(cache, "datasets--org--chats", "snapshots", commit)
	for _, name := range []string{"data/train-00000-of-00001.parquet", "extra/more.jsonl", "native/train.parquet"} {
		if _, err := os.Stat(filepath.Join(snap, filepath.FromSlash(name))); err != nil {
			t.Errorf("%s is not in the hub cache: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(snap, "README.md")); err == nil {
		t.Error("the build fetched a file no source names")
	}
	if n := h.Count("cdn", "GET", ""); n != 1+boolInt(len(nativePQ) >= h.LFSThreshold) {
		t.Errorf("%d CDN downloads, want one per Parquet file over the LFS threshold", n)
	}

	// Offline, the same spec builds the same version from the cache.
	t.Setenv("HF_HUB_OFFLINE", "1")
	h.ResetRequests()
	b2, err := dataset.Build(context.Background(), s, dataset.BuildOptions{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if !b2.Existed || b2.Manifest.Hash != b.Manifest.Hash {
		t.Errorf("offline rebuild: %s (existed %v), want the same version %s", b2.Manifest.Short(), b2.Existed, b.Manifest.Short())
	}
	if n := len(h.Requests()); n != 0 {
		t.Errorf("the offline build made %d hub requests", n)
	}
	other, err := dataset.ParseSpec("spec.yaml", []byte("name: other\nsources: [{file: hf://datasets/org/chats@v2/data/x.jsonl}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = dataset.Build(context.Background(), other, dataset.BuildOptions{DataDir: dataDir})
	if err == nil || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") || !strings.Contains(err.Error(), "foundry pull --dataset org/chats@v2") {
		t.Errorf("offline build of an uncached file: %v", err)
	}
}

func TestBuildFromHubDatasetErrors(t *testing.T) {
	h := hubtest.New(t)
	h.Setenv(t, t.TempDir())
	h.Commit("datasets/org/chats", "main", map[string][]byte{"a.jsonl": []byte(`{"messages": []}` + "\n")})
	for _, c := range []struct{ file, want string }{
		{"hf://datasets/org/chats/missing.jsonl", `file "missing.jsonl" not found in datasets/org/chats@main`},
		{"hf://datasets/org/nope/a.jsonl", "dataset org/nope not found"},
		{"hf://datasets/org/chats@dev/a.jsonl", `revision "dev" not found in datasets/org/chats`},
	} {
		s, err := dataset.ParseSpec("spec.yaml", []byte("name: x\nsources: [{file: "+c.file+"}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = dataset.Build(context.Background(), s, dataset.BuildOptions{DataDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to say %q", c.file, err, c.want)
		}
	}
}

func TestParseHubFile(t *testing.T) {
	for in, want := range map[string]dataset.HubFile{
		"hf://datasets/org/data/train.parquet":                                    {Repo: "org/data", Rev: "main", Path: "train.parquet"},
		"hf://datasets/org/data@v1/a/b/c.jsonl":                                   {Repo: "org/data", Rev: "v1", Path: "a/b/c.jsonl"},
		"hf://datasets/org/data@refs%2Fconvert%2Fparquet/default/train/0.parquet": {Repo: "org/data", Rev: "refs/convert/parquet", Path: "default/train/0.parquet"},
	} {
		got, err := dataset.ParseHubFile(in)
		if err != nil || got != want {
			t.Errorf("ParseHubFile(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if err == nil && got.Rev != "main" && got.String() != in {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for in, want := range map[string]string{
		"hf://org/model/config.json":      "only dataset repos",
		"hf://datasets/org/data":          "name the repo and the file",
		"hf://datasets/org/data/../x":     "leaves its directory",
		"hf://datasets/org/da--ta/x.json": "not a Hugging Face repo id",
	} {
		if _, err := dataset.ParseHubFile(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseHubFile(%q): %v, want it to say %q", in, err, want)
		}
		if _, err := dataset.ParseSpec("s.yaml", []byte("name: x\nsources: [{file: \""+in+"\"}]\n")); err == nil || !strings.Contains(err.Error(), "sources[0].file") {
			t.Errorf("ParseSpec with %q: %v, want it to name sources[0].file", in, err)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestBuildFromHubGlob reads a sharded split named by a glob, fetching the
// matching shards only, in name order.
func TestBuildFromHubGlob(t *testing.T) {
	h := hubtest.New(t)
	cache := t.TempDir()
	h.Setenv(t, cache)
	shard := func(from, n int) []byte {
		var exs []*dataset.Example
		for i := from; i < from+n; i++ {
			exs = append(exs, chat(fmt.Sprintf("Question %d about the invoice export?", i), fmt.Sprintf("Answer %d: use the export button in billing.", i)))
		}
		return parquetOf(t, exs)
	}
	h.Commit("datasets/org/sharded", "main", map[string][]byte{
		"data/train-00001-of-00002.parquet": shard(10, 4),
		"data/train-00000-of-00002.parquet": shard(0, 3),
		"data/test-00000-of-00001.parquet":  shard(100, 2),
	})
	s, err := dataset.ParseSpec("spec.yaml", []byte("name: sharded\nsources: [{file: \"hf://datasets/org/sharded/data/train-*.parquet\"}]\nskip: [dedupe]\nsplit: {train: 1, val: 0, test: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := dataset.Build(context.Background(), s, dataset.BuildOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Manifest.Rows["train"]; got != 7 {
		t.Fatalf("%d rows, want 7 (3 + 4 from the two train shards)", got)
	}
	if n := h.Count("", "GET", "test-00000"); n != 0 {
		t.Errorf("the test shard was downloaded (%d GETs)", n)
	}
	// Shard 00000 first: its rows come before 00001's.
	if first := b.Manifest.Sample[0]; !strings.HasSuffix(first.Source, "data/train-00000-of-00002.parquet") {
		t.Errorf("first sample row from %q, want shard 00000", first.Source)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	if b2, err := dataset.Build(context.Background(), s, dataset.BuildOptions{DataDir: t.TempDir()}); err != nil || b2.Manifest.Hash != b.Manifest.Hash {
		t.Errorf("offline rebuild: %v", err)
	}
}
