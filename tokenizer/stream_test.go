package tokenizer

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// streamAll feeds ids one at a time and checks every chunk is valid UTF-8
// with no replacement character unless want has one.
func streamAll(t *testing.T, tok *Tokenizer, ids []int, skip bool, want string) string {
	t.Helper()
	d := NewStreamDecoder(tok, skip)
	var sb strings.Builder
	for _, id := range ids {
		s := d.Add(id)
		if !utf8.ValidString(s) || (strings.ContainsRune(s, utf8.RuneError) && !strings.ContainsRune(want, utf8.RuneError)) {
			t.Fatalf("chunk %q after id %d is broken UTF-8", s, id)
		}
		sb.WriteString(s)
	}
	sb.WriteString(d.Flush())
	return sb.String()
}

func TestStreamDecodeCorpus(t *testing.T) {
	corpus := readCorpus(t)
	for _, model := range refModels {
		t.Run(model, func(t *testing.T) {
			tok := loadModel(t, model)
			for i, text := range corpus {
				ids := tok.Encode(text, EncodeOptions{AddSpecial: true})
				for _, skip := range []bool{false, true} {
					want := tok.Decode(ids, skip)
					if got := streamAll(t, tok, ids, skip, want); got != want {
						t.Errorf("line %d skip=%v: stream = %q, Decode = %q", i+1, skip, got, want)
					}
				}
			}
		})
	}
}

// TestStreamDecodeRandom streams random text built from characters whose
// encodings split across tokens (emoji with ZWJ and skin tones, CJK
// extension B, Devanagari, byte-fallback characters, odd spaces).
func TestStreamDecodeRandom(t *testing.T) {
	pool := []string{"😀", "👩‍👩‍👧", "🧑🏽‍🚀", "👋🏿", "🀄", "日本", "語", "𠜎", "𝔘", "हिंदी", "क़", " ", "  ", "\n", "\t", "\u00a0", "a", "hello", " world", "é", "e\u0301", "1234", "<0x41>", "▁", "\ufffd"}
	for _, model := range refModels {
		t.Run(model, func(t *testing.T) {
			tok := loadModel(t, model)
			r := rand.New(rand.NewPCG(1, uint64(len(model))))
			for n := 0; n < 300; n++ {
				var sb strings.Builder
				for j := 1 + r.IntN(12); j > 0; j-- {
					sb.WriteString(pool[r.IntN(len(pool))])
				}
				ids := tok.Encode(sb.String(), EncodeOptions{AddSpecial: r.IntN(2) == 0})
				want := tok.Decode(ids, false)
				if got := streamAll(t, tok, ids, false, want); got != want {
					t.Fatalf("%q: stream = %q, Decode = %q", sb.String(), got, want)
				}
			}
		})
	}
}

// TestStreamDecodeGarbage feeds random byte tokens: invalid UTF-8 cannot
// match Decode exactly (a later byte changes how earlier ones decode), but
// every chunk must still be valid UTF-8 and nothing may panic.
func TestStreamDecodeGarbage(t *testing.T) {
	for _, model := range refModels {
		t.Run(model, func(t *testing.T) {
			tok := loadModel(t, model)
			pool := tok.Encode("😀👩‍👩‍👧🧑🏽‍🚀 日本語 𝔘𝔫 hello", EncodeOptions{})
			for i := 0; i < 256; i++ {
				if id, ok := tok.TokenID(fmtByte(i)); ok {
					pool = append(pool, id)
				}
			}
			r := rand.New(rand.NewPCG(2, uint64(len(model))))
			for n := 0; n < 300; n++ {
				d := NewStreamDecoder(tok, false)
				for j := 1 + r.IntN(20); j > 0; j-- {
					if s := d.Add(pool[r.IntN(len(pool))]); !utf8.ValidString(s) {
						t.Fatalf("invalid UTF-8 chunk %q", s)
					}
				}
				if s := d.Flush(); !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 flush %q", s)
				}
			}
		})
	}
}

func fmtByte(b int) string {
	return "<0x" + strings.ToUpper(string("0123456789abcdef"[b>>4])+string("0123456789abcdef"[b&15])) + ">"
}

func TestStreamDecodeHoldsSplitCharacter(t *testing.T) {
	tok := loadModel(t, "llama2")
	// Llama 2 has no token for 😀: byte fallback gives four <0xNN> tokens.
	ids := tok.Encode("𠜎", EncodeOptions{})
	if len(ids) < 4 {
		t.Fatalf("want byte-fallback tokens for 𠜎, got %q", toks(tok, ids))
	}
	d := NewStreamDecoder(tok, false)
	var got []string
	for _, id := range ids {
		got = append(got, d.Add(id))
	}
	for _, s := range got[:len(got)-1] {
		if s != "" && strings.Contains(s, "\uFFFD") {
			t.Fatalf("emitted a partial character: %q", got)
		}
	}
	if strings.Join(got, "")+d.Flush() != "𠜎" {
		t.Fatalf("stream = %q, want the emoji once complete", got)
	}
}
