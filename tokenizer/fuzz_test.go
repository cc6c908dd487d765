package tokenizer

import (
	"testing"
	"unicode/utf8"
)

// FuzzEncode checks that encoding never panics and that byte-level models
// round-trip: Decode(Encode(s)) == NFC(s) for Qwen (its normalizer) and s
// for Llama 3. SentencePiece models must at least not panic and decode to
// valid UTF-8. Seeds live in testdata/fuzz/FuzzEncode; run longer with
//
//	FOUNDRY_NPM_DIR=$PWD/.cache/npm go test -fuzz FuzzEncode ./tokenizer/
func FuzzEncode(f *testing.F) {
	for _, s := range readCorpus(f) {
		f.Add(s)
	}
	toks := map[string]*Tokenizer{}
	for _, m := range refModels {
		toks[m] = loadModel(f, m)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range refModels {
			tok := toks[m]
			for _, opts := range []EncodeOptions{{}, {AddSpecial: true, SplitSpecial: true}} {
				ids := tok.Encode(s, opts)
				back := tok.Decode(ids, false)
				if !utf8.ValidString(back) {
					t.Fatalf("%s: Decode gave invalid UTF-8 %q", m, back)
				}
				if !byteLevelModels[m] || !utf8.ValidString(s) || !opts.SplitSpecial {
					continue
				}
				want := s
				if tok.norm != nil {
					want = tok.norm.normalize(s)
				}
				if back != want {
					t.Fatalf("%s: Decode(Encode(%q)) = %q", m, s, back)
				}
			}
		}
	})
}
