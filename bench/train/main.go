// Command train measures LoRA training speed on the native engine: r=16 on
// all seven projections, AdamW, at Qwen2.5-0.5B and 1.5B shapes (random
// weights, bf16 base on a GPU, f32 on the CPU), reporting tokens/s and peak
// device memory (from nvidia-smi when present, else the process's peak RSS).
//
// The reference on an H100 is transformers + PEFT at the same shapes, batch
// and sequence length (see docs/benchmarks.md and ../../shared/GPU.md); run
// both in the same device session and compare ratios.
//
// Run (GPU machine, after building with cgo as GPU.md shows):
//
//	.gpu/bench-train -shapes qwen2.5-0.5b,qwen2.5-1.5b -batch 8 -seq 1024 -steps 20 -backend xla:cuda -out $OUT/train.json
//
// CPU smoke run: go run ./bench/train -shapes tiny -batch 4 -seq 64 -steps 5
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/safetensors"
	"github.com/foundryhq/foundry/train"
)

// shapes are model configs by name, as in the models' config.json.
var shapes = map[string]model.Config{
	"tiny": model.RandomConfig(),
	"qwen2.5-0.5b": {ModelType: "qwen2", VocabSize: 151936, HiddenSize: 896, IntermediateSize: 4864, NumLayers: 24,
		NumHeads: 14, NumKVHeads: 2, HeadDim: 64, RMSNormEps: 1e-6, RopeTheta: 1e6, MaxPositions: 32768,
		TieWordEmbeddings: true, QKVBias: true, BOSTokenID: 151643, EOSTokenIDs: []int{151645}},
	"qwen2.5-1.5b": {ModelType: "qwen2", VocabSize: 151936, HiddenSize: 1536, IntermediateSize: 8960, NumLayers: 28,
		NumHeads: 12, NumKVHeads: 2, HeadDim: 128, RMSNormEps: 1e-6, RopeTheta: 1e6, MaxPositions: 32768,
		TieWordEmbeddings: true, QKVBias: true, BOSTokenID: 151643, EOSTokenIDs: []int{151645}},
	"qwen2.5-7b": {ModelType: "qwen2", VocabSize: 152064, HiddenSize: 3584, IntermediateSize: 18944, NumLayers: 28,
		NumHeads: 28, NumKVHeads: 4, HeadDim: 128, RMSNormEps: 1e-6, RopeTheta: 1e6, MaxPositions: 32768,
		QKVBias: true, BOSTokenID: 151643, EOSTokenIDs: []int{151645}},
}

type result struct {
	Shape          string  `json:"shape"`
	Device         string  `json:"device"`
	Batch          int     `json:"batch"`
	Seq            int     `json:"seq"`
	Steps          int     `json:"steps"`
	Rank           int     `json:"rank"`
	TokensPerSec   float64 `json:"tokens_per_second"`
	CompileSeconds float64 `json:"compile_seconds"`
	PeakMemoryGiB  float64 `json:"peak_memory_gib"`
	MemorySource   string  `json:"memory_source"`
	FirstLoss      float64 `json:"first_loss"`
	LastLoss       float64 `json:"last_loss"`
	Date           string  `json:"date"`
	Error          string  `json:"error,omitempty"`
}

func main() {
	var (
		shapeList = flag.String("shapes", "qwen2.5-0.5b,qwen2.5-1.5b", "comma-separated: tiny, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-7b")
		batch     = flag.Int("batch", 8, "batch size")
		seq       = flag.Int("seq", 1024, "sequence length")
		steps     = flag.Int("steps", 20, "timed steps (after one compiling step)")
		rank      = flag.Int("rank", 16, "LoRA rank (all seven projections)")
		backend   = flag.String("backend", "", `engine backend ("xla:cuda", "go"; default automatic)`)
		chunk     = flag.Int("loss-chunk", 256, "cross-entropy chunk (positions)")
		out       = flag.String("out", "", "write the results as JSON here too")
		tmp       = flag.String("dir", "", "where to write the random weights (default a temporary directory)")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	b, err := train.NewBackend(ctx, *backend, log)
	if err != nil {
		fail(err)
	}
	defer b.Finalize()
	var results []result
	for _, name := range strings.Split(*shapeList, ",") {
		cfg, ok := shapes[name]
		if !ok {
			fail(fmt.Errorf("unknown shape %q", name))
		}
		r := result{Shape: name, Device: b.Config + " (" + b.Description() + ")", Batch: *batch, Seq: *seq, Steps: *steps, Rank: *rank, Date: time.Now().UTC().Format(time.RFC3339)}
		dir := *tmp
		if dir == "" {
			d, err := os.MkdirTemp("", "foundry-bench-train-*")
			if err != nil {
				fail(err)
			}
			defer os.RemoveAll(d)
			dir = d
		}
		dir = filepath.Join(dir, name)
		log.Info("writing random weights", "shape", name, "dir", dir, "dtype", b.DType)
		if err := writeRandom(dir, cfg, b.DType.String() == "BFloat16"); err != nil {
			fail(err)
		}
		mem := startMemoryWatch()
		res, err := train.Benchmark(ctx, b, train.Config{Base: dir, LoRA: train.LoRA{Rank: *rank, Alpha: 2 * float64(*rank)}, LR: 2e-4, LossChunk: *chunk}, *batch, *seq, *steps, log)
		r.PeakMemoryGiB, r.MemorySource = mem.stop()
		if err != nil {
			r.Error = err.Error()
		} else {
			r.TokensPerSec, r.CompileSeconds = res.TokensPerSecond, res.CompileSeconds
			r.FirstLoss, r.LastLoss = res.Loss[0], res.Loss[len(res.Loss)-1]
		}
		fmt.Printf("%-14s batch %d seq %d r=%d: %8.0f tokens/s, peak %.2f GiB (%s), compile %.1fs, loss %.3f -> %.3f %s\n",
			name, r.Batch, r.Seq, r.Rank, r.TokensPerSec, r.PeakMemoryGiB, r.MemorySource, r.CompileSeconds, r.FirstLoss, r.LastLoss, r.Error)
		results = append(results, r)
		_ = os.RemoveAll(dir)
	}
	if *out != "" {
		buf, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*out, append(buf, '\n'), 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/train:", err)
	os.Exit(1)
}

// writeRandom writes config.json and N(0, 0.02) weights (norms 1) in bf16
// or f32.
func writeRandom(dir string, cfg model.Config, bf16 bool) error {
	r := rand.New(rand.NewPCG(1, 2))
	dt := safetensors.F32
	if bf16 {
		dt = safetensors.BF16
	}
	return model.WriteWeights(dir, cfg, dt, func(spec model.TensorSpec, v []float32) {
		norm := strings.HasSuffix(spec.Name, "norm.weight")
		for i := range v {
			if norm {
				v[i] = 1
			} else {
				v[i] = 0.02 * float32(r.NormFloat64())
			}
		}
	})
}

// memoryWatch polls nvidia-smi's used memory (the whole device: XLA's pool
// included, so set the PJRT allocator not to preallocate for a fair peak)
// or, without a GPU, reads the process's peak RSS at the end.
type memoryWatch struct {
	mu   sync.Mutex
	peak float64
	done chan struct{}
	smi  bool
}

func startMemoryWatch() *memoryWatch {
	w := &memoryWatch{done: make(chan struct{})}
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		return w
	}
	w.smi = true
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			out, err := exec.Command("nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits").Output()
			if err == nil {
				if mib, err := strconv.ParseFloat(strings.TrimSpace(strings.Split(string(out), "\n")[0]), 64); err == nil {
					w.mu.Lock()
					w.peak = max(w.peak, mib/1024)
					w.mu.Unlock()
				}
			}
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *memoryWatch) stop() (float64, string) {
	close(w.done)
	if w.smi {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.peak, "nvidia-smi memory.used"
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, "unavailable"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / (1 << 20), "process peak RSS (VmHWM)"
		}
	}
	return 0, "unavailable"
}
