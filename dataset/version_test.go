package dataset_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foundryhq/foundry/dataset"
)

func TestBuildIsDeterministicAndVersioned(t *testing.T) {
	ctx := context.Background()
	st, _ := plantedStore(t)
	spec, err := dataset.ReadSpec("testdata/planted.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := dataset.Build(ctx, spec, dataset.BuildOptions{Store: st, DataDir: dirA})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dataset.Build(ctx, spec, dataset.BuildOptions{Store: st, DataDir: dirB})
	if err != nil {
		t.Fatal(err)
	}
	if a.Manifest.Hash != b.Manifest.Hash {
		t.Fatalf("same input, different hashes: %s %s", a.Manifest.Hash, b.Manifest.Hash)
	}
	for _, sp := range dataset.Splits {
		x, _ := os.ReadFile(filepath.Join(a.Dir, sp+".jsonl"))
		y, _ := os.ReadFile(filepath.Join(b.Dir, sp+".jsonl"))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between identical builds", sp)
		}
	}
	if filepath.Base(a.Dir) != a.Manifest.Hash[:12] || filepath.Base(filepath.Dir(a.Dir)) != "planted" {
		t.Errorf("version stored at %s", a.Dir)
	}
	// Building again into the same data dir finds the version.
	again, err := dataset.Build(ctx, spec, dataset.BuildOptions{Store: st, DataDir: dirA})
	if err != nil || !again.Existed || again.Dir != a.Dir {
		t.Fatalf("rebuild: %+v %v", again, err)
	}
	// A different split seed moves rows: another version; diff sees moves only.
	spec2 := *spec
	spec2.Split.Seed = "other"
	c, err := dataset.Build(ctx, &spec2, dataset.BuildOptions{Store: st, DataDir: dirA, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if c.Manifest.Hash == a.Manifest.Hash {
		t.Fatal("a different split gave the same hash")
	}
	vs, err := dataset.List(dirA)
	if err != nil || len(vs) != 2 || vs[0].Manifest.Hash != c.Manifest.Hash {
		t.Fatalf("list: %d versions, %v", len(vs), err)
	}
	latest, err := dataset.Open(dirA, "planted")
	if err != nil || latest.Manifest.Hash != c.Manifest.Hash {
		t.Fatalf("open latest: %v", err)
	}
	va, err := dataset.Open(dirA, "planted@"+a.Manifest.Hash[:6])
	if err != nil || va.Manifest.Hash != a.Manifest.Hash {
		t.Fatalf("open by hash: %v", err)
	}
	if _, err := dataset.Open(dirA, "planted@ffffffff"); err == nil || !strings.Contains(err.Error(), "no version") {
		t.Errorf("unknown version: %v", err)
	}
	d, err := dataset.Diff(ctx, va, latest)
	if err != nil {
		t.Fatal(err)
	}
	if d.Added != 0 || d.Removed != 0 || d.Moved == 0 {
		t.Errorf("diff after a re-split: %+v", d)
	}
	// Manifest contents.
	m := a.Manifest
	if m.Tokens.Count != 30 || len(m.Tokens.Buckets) == 0 || len(m.Sample) == 0 || len(m.Queries) != 1 || m.Queries[0].Status != "ok" {
		t.Errorf("manifest: tokens %+v, %d samples, queries %+v", m.Tokens, len(m.Sample), m.Queries)
	}
	// Export every format from the stored version.
	for _, f := range dataset.Formats {
		var buf bytes.Buffer
		n, skipped, err := va.Export(ctx, "train", f, &buf)
		if err != nil || n == 0 || n+skipped != m.Rows["train"] {
			t.Errorf("export %s: %d written, %d skipped, %v (train has %d)", f, n, skipped, err, m.Rows["train"])
		}
	}
}

func TestSplitStratifiedProportions(t *testing.T) {
	st, err := dataset.Split(dataset.SplitSpec{Train: 0.8, Val: 0.1, Test: 0.1, Stratify: "route"})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]map[string]int{}
	var exs []*dataset.Example
	for i := range 1000 {
		route := []string{"a", "b", "c", "d"}[i%4] // strata of 250
		if i%10 == 0 {
			route = "small" // 100 rows
		}
		ex := &dataset.Example{Meta: dataset.Meta{ID: "id-" + string(rune('a'+i%26)) + strings.Repeat("x", i%7) + "-" + strconv.Itoa(i), Route: route}}
		exs = append(exs, ex)
	}
	run := func() []string {
		var got []string
		p := &dataset.Pipeline{Source: sliceSource(exs), Stages: []dataset.Stage{st}}
		if _, err := p.Run(context.Background(), func(ex *dataset.Example) error {
			got = append(got, ex.Split)
			if counts[ex.Meta.Route] == nil {
				counts[ex.Meta.Route] = map[string]int{}
			}
			counts[ex.Meta.Route][ex.Split]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := run()
	for route, c := range counts {
		n := c["train"] + c["val"] + c["test"]
		for sp, p := range map[string]float64{"train": 0.8, "val": 0.1, "test": 0.1} {
			if d := float64(c[sp]) - p*float64(n); d > 1.5 || d < -1.5 {
				t.Errorf("stratum %s: %s has %d of %d rows, want %.0f±1", route, sp, c[sp], n, p*float64(n))
			}
		}
	}
	st, _ = dataset.Split(dataset.SplitSpec{Train: 0.8, Val: 0.1, Test: 0.1, Stratify: "route"})
	counts = map[string]map[string]int{}
	if second := run(); strings.Join(first, ",") != strings.Join(second, ",") {
		t.Error("the split is not deterministic")
	}
}

// sliceSource is a Source over examples in memory (tests only).
type sliceSource []*dataset.Example

func (s sliceSource) Name() string { return "select" }
func (s sliceSource) Examples(ctx context.Context, out *dataset.Out) error {
	for _, ex := range s {
		cp := *ex
		if err := out.Keep(ctx, &cp); err != nil {
			return err
		}
	}
	return nil
}

func TestInvalidSpecsNameTheLine(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"name: x\nsources:\n  - store: {routes: [a]}\nvalidate:\n  jsn: true\n", "[5:3] unknown field \"jsn\""},
		{"name: x\nsources:\n  - store: {routes: [a]}\ndedupe:\n  threshold: high\n", "[5:14]"},
		{"name: x\nsources: []\n", "sources: name at least one source"},
		{"name: 'bad name!'\nsources:\n  - file: a.jsonl\n", "name \"bad name!\""},
		{"name: x\nsources:\n  - file: a.jsonl\n    store: {}\n", "give store or file, not both"},
	}
	for _, c := range cases {
		_, err := dataset.ParseSpec("spec.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("spec %q: error %v, want it to contain %q", c.yaml, err, c.want)
		}
	}
	// Semantic errors in stages surface from Build, naming the field.
	spec, err := dataset.ParseSpec("spec.yaml", []byte("name: x\nsources:\n  - file: testdata/mixed.openai.jsonl\nvalidate:\n  must_match: ['(unclosed']\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Build(context.Background(), spec, dataset.BuildOptions{DataDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "validate.must_match") {
		t.Errorf("bad regex: %v", err)
	}
}

func TestBuildFromFilesWithWeights(t *testing.T) {
	spec, err := dataset.ParseSpec("spec.yaml", []byte(`name: mixed
sources:
  - file: testdata/mixed.openai.jsonl
    weight: 2
skip: [dedupe]
split: {train: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := dataset.Build(context.Background(), spec, dataset.BuildOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sel := b.Manifest.Funnel.Stage("select")
	if sel.DroppedFor("unreadable row") != 2 || sel.Out != 4 {
		t.Errorf("select: %+v", sel)
	}
	if b.Manifest.Rows["train"] != 8 {
		t.Errorf("weight 2 wrote %d train rows, want 8", b.Manifest.Rows["train"])
	}
	if s := sel.Dropped[0].Samples[0]; s.Line != 4 || !strings.Contains(s.Detail, "line 4") {
		t.Errorf("the unreadable row's sample does not name its line: %+v", s)
	}
}

func TestMixWeightBelowOneSamplesDeterministically(t *testing.T) {
	spec, err := dataset.ParseSpec("spec.yaml", []byte(`name: sampled
sources:
  - file: testdata/mixed.openai.jsonl
  - file: testdata/mixed.openai.jsonl
    weight: 0.5
skip: [dedupe, validate]
`))
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for range 2 {
		b, err := dataset.Build(context.Background(), spec, dataset.BuildOptions{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		sel := b.Manifest.Funnel.Stage("select")
		second := sel.Counters["from testdata/mixed.openai.jsonl"] - 4 // both parts share the label: the first kept all 4
		sampled := sel.DroppedFor("sampled out by mix weight")
		if sel.Out != 4+second || second+sampled != 4 || sel.DroppedFor("unreadable row") != 4 {
			t.Errorf("select: out %d, second part kept %d, sampled out %d, %+v", sel.Out, second, sampled, sel.Dropped)
		}
		hashes = append(hashes, b.Manifest.Hash)
	}
	if hashes[0] != hashes[1] {
		t.Error("sampling by weight is not deterministic")
	}
}
