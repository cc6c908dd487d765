package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/tokenizer/tokenizertest"

	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/safetensors"
	"github.com/foundryhq/foundry/train/lora"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// Token ids of the tiny test tokenizer: 0–255 are bytes, then ChatML's markers.
const (
	imStart = 256
	imEnd   = 257
	eot     = 258
)

const chatML = `{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`

// tinyModelDir writes a random tiny Llama (vocab 260) with a byte-level
// ChatML tokenizer to a temporary directory.
func tinyModelDir(t testing.TB, seed uint64) (string, model.Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := model.RandomConfig()
	cfg.VocabSize, cfg.BOSTokenID, cfg.EOSTokenIDs = 260, eot, []int{imEnd}
	if err := model.WriteRandom(dir, cfg, seed); err != nil {
		t.Fatal(err)
	}
	writeTokenizer(t, dir)
	return dir, cfg
}

// writeTokenizer writes a byte-level BPE tokenizer.json (GPT-2 byte map, no
// merges) with <|im_start|>, <|im_end|> and <|endoftext|> and a ChatML template.
func writeTokenizer(t testing.TB, dir string) {
	t.Helper()
	tc := map[string]any{"chat_template": chatML, "eos_token": "<|im_end|>", "bos_token": nil, "pad_token": "<|endoftext|>"}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"),
		tokenizertest.ByteLevel(map[int]string{imStart: "<|im_start|>", imEnd: "<|im_end|>", eot: "<|endoftext|>"}), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(tc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeJSONL writes conversations (user, assistant pairs) as fine-tuning JSONL.
func writeJSONL(t testing.TB, path string, pairs [][2]string) {
	t.Helper()
	var b strings.Builder
	for _, p := range pairs {
		m, _ := json.Marshal(map[string]any{"messages": []map[string]string{{"role": "user", "content": p[0]}, {"role": "assistant", "content": p[1]}}})
		b.Write(m)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func testBackend(t testing.TB) *engine.Backend {
	t.Helper()
	b, err := engine.NewBackend(t.Context(), engine.BackendOptions{Config: "go:ops_sequential"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Finalize)
	return b
}

// forwardLogits returns float32 logits [len(ids), vocab] of the model in
// dir, with adapter a (nil: none) through the LoRA hook.
func forwardLogits(t testing.TB, b *engine.Backend, dir string, a *lora.Adapter, ids []int32) [][]float32 {
	t.Helper()
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := mlctx.New()
	if err := m.Bind(ctx, dtypes.Float32); err != nil {
		t.Fatal(err)
	}
	opts := model.Options{}
	if a != nil {
		a.Bind(ctx)
		opts.Hook = a.LoRA.Hook()
	}
	out, err := mlctx.NewExec(b, ctx, func(ctx *mlctx.Context, tokens *graph.Node) *graph.Node {
		return model.Forward(ctx, m.Config, tokens, opts)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Finalize()
	res, err := out.Exec1(tensors.FromFlatDataAndDimensions(ids, 1, len(ids)))
	if err != nil {
		t.Fatal(err)
	}
	flat, err := tensors.CopyFlatData[float32](res)
	if err != nil {
		t.Fatal(err)
	}
	v := m.Config.VocabSize
	rows := make([][]float32, len(ids))
	for i := range rows {
		rows[i] = flat[i*v : (i+1)*v]
	}
	return rows
}

func maxAbsDiff(a, b [][]float32) float64 {
	var d float64
	for i := range a {
		for j := range a[i] {
			d = max(d, abs(float64(a[i][j]-b[i][j])))
		}
	}
	return d
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func mustf(t testing.TB, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

// scaleHead multiplies lm_head by factor. WriteRandom's N(0, 0.02) head
// caps every logit near ±1.3 after the final RMSNorm, so no adapter (which
// leaves the head and norms alone) could make the model confident; a
// pretrained head is about this much larger.
func scaleHead(t testing.TB, dir string, factor float32) {
	t.Helper()
	path := filepath.Join(dir, "model.safetensors")
	f, err := safetensors.Open(path)
	mustf(t, err, "open weights")
	var ts []safetensors.Tensor
	for _, name := range f.Names() {
		vals, shape, err := f.Float32(name)
		mustf(t, err, "read %s", name)
		if name == "lm_head.weight" {
			for i := range vals {
				vals[i] *= factor
			}
		}
		st, err := safetensors.Float32Tensor(name, safetensors.F32, shape, vals)
		mustf(t, err, "tensor")
		ts = append(ts, st)
	}
	f.Close()
	mustf(t, safetensors.Write(path, ts, map[string]string{"format": "pt"}), "write weights")
}
