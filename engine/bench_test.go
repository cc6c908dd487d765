package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/train/lora/loratest"
)

// Benchmarks of the tiny fixture models on the current backend:
//
//	go test ./engine -run '^$' -bench . -benchtime 2s
//
// They report tokens/s: prompt tokens for prefill, generated tokens
// (summed over the batch) for decode.

func benchRunner(b *testing.B, arch, config string, slots, maxCtx int) *Runner {
	b.Helper()
	be, err := NewBackend(context.Background(), BackendOptions{Config: config, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Load(filepath.Join("..", "model", "testdata", arch))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	r, err := NewRunner(context.Background(), be, m, RunnerOptions{Slots: slots, MaxContext: maxCtx})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func BenchmarkPrefill(b *testing.B) {
	for _, n := range []int{16, 128} {
		b.Run(fmt.Sprintf("qwen2/prompt=%d", n), func(b *testing.B) {
			r := benchRunner(b, "qwen2", benchBackend, 1, 256)
			prompt := make([]int32, n)
			for i := range prompt {
				prompt[i] = int32(i % 300)
			}
			if _, err := r.Prefill(0, prompt, 0); err != nil { // build the graph
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.Prefill(0, prompt, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, slots := range []int{1, 8} {
		b.Run(fmt.Sprintf("qwen2/batch=%d", slots), func(b *testing.B) {
			r := benchRunner(b, "qwen2", benchBackend, slots, 2048)
			tokens, positions, active := make([]int32, slots), make([]int32, slots), make([]bool, slots)
			for s := range slots {
				active[s] = true
				positions[s] = 100
			}
			if _, err := r.Decode(tokens, positions, active, nil); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.Decode(tokens, positions, active, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(slots*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkDecodeAdapters is BenchmarkDecode with 8 slots through the
// adapter graph: every slot on the base (index 0), and slots alternating
// between the base and two rank-16 adapters (the mixed batch).
func BenchmarkDecodeAdapters(b *testing.B) {
	const slots = 8
	for _, mix := range []string{"base", "mixed"} {
		b.Run("qwen2/batch=8/adapters="+mix, func(b *testing.B) {
			be, err := NewBackend(context.Background(), BackendOptions{Config: benchBackend, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			m, err := model.Load(filepath.Join("..", "model", "testdata", "qwen2"))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			r, err := NewRunner(context.Background(), be, m, RunnerOptions{Slots: slots, MaxContext: 2048, MaxAdapters: 2, MaxRank: 16})
			if err != nil {
				b.Fatal(err)
			}
			for i := range 2 {
				if _, err := r.LoadAdapter(fmt.Sprint(i), loratest.RandomAdapter(m.Config, 16, 16, nil, uint64(i))); err != nil {
					b.Fatal(err)
				}
			}
			tokens, positions, active, adapters := make([]int32, slots), make([]int32, slots), make([]bool, slots), make([]int32, slots)
			for s := range slots {
				active[s] = true
				positions[s] = 100
			}
			if mix == "mixed" {
				for s := range slots {
					adapters[s] = int32(s % 3)
				}
			}
			if _, err := r.step(tokens, positions, active, adapters, true); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.step(tokens, positions, active, adapters, true); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(slots*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkGenerate measures the whole engine (scheduler, sampling) with
// `batch` concurrent greedy requests of 64 new tokens each.
func BenchmarkGenerate(b *testing.B) {
	for _, batch := range []int{1, 8} {
		b.Run(fmt.Sprintf("qwen2/batch=%d", batch), func(b *testing.B) {
			e := New(benchRunner(b, "qwen2", benchBackend, batch, 256), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer e.Close()
			prompt := []int32{1, 17, 42, 256, 3, 99, 150, 7, 211, 64, 5, 280}
			tokens := 0
			for b.Loop() {
				streams := make([]*Stream, batch)
				for i := range streams {
					s, err := e.Generate(context.Background(), Request{Prompt: prompt, MaxTokens: 64, IgnoreEOS: true})
					if err != nil {
						b.Fatal(err)
					}
					streams[i] = s
				}
				for _, s := range streams {
					res, err := s.Wait()
					if err != nil {
						b.Fatal(err)
					}
					tokens += len(res.Tokens)
				}
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkSmolLM2Shape measures a SmolLM2-135M-shaped model with random
// weights (written once to $FOUNDRY_BENCH_DIR, default a temp dir); it is
// skipped unless FOUNDRY_BENCH_135M=1 since writing the model takes a while.
func BenchmarkSmolLM2Shape(b *testing.B) {
	if os.Getenv("FOUNDRY_BENCH_135M") != "1" {
		b.Skip("set FOUNDRY_BENCH_135M=1 to run")
	}
	dir := os.Getenv("FOUNDRY_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "foundry-smollm2-135m-random")
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		cfg := model.Config{ModelType: "llama", VocabSize: 49152, HiddenSize: 576, IntermediateSize: 1536, NumLayers: 30,
			NumHeads: 9, NumKVHeads: 3, HeadDim: 64, RMSNormEps: 1e-5, RopeTheta: 100000, MaxPositions: 8192,
			TieWordEmbeddings: true, BOSTokenID: 1, EOSTokenIDs: []int{2}}
		if err := model.WriteRandom(dir, cfg, 1); err != nil {
			b.Fatal(err)
		}
	}
	be, err := NewBackend(context.Background(), BackendOptions{Config: "go", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for _, slots := range []int{1, 8} {
		r, err := NewRunner(context.Background(), be, m, RunnerOptions{Slots: slots, MaxContext: 512})
		if err != nil {
			b.Fatal(err)
		}
		if slots == 1 {
			b.Run("prefill=64", func(b *testing.B) {
				prompt := make([]int32, 64)
				for i := range prompt {
					prompt[i] = int32(i * 7)
				}
				for b.Loop() {
					if _, err := r.Prefill(0, prompt, 0); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
		b.Run(fmt.Sprintf("decode/batch=%d", slots), func(b *testing.B) {
			tokens, positions, active := make([]int32, slots), make([]int32, slots), make([]bool, slots)
			for s := range slots {
				active[s], positions[s] = true, 100
			}
			for b.Loop() {
				if _, err := r.Decode(tokens, positions, active, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(slots*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// benchBackend is the backend the benchmarks run on: FOUNDRY_BENCH_BACKEND, or "go".
var benchBackend = func() string {
	if v := os.Getenv("FOUNDRY_BENCH_BACKEND"); v != "" {
		return v
	}
	return "go"
}()
