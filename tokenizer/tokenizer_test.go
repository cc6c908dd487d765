package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// tinyByteLevel is a hand-made byte-level BPE tokenizer: every byte is a
// token (GPT-2 mapping) and a few merges build "he", "ll", "hell", "hello"
// and "Ġw" (space + w).
func tinyByteLevel(t *testing.T, extra string) *Tokenizer {
	t.Helper()
	var vocab []string
	for b := 0; b < 256; b++ {
		vocab = append(vocab, string(byteToRune[b]))
	}
	vocab = append(vocab, "he", "ll", "hell", "hello", "Ġw")
	var sb strings.Builder
	sb.WriteString(`{"added_tokens":[{"id":261,"content":"<|end|>","special":true,"normalized":false},{"id":262,"content":"<tool>","special":false,"normalized":false}],
"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},
"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|end|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<|end|>":{"id":"<|end|>","ids":[261],"tokens":["<|end|>"]}}},
"decoder":{"type":"ByteLevel"},"model":{"type":"BPE","merges":["h e","l l","he ll",["hell","o"],"Ġ w"],"vocab":{`)
	for i, v := range vocab {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(quote(v) + ":" + itoa(i))
	}
	sb.WriteString(`}}` + extra + `}`)
	tok, err := New([]byte(sb.String()), []byte(`{"eos_token":"<|end|>","bos_token":{"content":"<|end|>"},"chat_template":[{"name":"default","template":"D"},{"name":"tool_use","template":"T"}]}`), []byte(`{"eos_token_id":[261,262]}`))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func quote(s string) string {
	b, _ := jsonMarshal(s)
	return string(b)
}

func TestTinyByteLevel(t *testing.T) {
	tok := tinyByteLevel(t, "")
	ids := tok.Encode("hello world<|end|><tool>", EncodeOptions{AddSpecial: true})
	got := toks(tok, ids)
	if !slices.Equal(got, []string{"<|end|>", "hello", "Ġw", "o", "r", "l", "d", "<|end|>", "<tool>"}) {
		t.Fatalf("tokens = %q", got)
	}
	if s := tok.Decode(ids, true); s != "hello world<tool>" {
		t.Fatalf("Decode(skip special) = %q", s)
	}
	// SplitSpecial: <|end|> is text, the non-special <tool> still matches.
	got = toks(tok, tok.Encode("<|end|><tool>", EncodeOptions{SplitSpecial: true}))
	if slices.Contains(got, "<|end|>") || !slices.Contains(got, "<tool>") {
		t.Fatalf("SplitSpecial tokens = %q", got)
	}
	if id, ok := tok.EOS(); !ok || id != 261 {
		t.Fatalf("EOS = %d, %v", id, ok)
	}
	if !slices.Equal(tok.StopIDs(), []int{261, 262}) {
		t.Fatalf("StopIDs = %v", tok.StopIDs())
	}
	if tok.ChatTemplate != "D" || tok.ChatTemplates["tool_use"] != "T" {
		t.Fatalf("chat templates = %q %v", tok.ChatTemplate, tok.ChatTemplates)
	}
	if tok.VocabSize() != 263 {
		t.Fatalf("VocabSize = %d", tok.VocabSize())
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"wordpiece", `{"model":{"type":"WordPiece","vocab":{}}}`, `"WordPiece" is not supported`},
		{"unigram", `{"model":{"type":"Unigram","vocab":[]}}`, "Unigram models are not supported"},
		{"truncated", `{"model":{"type":"BPE","vocab":{"a":0}`, "is the file complete"},
		{"no model", `{"normalizer":null}`, `no "model" section`},
		{"bad merge", `{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}}`, "missing from the vocab"},
		{"bad pre", `{"pre_tokenizer":{"type":"BertPreTokenizer"},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`, `"BertPreTokenizer" is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]byte(tc.json), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Fatalf("Load(empty dir) err = %v", err)
	}
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte("{"), 0o644)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "is the file complete") {
		t.Fatalf("Load(corrupt) err = %v", err)
	}
}

func TestLossyUTF8(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abc", "abc"},
		{"a\xe2\x82b", "a\uFFFDb"},             // truncated 3-byte sequence: one U+FFFD
		{"\xff\xfe", "\uFFFD\uFFFD"},           // two invalid bytes
		{"\xf0\x9f\x98", "\uFFFD"},             // truncated emoji
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: each byte
	} {
		if got := lossyUTF8([]byte(tc.in)); got != tc.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSplitBehaviors(t *testing.T) {
	s := "a-b--c"
	ms := [][2]int{{1, 2}, {3, 4}, {4, 5}}
	for _, tc := range []struct {
		b    splitBehavior
		want []string
	}{
		{removed, []string{"a", "b", "c"}},
		{isolated, []string{"a", "-", "b", "-", "-", "c"}},
		{mergedWithPrevious, []string{"a-", "b-", "-", "c"}}, // as Rust: a match after a match stays alone
		{mergedWithNext, []string{"a", "-b", "-", "-c"}},
		{contiguous, []string{"a", "-", "b", "--", "c"}},
	} {
		got := applyBehavior(s, splitPieces(s, ms, false), tc.b, nil)
		if !slices.Equal(got, tc.want) {
			t.Errorf("behavior %d: %q, want %q", tc.b, got, tc.want)
		}
	}
}

func TestRegexRuneOffsets(t *testing.T) {
	// regexp2 reports rune indexes; non-BMP runes must map to the right bytes.
	re, _ := compileRegex(`\p{L}+|\s+(?!\S)|\s+|[^\s\p{L}]+`)
	s := "𝔘𝔫 😀👩‍👧 日本  x"
	var got []string
	for _, m := range findAll(re, s) {
		got = append(got, s[m[0]:m[1]])
	}
	if strings.Join(got, "") != s || !slices.Contains(got, "日本") || !slices.Contains(got, "😀👩‍👧") {
		t.Fatalf("pieces = %q", got)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func TestDecoders(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		toks       []string
		want       string
	}{
		{"metaspace", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always"}`, []string{"▁▁Hi", "▁there", "▁"}, "Hi there "},
		{"metaspace never", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"never"}`, []string{"▁Hi", "▁there"}, " Hi there"},
		{"metaspace legacy", `{"type":"Metaspace","replacement":"▁","add_prefix_space":false}`, []string{"▁Hi"}, " Hi"},
		{"byte fallback", `{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Fuse"}]}`, []string{"a", "<0xE2>", "<0x82>", "<0xAC>", "<0xFF>", "b"}, "a\uFFFD\uFFFD\uFFFD\uFFFDb"}, // Rust: an invalid run gives one U+FFFD per byte
		{"invalid run", `{"type":"ByteFallback"}`, []string{"<0xE2>", "<0x82>", "x"}, "\uFFFD\uFFFDx"},
		{"strip", `{"type":"Strip","content":" ","start":2,"stop":1}`, []string{"   a  "}, " a "},
		{"replace", `{"type":"Replace","pattern":{"String":"▁"},"content":" "}`, []string{"▁a▁b"}, " a b"},
	} {
		d, err := parseDecoder([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := strings.Join(d.decode(tc.toks), ""); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPreTokenizers(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		in         string
		first      bool
		want       []string
	}{
		{"metaspace split", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`, "a b  c", true, []string{"▁a", "▁b", "▁", "▁c"}},
		{"metaspace first", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}`, "a b", false, []string{"a▁b"}},
		{"digits", `{"type":"Digits","individual_digits":false}`, "ab123c4", true, []string{"ab", "123", "c", "4"}},
		{"punctuation", `{"type":"Punctuation"}`, "a,b!?", true, []string{"a", ",", "b", "!", "?"}},
		{"whitespace", `{"type":"Whitespace"}`, "hi, you  there!", true, []string{"hi", ",", "you", "there", "!"}},
		{"split invert", `{"type":"Split","pattern":{"Regex":"\\d+"},"behavior":"Removed","invert":true}`, "a12b3", true, []string{"12", "3"}},
	} {
		p, err := parsePreTokenizer([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := p.preTokenize([]string{tc.in}, tc.first); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestAddBOSFromConfig(t *testing.T) {
	tj := []byte(`{"added_tokens":[{"id":0,"content":"<s>","special":true},{"id":1,"content":"</s>","special":true}],
"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{"<s>":{"id":"<s>","ids":[0],"tokens":["<s>"]}}},
"model":{"type":"BPE","vocab":{"<s>":0,"</s>":1,"a":2},"merges":[]}}`)
	for _, tc := range []struct {
		cfg  string
		want []int
	}{
		{`{"tokenizer_class":"LlamaTokenizer","bos_token":"<s>","eos_token":"</s>","add_bos_token":false,"add_eos_token":true}`, []int{2, 1}},
		{`{"tokenizer_class":"LlamaTokenizerFast","bos_token":"<s>","eos_token":"</s>","add_eos_token":true}`, []int{0, 2, 1}},
		{`{"tokenizer_class":"PreTrainedTokenizerFast","bos_token":"<s>","add_bos_token":false}`, []int{0, 2}},
		{`{"tokenizer_class":"LlamaTokenizer"}`, []int{0, 2}},
	} {
		tok, err := New(tj, []byte(tc.cfg), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("a", EncodeOptions{AddSpecial: true}); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.cfg, got, tc.want)
		}
	}
}

func TestPostProcessors(t *testing.T) {
	vocab := map[string]int{"<s>": 0, "</s>": 1}
	for _, tc := range []struct {
		name, json string
		want       []int
	}{
		{"llama3 sequence", `{"type":"Sequence","processors":[{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},
			{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
			 "special_tokens":{"<|begin_of_text|>":{"id":"<|begin_of_text|>","ids":[128000],"tokens":["<|begin_of_text|>"]}}}]}`, []int{128000, 7, 8}},
		{"roberta", `{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0],"trim_offsets":true,"add_prefix_space":false}`, []int{0, 7, 8, 2}},
		{"bytelevel", `{"type":"ByteLevel"}`, []int{7, 8}},
		{"eos after", `{"type":"TemplateProcessing","single":[{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"</s>","type_id":0}}],"special_tokens":{"</s>":{"id":"</s>","ids":[1],"tokens":["</s>"]}}}`, []int{7, 8, 1}},
	} {
		p, err := parsePostProcessor([]byte(tc.json), vocab)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := []int{7, 8}
		if p != nil {
			got = p.process(got)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tokenizer.json", `{"added_tokens":[{"id":2,"content":"<eos>","special":true},{"id":3,"content":"<eot>","special":true}],"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":[]}}`)
	write("tokenizer_config.json", `{"eos_token":"<eos>","chat_template":"from config"}`)
	write("generation_config.json", `{"eos_token_id":[3,2]}`)
	write("chat_template.jinja", "{{ messages[0].content }}!")
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tok.StopIDs(), []int{2, 3}) || !tok.IsStop(3) || tok.IsStop(0) {
		t.Errorf("StopIDs = %v", tok.StopIDs())
	}
	text, err := tok.ApplyChatTemplate(ChatRequest{Messages: []Message{{Role: "user", Content: "hi"}}})
	if err != nil || text != "hi!" {
		t.Errorf("chat_template.jinja: %q, %v", text, err)
	}
}

func TestAddedTokenFlags(t *testing.T) {
	tj := []byte(`{"added_tokens":[
{"id":10,"content":"<mask>","special":true,"lstrip":true,"rstrip":false},
{"id":11,"content":"cat","special":false,"single_word":true},
{"id":12,"content":"<x>","special":false,"rstrip":true}],
"model":{"type":"BPE","vocab":{"a":0," ":1,"c":2,"t":3,"s":4,"b":5},"merges":[]}}`)
	tok, err := New(tj, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a  <mask>b", []string{"a", "<mask>", "b"}},     // lstrip eats the spaces before
		{"<x>  a", []string{"<x>", "a"}},                 // rstrip eats the spaces after
		{"a cat b", []string{"a", " ", "cat", " ", "b"}}, // a whole word
		{"cats", []string{"c", "a", "t", "s"}},           // not single_word
		{"a cat", []string{"a", " ", "cat"}},
	} {
		if got := toks(tok, tok.Encode(tc.in, EncodeOptions{})); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}
