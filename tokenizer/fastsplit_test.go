package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dlclark/regexp2"
)

// TestFastMatcherEqualsRegexp2 checks the hand-written matchers against
// regexp2 on the corpus and on random strings from characters of every
// class the patterns distinguish.
func TestFastMatcherEqualsRegexp2(t *testing.T) {
	inputs := readCorpus(t)
	pool := []string{"a", "Z", "é", "ß", "日", "ا", "क", "ि", "्", "1", "9", "١", "½", "Ⅻ", "²", "'", "s", "S", "t", "re", "RE", "ve", "m", "ll", "LL", "d", "D",
		" ", "  ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u0085", "\u2028", "\u3000", "\ufeff", "\u200b", ".", ",", "!", "😀", "\u200d", "🏽", "\x00", "-", "_", "$", "\u0301"}
	r := rand.New(rand.NewPCG(7, 7))
	for n := 0; n < 5000; n++ {
		var sb strings.Builder
		for k := r.IntN(16); k >= 0; k-- {
			sb.WriteString(pool[r.IntN(len(pool))])
		}
		inputs = append(inputs, sb.String())
	}
	for _, pat := range []string{llama3Pattern, qwen2Pattern, gpt2Pattern} {
		re, err := compileRegex(pat)
		if err != nil {
			t.Fatal(err)
		}
		fast := fastMatcherFor(pat)
		for _, s := range inputs {
			want := findAll(re, s)
			got := fast.findAll(s)
			if !slices.Equal(got, want) {
				t.Fatalf("pattern %.20q on %q:\n got %v\nwant %v", pat, s, got, want)
			}
		}
	}
}

func TestFastMatcherUsed(t *testing.T) {
	for _, model := range []string{"qwen3", "llama3"} {
		tok := loadModel(t, model)
		seq, _ := tok.pre.(preTokenizerSeq)
		if len(seq) == 0 {
			t.Fatalf("%s: pre-tokenizer is %T", model, tok.pre)
		}
		if sp, ok := seq[0].(*splitPre); !ok || sp.fast == nil {
			t.Errorf("%s: Split pre-tokenizer does not use the fast matcher (pattern changed?)", model)
		}
	}
}

// FuzzFastMatcher compares the hand-written matchers with regexp2 on
// arbitrary input; it needs no npm packages.
func FuzzFastMatcher(f *testing.F) {
	for _, s := range []string{"Hello world", "it's  \t\n\r\n x", "123456 ½ ١٢", "a\u0085b\ufeff c\u00a0 d", "'S'LL'Re 've", "😀👩‍👧 日本"} {
		f.Add(s)
	}
	type pair struct {
		re   *regexp2.Regexp
		fast *fastMatcher
	}
	var ps []pair
	for _, pat := range []string{llama3Pattern, qwen2Pattern, gpt2Pattern} {
		re, err := compileRegex(pat)
		if err != nil {
			f.Fatal(err)
		}
		ps = append(ps, pair{re, fastMatcherFor(pat)})
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range ps {
			if got, want := p.fast.findAll(s), findAll(p.re, s); !slices.Equal(got, want) {
				t.Fatalf("%q: fast %v, regexp2 %v", s, got, want)
			}
		}
	})
}
