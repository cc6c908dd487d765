package quickstart

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// Special tokens of the student's tokenizer and its chat template.
const (
	tokSystem    = "<|system|>"
	tokUser      = "<|user|>"
	tokAssistant = "<|assistant|>"
	tokEnd       = "<|end|>"
)

// chatTemplate is the student's Jinja2 chat template: a header token per
// turn, the content, and an end token (the model's EOS) after each turn.
const chatTemplate = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}" +
	"{% if add_generation_prompt %}<|assistant|>{% endif %}"

// bytesToUnicode is GPT-2's byte ↔ printable-character table, which
// byte-level BPE vocabularies are written in.
func bytesToUnicode() [256]rune {
	var printable []int
	for b := '!'; b <= '~'; b++ {
		printable = append(printable, int(b))
	}
	for b := 0xA1; b <= 0xAC; b++ {
		printable = append(printable, b)
	}
	for b := 0xAE; b <= 0xFF; b++ {
		printable = append(printable, b)
	}
	var out [256]rune
	seen := map[int]bool{}
	for _, b := range printable {
		out[b] = rune(b)
		seen[b] = true
	}
	n := 0
	for b := range 256 {
		if !seen[b] {
			out[b] = rune(256 + n)
			n++
		}
	}
	return out
}

// preSplit approximates GPT-2's pre-tokenizer (without its look-ahead,
// which only decides where runs of spaces split): the words BPE is trained on.
var preSplit = regexp.MustCompile(`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+`)

// TokenizerFiles are a generated tokenizer: tokenizer.json and
// tokenizer_config.json (chat template and EOS), and the id of the end token.
type TokenizerFiles struct {
	TokenizerJSON []byte
	ConfigJSON    []byte
	VocabSize     int
	EndID         int
}

// TrainTokenizer learns a byte-level BPE vocabulary of about vocabSize
// tokens (256 bytes, merges, 4 special tokens) from texts, the way GPT-2's
// tokenizer was made, and writes it in Hugging Face's tokenizer.json format.
func TrainTokenizer(texts []string, vocabSize int) (*TokenizerFiles, error) {
	if vocabSize < 300 {
		return nil, fmt.Errorf("tokenizer: vocabulary of %d is too small (at least 300)", vocabSize)
	}
	b2u := bytesToUnicode()
	vocab := map[string]int{}
	var syms []string // id → symbol
	for b := range 256 {
		s := string(b2u[b])
		vocab[s] = b
		syms = append(syms, s)
	}
	// Word counts, each word a sequence of symbol ids.
	counts := map[string]int{}
	for _, t := range texts {
		for _, w := range preSplit.FindAllString(t, -1) {
			counts[w]++
		}
	}
	type word struct {
		ids   []int
		count int
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	words := make([]word, 0, len(keys))
	for _, k := range keys {
		ids := make([]int, len(k))
		for i := 0; i < len(k); i++ {
			ids[i] = int(k[i])
		}
		words = append(words, word{ids, counts[k]})
	}
	var merges []string
	nMerges := vocabSize - 256 - 4
	for len(merges) < nMerges {
		pairs := map[[2]int]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.ids); i++ {
				pairs[[2]int{w.ids[i], w.ids[i+1]}] += w.count
			}
		}
		best, bestN := [2]int{}, 1 // a pair seen once is not worth a token
		for p, n := range pairs {
			if n > bestN || (n == bestN && bestN > 1 && (p[0] < best[0] || (p[0] == best[0] && p[1] < best[1]))) {
				best, bestN = p, n
			}
		}
		if bestN <= 1 {
			break
		}
		id := len(syms)
		s := syms[best[0]] + syms[best[1]]
		syms = append(syms, s)
		vocab[s] = id
		merges = append(merges, syms[best[0]]+" "+syms[best[1]])
		for wi := range words {
			ids := words[wi].ids
			out := ids[:0]
			for i := 0; i < len(ids); i++ {
				if i+1 < len(ids) && ids[i] == best[0] && ids[i+1] == best[1] {
					out = append(out, id)
					i++
					continue
				}
				out = append(out, ids[i])
			}
			words[wi].ids = out
		}
	}
	var added []map[string]any
	endID := 0
	for _, s := range []string{tokSystem, tokUser, tokAssistant, tokEnd} {
		id := len(syms)
		syms = append(syms, s)
		if s == tokEnd {
			endID = id
		}
		added = append(added, map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	tj := map[string]any{
		"version":        "1.0",
		"truncation":     nil,
		"padding":        nil,
		"added_tokens":   added,
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": nil,
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model":          map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil, "end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": merges},
	}
	tb, err := json.Marshal(tj)
	if err != nil {
		return nil, err
	}
	cb, err := json.MarshalIndent(map[string]any{
		"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": chatTemplate,
		"eos_token": tokEnd, "pad_token": tokEnd, "model_max_length": 512, "clean_up_tokenization_spaces": false,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	return &TokenizerFiles{TokenizerJSON: tb, ConfigJSON: cb, VocabSize: len(syms), EndID: endID}, nil
}

// Write puts tokenizer.json and tokenizer_config.json into dir.
func (t *TokenizerFiles) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), t.TokenizerJSON, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), t.ConfigJSON, 0o644)
}
