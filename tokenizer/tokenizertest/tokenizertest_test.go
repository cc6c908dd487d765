package tokenizertest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/foundryhq/foundry/tokenizer"
	"github.com/foundryhq/foundry/tokenizer/tokenizertest"
)

func TestByteLevelLoadsAndRoundTrips(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tokenizertest.ByteLevel(map[int]string{256: "<|im_start|>", 257: "<|im_end|>"}), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := "héllo <|im_end|> 🙂"
	ids := tok.Encode(s, tokenizer.EncodeOptions{})
	if got := tok.Decode(ids, false); got != s {
		t.Fatalf("round trip %q → %v → %q", s, ids, got)
	}
	if id, ok := tok.TokenID("<|im_end|>"); !ok || id != 257 || tok.VocabSize() != 258 {
		t.Fatalf("special token id %d %v, vocab %d", id, ok, tok.VocabSize())
	}
}
