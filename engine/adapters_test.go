package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/train/lora/loratest"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/model/nn"
	"github.com/foundryhq/foundry/train/lora"
)

// float32Model copies fixture arch with float32 weights.
func float32Model(t *testing.T, arch string) string {
	return loratest.Float32Model(t, filepath.Join("..", "model", "testdata", arch))
}

// runnerAt is a runner on the model in dir.
func runnerAt(t *testing.T, dir string, opts RunnerOptions) *Runner {
	t.Helper()
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, err := NewRunner(context.Background(), goBackend(t), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mergedRunner is a plain runner on base with a merged in (lora.Merge).
func mergedRunner(t *testing.T, base string, a *lora.Adapter, opts RunnerOptions) *Runner {
	t.Helper()
	dir := t.TempDir()
	if err := a.Save(filepath.Join(dir, "adapter")); err != nil {
		t.Fatal(err)
	}
	if err := lora.Merge(base, filepath.Join(dir, "adapter"), filepath.Join(dir, "merged")); err != nil {
		t.Fatal(err)
	}
	opts.MaxAdapters = 0
	return runnerAt(t, filepath.Join(dir, "merged"), opts)
}

// TestAdaptersMatchMergedModels serves two adapters (different ranks and
// targets) over one base and checks each against its merged model: the
// full-sequence logits, and greedy generation in one batch that mixes the
// base and both adapters.
func TestAdaptersMatchMergedModels(t *testing.T) {
	const arch = "qwen2" // q/k/v biases: the adapter adds to a biased projection
	f := loadFixture(t, arch)
	opts := RunnerOptions{Slots: 3, MaxContext: 64, MaxAdapters: 2, MaxRank: 8}
	base := float32Model(t, arch)
	r := runnerAt(t, base, opts)
	cfg := r.Config()
	adapters := []*lora.Adapter{
		loratest.RandomAdapter(cfg, 8, 16, nil, 1),
		loratest.RandomAdapter(cfg, 4, 4, []nn.Projection{nn.Q, nn.V, nn.Down}, 2),
	}
	runners := []*Runner{runnerAt(t, base, RunnerOptions{Slots: 3, MaxContext: 64})}
	for i, a := range adapters {
		idx, err := r.LoadAdapter([]string{"one", "two"}[i], a)
		if err != nil {
			t.Fatal(err)
		}
		if idx != i+1 {
			t.Fatalf("adapter %d loaded at index %d", i, idx)
		}
		runners = append(runners, mergedRunner(t, base, a, opts))
	}

	// Full-sequence logits.
	baseLogits, err := r.Logits(f.InputIDs, 0)
	if err != nil {
		t.Fatal(err)
	}
	for idx, m := range runners {
		got, err := r.Logits(f.InputIDs, idx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.Logits(f.InputIDs, 0)
		if err != nil {
			t.Fatal(err)
		}
		var worst, moved float64
		for i := range got {
			worst = max(worst, maxAbsDiff(got[i], want[i]))
			moved = max(moved, maxAbsDiff(got[i], baseLogits[i]))
		}
		if worst > 1e-4 {
			t.Errorf("adapter %d: max |logit - merged model's| = %.3g, want ≤ 1e-4", idx, worst)
		}
		if idx > 0 && moved < 1e-2 {
			t.Errorf("adapter %d changes the logits by only %.3g: the test adapter is too weak to test anything", idx, moved)
		}
		t.Logf("adapter %d: max |logit - merged| = %.3g (moved %.3g from the base)", idx, worst, moved)
	}

	// Greedy generation: alone on its own (merged) model, then all three in one batch.
	ctx := context.Background()
	req := func(adapter int) Request {
		return Request{Prompt: f.InputIDs, MaxTokens: 12, IgnoreEOS: true, Adapter: adapter}
	}
	var alone []*Result
	for _, m := range runners {
		e := New(m, Options{})
		s, err := e.Generate(ctx, req(0))
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Wait()
		if err != nil {
			t.Fatal(err)
		}
		alone = append(alone, res)
		e.Close()
	}
	e := New(r, Options{})
	defer e.Close()
	var streams []*Stream
	for _, idx := range []int{2, 0, 1} {
		s, err := e.Generate(ctx, req(idx))
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	for i, idx := range []int{2, 0, 1} {
		res, err := streams[i].Wait()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := res.IDs(), alone[idx].IDs(); !equalIDs(got, want) {
			t.Errorf("adapter %d in a mixed batch: greedy ids %v, alone on the merged model %v", idx, got, want)
		}
	}
	if equalIDs(alone[0].IDs(), alone[1].IDs()) && equalIDs(alone[0].IDs(), alone[2].IDs()) {
		t.Errorf("the adapters do not change the greedy ids %v: the test cannot tell them apart", alone[0].IDs())
	}
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestAdapterLoadUnload checks the adapter places: full, freed by unload
// and reused, and the refusals.
func TestAdapterLoadUnload(t *testing.T) {
	r := newTestRunner(t, "llama", RunnerOptions{Slots: 2, MaxContext: 32, MaxAdapters: 2, MaxRank: 4})
	cfg := r.Config()
	ids := []int32{1, 17, 42}
	mustLoad := func(name string, a *lora.Adapter) int {
		t.Helper()
		i, err := r.LoadAdapter(name, a)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	a, b, c := loratest.RandomAdapter(cfg, 4, 8, nil, 1), loratest.RandomAdapter(cfg, 2, 8, nil, 2), loratest.RandomAdapter(cfg, 3, 8, nil, 3)
	if mustLoad("a", a) != 1 || mustLoad("b", b) != 2 {
		t.Fatal("adapters not loaded at indices 1 and 2")
	}
	wantB, err := r.Logits(ids, 2)
	if err != nil {
		t.Fatal(err)
	}
	refuse := func(what, name string, ad *lora.Adapter, want string) {
		t.Helper()
		_, err := r.LoadAdapter(name, ad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", what, err, want)
		}
	}
	refuse("full", "c", c, "all 2 adapter places are taken")
	refuse("same name", "a", c, "already loaded")
	refuse("rank", "c", loratest.RandomAdapter(cfg, 8, 8, nil, 4), "rank 8 is above the engine's max LoRA rank 4")
	other, err := model.LoadConfig(filepath.Join("..", "model", "testdata", "qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	refuse("another base", "c", loratest.RandomAdapter(other, 2, 8, []nn.Projection{nn.Q}, 5), "trained on another base")

	if err := r.UnloadAdapter("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Logits(ids, 1); err == nil || !strings.Contains(err.Error(), "no LoRA adapter is loaded at index 1") {
		t.Errorf("logits through an unloaded index: %v", err)
	}
	if err := r.UnloadAdapter("a"); err == nil {
		t.Error("unloading twice: no error")
	}
	if i := mustLoad("c", c); i != 1 {
		t.Fatalf("c loaded at %d, want the freed index 1", i)
	}
	// Loading c into index 1 leaves b's output as it was.
	gotB, err := r.Logits(ids, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range gotB {
		if d := maxAbsDiff(gotB[i], wantB[i]); d != 0 {
			t.Fatalf("b's logits changed by %.3g after c was loaded beside it", d)
		}
	}
	if i, ok := r.Adapter("c"); !ok || i != 1 {
		t.Errorf("Adapter(c) = %d, %v", i, ok)
	}

	// An engine refuses an index with nothing loaded, and fails the
	// requests of an adapter it unloads.
	e := New(r, Options{})
	defer e.Close()
	var re *RequestError
	if _, err := e.Generate(context.Background(), Request{Prompt: ids, Adapter: 3}); !errors.As(err, &re) {
		t.Errorf("request for index 3: %v, want a RequestError", err)
	}
	s, err := e.Generate(context.Background(), Request{Prompt: ids, Adapter: 1, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.UnloadAdapter("c"); err != nil {
		t.Fatal(err)
	}
	// It may have finished first (the scheduler does not wait for unloads).
	if res, err := s.Wait(); (err == nil && res.FinishReason != FinishLength) || (err != nil && !strings.Contains(err.Error(), `adapter "c" was unloaded`)) {
		t.Errorf("request on an unloaded adapter: %v (%d tokens), want it failed or done", err, len(res.Tokens))
	}
	if _, err := e.Generate(context.Background(), Request{Prompt: ids, Adapter: 1}); !errors.As(err, &re) {
		t.Errorf("request for unloaded index 1: %v, want a RequestError", err)
	}
	if _, ok := r.Adapter("c"); ok {
		t.Error("c still loaded after Engine.UnloadAdapter")
	}

	// No adapters at all.
	plain := newTestRunner(t, "llama", RunnerOptions{Slots: 1, MaxContext: 16})
	if _, err := plain.LoadAdapter("a", a); err == nil || !strings.Contains(err.Error(), "without room for adapters") {
		t.Errorf("load into a runner without adapters: %v", err)
	}
}
