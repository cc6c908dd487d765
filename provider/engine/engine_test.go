package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/tokenizer/tokenizertest"

	"github.com/foundryhq/foundry/api"
	core "github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/tokenizer"
	"github.com/foundryhq/foundry/train/lora"
)

const chatTemplate = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" +
	"{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"

// modelDir copies the tiny qwen2 fixture and gives it a byte-level BPE
// tokenizer (ids 0–255 are bytes, 256 and 257 are <|im_start|> and
// <|im_end|>, the rest other special tokens) with a ChatML template.
func modelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "model", "testdata", "qwen2", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	special := map[int]string{256: "<|im_start|>", 257: "<|im_end|>"}
	for id := 258; id < 300; id++ {
		special[id] = "<|x" + strings.Repeat("y", id-257) + "|>"
	}
	write := func(name string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tokenizertest.ByteLevel(special), 0o644); err != nil {
		t.Fatal(err)
	}
	write("tokenizer_config.json", map[string]any{"eos_token": "<|im_end|>", "chat_template": chatTemplate})
	return dir
}

func newTestProvider(t *testing.T, slots int) (*Provider, Model) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := core.NewBackend(context.Background(), core.BackendOptions{Config: "go", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(context.Background(), b, "tiny-qwen2", modelDir(t), LoadOptions{Runner: core.RunnerOptions{Slots: slots, MaxContext: 128, MaxAdapters: 2}, Logger: quiet, Warmup: slots == 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Engine.Close() })
	p, err := New(Options{Models: []Model{m}})
	if err != nil {
		t.Fatal(err)
	}
	return p, m
}

func ptr[T any](v T) *T { return &v }

func chatRequest(content string) *api.ChatRequest {
	return &api.ChatRequest{Model: "tiny-qwen2", Messages: []api.Message{
		{Role: "system", Content: api.TextContent("Be brief.")},
		{Role: "user", Content: api.TextContent(content)},
	}, Temperature: ptr(0.0), MaxTokens: ptr(10)}
}

// TestChatMatchesEngine: Chat renders the template, encodes, and returns
// what the engine generates for those ids.
func TestChatMatchesEngine(t *testing.T) {
	p, m := newTestProvider(t, 2)
	req := chatRequest("Hello there")
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	text := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
	ids := int32s(m.Tokenizer.Encode(text, tokenizer.EncodeOptions{}))
	// <|im_start|> text <|im_end|> "\n", twice, then <|im_start|> "assistant\n": one id per byte.
	if ids[0] != 256 || len(ids) != (1+len("system\nBe brief.")+2)+(1+len("user\nHello there")+2)+(1+len("assistant\n")) {
		t.Fatalf("prompt ids %v", ids)
	}
	s, err := m.Engine.Generate(context.Background(), core.Request{Prompt: ids, MaxTokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	c := resp.Choices[0]
	if c.Message.Role != "assistant" || c.Message.Content.String() != want.Text || c.FinishReason != string(want.FinishReason) {
		t.Fatalf("choice %+v, engine gave %q (%s)", c, want.Text, want.FinishReason)
	}
	if resp.Usage == nil || resp.Usage.PromptTokens != len(ids) || resp.Usage.CompletionTokens != want.Usage.CompletionTokens ||
		resp.Usage.TotalTokens != len(ids)+want.Usage.CompletionTokens {
		t.Fatalf("usage %+v, want %d prompt + %d completion", resp.Usage, len(ids), want.Usage.CompletionTokens)
	}
	if !strings.HasPrefix(resp.ID, "chatcmpl-") || resp.Object != "chat.completion" || resp.Model != "tiny-qwen2" {
		t.Fatalf("response header %q %q %q", resp.ID, resp.Object, resp.Model)
	}

	// Streaming gives the same text, then the finish reason and usage.
	req.Stream, req.StreamOptions = true, &api.StreamOptions{IncludeUsage: true}
	st, err := p.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var b strings.Builder
	var finish string
	var u *api.Usage
	for i := 0; ; i++ {
		ch, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (len(ch.Choices) != 1 || ch.Choices[0].Delta.Role != "assistant") {
			t.Fatalf("first chunk %+v", ch)
		}
		if ch.Usage != nil {
			u = ch.Usage
		}
		for _, c := range ch.Choices {
			if c.Delta.Content != nil {
				b.WriteString(*c.Delta.Content)
			}
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	if b.String() != want.Text || finish != string(want.FinishReason) || u == nil || u.CompletionTokens != want.Usage.CompletionTokens {
		t.Fatalf("stream gave %q (%s, usage %+v), want %q (%s)", b.String(), finish, u, want.Text, want.FinishReason)
	}
}

func TestChatLogprobsAndSeed(t *testing.T) {
	p, _ := newTestProvider(t, 2)
	req := chatRequest("Hi")
	req.Temperature, req.Seed, req.Logprobs, req.TopLogprobs = ptr(1.0), ptr(int64(5)), ptr(true), ptr(2)
	req.Extra = api.Extra{"top_k": json.RawMessage("40"), "min_p": json.RawMessage("0.01")}
	a, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if a.Choices[0].Message.Content.String() != b.Choices[0].Message.Content.String() {
		t.Fatalf("seed 5 twice: %q then %q", a.Choices[0].Message.Content.String(), b.Choices[0].Message.Content.String())
	}
	lp := a.Choices[0].Logprobs
	if lp == nil || len(lp.Content) == 0 || len(lp.Content) > a.Usage.CompletionTokens {
		t.Fatalf("logprobs %+v for %d completion tokens", lp, a.Usage.CompletionTokens)
	}
	for _, c := range lp.Content {
		if c.Logprob > 0 || len(c.TopLogprobs) != 2 || c.TopLogprobs[0].Logprob < c.TopLogprobs[1].Logprob {
			t.Fatalf("token logprob %+v", c)
		}
	}
}

func TestChatErrors(t *testing.T) {
	p, _ := newTestProvider(t, 1)
	for name, tc := range map[string]struct {
		edit func(*api.ChatRequest)
		code string
	}{
		"unknown model": {func(r *api.ChatRequest) { r.Model = "gpt-9" }, ""},
		"n":             {func(r *api.ChatRequest) { r.N = ptr(2) }, ""},
		"tools": {func(r *api.ChatRequest) {
			r.Tools = []api.Tool{{Type: "function", Function: api.FunctionDef{Name: "f"}}}
		}, ""},
		"json":             {func(r *api.ChatRequest) { r.ResponseFormat = &api.ResponseFormat{Type: "json_object"} }, ""},
		"top_logprobs":     {func(r *api.ChatRequest) { r.TopLogprobs = ptr(2) }, ""},
		"temperature":      {func(r *api.ChatRequest) { r.Temperature = ptr(-1.0) }, ""},
		"top_k":            {func(r *api.ChatRequest) { r.Extra = api.Extra{"top_k": json.RawMessage(`"many"`)} }, ""},
		"context exceeded": {func(r *api.ChatRequest) { r.Messages[1].Content = api.TextContent(strings.Repeat("x", 200)) }, "context_length_exceeded"},
	} {
		req := chatRequest("hi")
		tc.edit(req)
		_, err := p.Chat(context.Background(), req)
		var ue *provider.UpstreamError
		if !errors.As(err, &ue) || ue.Status != 400 || ue.Retryable() || ue.Code != tc.code {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := p.ChatStream(context.Background(), req); !errors.As(err, &ue) || ue.Status != 400 {
			t.Errorf("%s (stream): %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	if _, err := p.Embeddings(context.Background(), &api.EmbeddingRequest{}); err == nil {
		t.Error("embeddings: no error")
	}
	models, err := p.Models(context.Background())
	if err != nil || len(models) != 1 || models[0].ID != "tiny-qwen2" {
		t.Errorf("models %v, %v", models, err)
	}
}

// TestStreamCloseFreesSlot closes a stream early on a one-slot engine; the
// next request then runs.
func TestStreamCloseFreesSlot(t *testing.T) {
	p, _ := newTestProvider(t, 1)
	req := chatRequest("long")
	req.MaxTokens = nil // until the context is full
	st, err := p.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := p.Chat(context.Background(), chatRequest("next")); err != nil {
		t.Fatal(err)
	}
}

// TestAddRemoveAdapter serves an adapter over the running base model, then
// stops serving it, without a restart.
func TestAddRemoveAdapter(t *testing.T) {
	p, m := newTestProvider(t, 2)
	cfg := m.Engine.Runner().Config()
	rng := rand.New(rand.NewPCG(1, 2))
	a := &lora.Adapter{LoRA: lora.LoRA{Rank: 4, Alpha: 8}, BaseModel: "tiny-qwen2", Modules: map[string]lora.LoRAWeights{}}
	for l := range cfg.NumLayers {
		for _, proj := range a.LoRA.Projections() {
			out, in := lora.ProjectionDims(cfg, proj)
			w := lora.LoRAWeights{A: make([]float32, 4*in), B: make([]float32, out*4), In: in, Out: out}
			for i := range w.A {
				w.A[i] = float32(rng.NormFloat64() * 0.1)
			}
			for i := range w.B {
				w.B[i] = float32(rng.NormFloat64() * 0.1)
			}
			a.Modules[lora.ModuleName(l, proj)] = w
		}
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	chat := func(model string) (string, error) {
		req := chatRequest("Hello there")
		req.Model = model
		resp, err := p.Chat(context.Background(), req)
		if err != nil {
			return "", err
		}
		return resp.Choices[0].Message.Content.String(), nil
	}
	base, err := chat("tiny-qwen2")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AddAdapter("tiny-qwen2", "tuned", dir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ base, name, want string }{
		{"nope", "x", `no engine model "nope"`},
		{"tuned", "x", "is itself an adapter"},
		{"tiny-qwen2", "tuned", "already serves a model of that name"},
		{"tiny-qwen2", "tiny-qwen2", "already serves a model of that name"},
		{"tiny-qwen2", "x", "no adapter_config.json"},
	} {
		d := dir
		if tc.want == "no adapter_config.json" {
			d = t.TempDir()
		}
		if err := p.AddAdapter(tc.base, tc.name, d); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddAdapter(%s, %s): %v, want %q", tc.base, tc.name, err, tc.want)
		}
	}
	models, _ := p.Models(context.Background())
	if len(models) != 2 || models[1].ID != "tuned" {
		t.Fatalf("models %+v", models)
	}
	tuned, err := chat("tuned")
	if err != nil {
		t.Fatal(err)
	}
	if tuned == base {
		t.Fatalf("the adapter answers as the base does (%q)", base)
	}
	if again, err := chat("tiny-qwen2"); err != nil || again != base {
		t.Fatalf("the base answers %q (%v) beside the adapter, %q before", again, err, base)
	}
	if err := p.RemoveAdapter("tuned"); err != nil {
		t.Fatal(err)
	}
	if _, err := chat("tuned"); err == nil || !strings.Contains(err.Error(), "not served") {
		t.Fatalf("chat with a removed adapter: %v", err)
	}
	if err := p.RemoveAdapter("tiny-qwen2"); err == nil {
		t.Fatal("removing the base model as an adapter: no error")
	}
	if _, ok := m.Engine.Runner().Adapter("tuned"); ok {
		t.Fatal("the adapter is still loaded in the engine")
	}
}
