// Package tokenizer is Foundry's implementation of Hugging Face
// `tokenizer.json`: byte-level BPE (Llama 3, Qwen2/2.5/3) and
// SentencePiece-style BPE with byte fallback (Llama 2, Mistral, TinyLlama,
// Gemma 3), with their normalizers, pre-tokenizers, added tokens,
// post-processors and decoders, plus a streaming decoder and the model's
// Jinja2 chat template.
//
//	tok, err := tokenizer.Load(modelDir)                  // tokenizer.json (+ tokenizer_config.json, generation_config.json)
//	ids := tok.Encode(text, tokenizer.EncodeOptions{AddSpecial: true})
//	text := tok.Decode(ids, true)                         // skip special tokens
//	text, err := tok.ApplyChatTemplate(tokenizer.ChatRequest{Messages: msgs, AddGenerationPrompt: true})
//	prompt := tok.Encode(text, tokenizer.EncodeOptions{})   // the template writes BOS itself
//	ids, lossMask, err := tok.EncodeChat(req)             // training: assistant tokens marked
//	sd := tokenizer.NewStreamDecoder(tok, true)
//	for id := range generated { fmt.Print(sd.Add(id)) }; fmt.Print(sd.Flush())
//
// Encodings and decodings are checked token-for-token against the JS
// reference (@lenml/tokenizers) on real tokenizer files, chat templates
// against @huggingface/jinja (see reference_test.go and chat_test.go).
// Where the JS reference departs from the Rust tokenizers, Foundry follows
// Rust; testdata/variants.json lists those cases.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Tokenizer turns text into token ids and back. It is safe for concurrent use.
type Tokenizer struct {
	model     *bpe
	added     *addedVocab
	norm      normalizer
	pre       preTokenizer
	post      postProcessor
	dec       decoder
	idToToken []string
	special   map[int]bool // ids of special added tokens

	bos, eos int // -1 when absent
	stop     []int

	// ChatTemplate is the default Jinja2 chat template from
	// tokenizer_config.json ("" when the model has none); ChatTemplates holds
	// every named template when the config lists several.
	ChatTemplate  string
	ChatTemplates map[string]string
	// BOSToken and EOSToken are the token strings the chat template sees as
	// bos_token and eos_token.
	BOSToken, EOSToken string
	// CleanUpTokenizationSpaces mirrors tokenizer_config.json; Decode does
	// not apply it (it would break decode(encode(s)) == s), see CleanUp.
	CleanUpTokenizationSpaces bool

	chatMu    sync.Mutex
	chatCache map[string]*ChatTemplate
}

// EncodeOptions control Encode. The zero value encodes like Hugging Face's
// tokenizer(text, add_special_tokens=False).
type EncodeOptions struct {
	// AddSpecial runs the post-processor, adding BOS (Llama 2, Gemma) or
	// whatever the tokenizer.json template says; Qwen adds nothing.
	AddSpecial bool
	// SplitSpecial treats special tokens written in the text as plain text
	// (HF's split_special_tokens=True), so user text cannot inject them.
	// Non-special added tokens are still matched, as in HF.
	SplitSpecial bool
}

// Load reads tokenizer.json from dir, plus tokenizer_config.json and
// generation_config.json when present.
func Load(dir string) (*Tokenizer, error) {
	return LoadFile(filepath.Join(dir, "tokenizer.json"))
}

// LoadFile reads a tokenizer.json file; tokenizer_config.json,
// generation_config.json and chat_template.jinja are read from the same
// directory when present.
func LoadFile(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w (a model directory needs tokenizer.json; only HF fast-tokenizer files are supported, not tokenizer.model)", err)
	}
	dir := filepath.Dir(path)
	var cfg, gen []byte
	if b, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json")); err == nil {
		cfg = b
	}
	if b, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err == nil {
		gen = b
	}
	t, err := New(data, cfg, gen)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	// Newer transformers save the template beside the config; it wins.
	if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		t.ChatTemplate = string(b)
	}
	return t, nil
}

// New builds a tokenizer from the contents of tokenizer.json and, optionally
// (nil to skip), tokenizer_config.json and generation_config.json.
func New(tokenizerJSON, tokenizerConfig, generationConfig []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(tokenizerJSON, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w (is the file complete? re-download it)", err)
	}
	if len(f.Model) == 0 {
		return nil, errors.New("tokenizer.json has no \"model\" section (is it a tokenizer.json file?)")
	}
	m, err := parseModel(f.Model)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{model: m, special: map[int]bool{}, bos: -1, eos: -1}
	if t.norm, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if t.pre, err = parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if t.post, err = parsePostProcessor(f.PostProcessor, m.vocab); err != nil {
		return nil, err
	}
	if t.dec, err = parseDecoder(f.Decoder); err != nil {
		return nil, err
	}

	n := len(m.idToToken)
	for _, a := range f.AddedTokens {
		if a.ID+1 > n {
			n = a.ID + 1
		}
	}
	t.idToToken = make([]string, n)
	copy(t.idToToken, m.idToToken)
	for _, a := range f.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("tokenizer.json: added token %q has negative id %d", a.Content, a.ID)
		}
		t.idToToken[a.ID] = a.Content
		if a.Special {
			t.special[a.ID] = true
		}
	}
	t.added = newAddedVocab(f.AddedTokens)
	// The ByteLevel decoder passes added tokens through as written.
	decs := []decoder{t.dec}
	if seq, ok := t.dec.(decoderSeq); ok {
		decs = seq
	}
	for _, d := range decs {
		if bl, ok := d.(*byteLevelDecoder); ok {
			bl.added = map[string]bool{}
			for _, a := range f.AddedTokens {
				bl.added[a.Content] = true
			}
		}
	}

	if err := t.readConfig(tokenizerConfig); err != nil {
		return nil, err
	}
	if err := t.readGenerationConfig(generationConfig); err != nil {
		return nil, err
	}
	return t, nil
}

type fileJSON struct {
	AddedTokens   []addedToken    `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         json.RawMessage `json:"model"`
}

type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// tokenString reads a token written either as a string or as
// {"content": "..."} (the AddedToken form in tokenizer_config.json).
func tokenString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Content
	}
	return ""
}

func (t *Tokenizer) readConfig(data []byte) error {
	if data == nil {
		return nil
	}
	var c struct {
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
		ChatTemplate json.RawMessage `json:"chat_template"`
		CleanUp      bool            `json:"clean_up_tokenization_spaces"`
		Class        string          `json:"tokenizer_class"`
		AddBOS       *bool           `json:"add_bos_token"`
		AddEOS       *bool           `json:"add_eos_token"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("parse tokenizer_config.json: %w", err)
	}
	t.CleanUpTokenizationSpaces = c.CleanUp
	t.BOSToken, t.EOSToken = tokenString(c.BOS), tokenString(c.EOS)
	if id, ok := t.TokenID(t.BOSToken); ok && t.BOSToken != "" {
		t.bos = id
	}
	if id, ok := t.TokenID(t.EOSToken); ok && t.EOSToken != "" {
		t.eos = id
		t.addStop(id)
	}
	// transformers' LlamaTokenizerFast and GemmaTokenizerFast rebuild the
	// post-processor from add_bos_token/add_eos_token; other classes use
	// tokenizer.json's as written.
	switch strings.TrimSuffix(c.Class, "Fast") {
	case "LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer":
		if c.AddBOS != nil || c.AddEOS != nil {
			var p templatePost
			if c.AddBOS == nil || *c.AddBOS { // Llama's default is true
				if t.bos < 0 {
					return fmt.Errorf("tokenizer_config.json: add_bos_token is set but bos_token %q is not a token", t.BOSToken)
				}
				p.before = []int{t.bos}
			}
			if c.AddEOS != nil && *c.AddEOS {
				if t.eos < 0 {
					return fmt.Errorf("tokenizer_config.json: add_eos_token is set but eos_token %q is not a token", t.EOSToken)
				}
				p.after = []int{t.eos}
			}
			t.post = p
		}
	}
	if len(c.ChatTemplate) > 0 && string(c.ChatTemplate) != "null" {
		var s string
		if json.Unmarshal(c.ChatTemplate, &s) == nil {
			t.ChatTemplate = s
		} else {
			var list []struct {
				Name     string `json:"name"`
				Template string `json:"template"`
			}
			if err := json.Unmarshal(c.ChatTemplate, &list); err != nil {
				return fmt.Errorf("tokenizer_config.json: chat_template is neither a string nor a list of {name, template}: %w", err)
			}
			t.ChatTemplates = map[string]string{}
			for _, e := range list {
				t.ChatTemplates[e.Name] = e.Template
			}
			t.ChatTemplate = t.ChatTemplates["default"]
		}
	}
	return nil
}

func (t *Tokenizer) readGenerationConfig(data []byte) error {
	if data == nil {
		return nil
	}
	var g struct {
		EOS json.RawMessage `json:"eos_token_id"`
		BOS json.RawMessage `json:"bos_token_id"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		return fmt.Errorf("parse generation_config.json: %w", err)
	}
	var one int
	var list []int
	if json.Unmarshal(g.EOS, &one) == nil {
		list = []int{one}
	} else {
		_ = json.Unmarshal(g.EOS, &list)
	}
	for _, id := range list {
		t.addStop(id)
	}
	if t.eos < 0 && len(list) > 0 {
		t.eos = list[0]
	}
	if t.bos < 0 && json.Unmarshal(g.BOS, &one) == nil {
		t.bos = one
	}
	return nil
}

func (t *Tokenizer) addStop(id int) {
	for _, s := range t.stop {
		if s == id {
			return
		}
	}
	t.stop = append(t.stop, id)
	sort.Ints(t.stop)
}

// VocabSize is one more than the largest token id (model vocabulary and
// added tokens together).
func (t *Tokenizer) VocabSize() int { return len(t.idToToken) }

// Token returns the token string of id ("" when out of range).
func (t *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(t.idToToken) {
		return ""
	}
	return t.idToToken[id]
}

// TokenID returns the id of a token string (added tokens included).
func (t *Tokenizer) TokenID(s string) (int, bool) {
	if id, ok := t.added.ids[s]; ok {
		return id, true
	}
	id, ok := t.model.vocab[s]
	return id, ok
}

// IsSpecial reports whether id is a special added token (skipped by
// Decode with skipSpecial).
func (t *Tokenizer) IsSpecial(id int) bool { return t.special[id] }

// BOS returns the beginning-of-sequence id, if the model has one.
func (t *Tokenizer) BOS() (int, bool) { return t.bos, t.bos >= 0 }

// EOS returns the end-of-sequence id from tokenizer_config.json (or the first
// of generation_config.json's eos_token_id), if any.
func (t *Tokenizer) EOS() (int, bool) { return t.eos, t.eos >= 0 }

// StopIDs returns every id that ends generation: eos_token from
// tokenizer_config.json and eos_token_id (int or list) from
// generation_config.json, sorted.
func (t *Tokenizer) StopIDs() []int { return append([]int(nil), t.stop...) }

// IsStop reports whether id ends generation.
func (t *Tokenizer) IsStop(id int) bool {
	for _, s := range t.stop {
		if s == id {
			return true
		}
	}
	return false
}

// Encode turns text into token ids.
func (t *Tokenizer) Encode(text string, opts EncodeOptions) []int {
	var ids []int
	first := true
	for _, seg := range t.added.split(text, !opts.SplitSpecial) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			first = false
			continue
		}
		ids = t.encodeSegment(ids, seg.text, first)
		first = false
	}
	if opts.AddSpecial && t.post != nil {
		ids = t.post.process(ids)
	}
	return ids
}

// encodeSegment encodes text that holds no non-normalized added token.
func (t *Tokenizer) encodeSegment(ids []int, text string, first bool) []int {
	if text == "" {
		return ids
	}
	if t.norm != nil {
		text = t.norm.normalize(text)
	}
	if text == "" {
		return ids
	}
	// Added tokens with normalized=true match the normalized text.
	for _, seg := range t.added.splitNormalized(text) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			first = false
			continue
		}
		words := []string{seg.text}
		if t.pre != nil {
			words = t.pre.preTokenize(words, first)
		}
		first = false
		for _, w := range words {
			ids = t.model.tokenize(ids, w)
		}
	}
	return ids
}

// Decode turns ids back into text. With skipSpecial, special added tokens
// (BOS, EOS, <|im_end|>, ...) are left out. Unknown ids are skipped.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id < 0 || id >= len(t.idToToken) {
			continue
		}
		if skipSpecial && t.special[id] {
			continue
		}
		toks = append(toks, t.idToToken[id])
	}
	if t.dec == nil {
		return strings.Join(toks, " ")
	}
	return strings.Join(t.dec.decode(toks), "")
}

// CleanUp applies transformers' clean_up_tokenization (" ." → "." and
// friends), for callers that want Python's decode output exactly when
// CleanUpTokenizationSpaces is set.
func CleanUp(s string) string {
	r := strings.NewReplacer(" .", ".", " ?", "?", " !", "!", " ,", ",", " ' ", "'",
		" n't", "n't", " 'm", "'m", " 's", "'s", " 've", "'ve", " 're", "'re")
	return r.Replace(s)
}
