package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// gpt2Pattern is the ByteLevel pre-tokenizer's regex (use_regex=true).
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// compileRegex compiles a tokenizer.json regex (Rust onig/fancy-regex
// syntax) with regexp2, which has the look-ahead Go's regexp lacks. Matches
// are reported in runes (code points, not UTF-16 units): findAll converts
// them to byte offsets.
func compileRegex(expr string) (*regexp2.Regexp, error) {
	return regexp2.Compile(expr, regexp2.None)
}

// findAll returns the byte ranges of all non-overlapping matches of re in s.
func findAll(re *regexp2.Regexp, s string) [][2]int {
	if s == "" {
		return nil
	}
	runes := []rune(s)
	// offs[i] is the byte offset of rune i; invalid bytes decode as one
	// U+FFFD rune of width 1 both here and in []rune(s).
	offs := make([]int, 0, len(runes)+1)
	for i := 0; i < len(s); {
		offs = append(offs, i)
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	offs = append(offs, len(s))
	var out [][2]int
	m, err := re.FindRunesMatch(runes)
	for err == nil && m != nil {
		out = append(out, [2]int{offs[m.Index], offs[m.Index+m.Length]})
		m, err = re.FindNextMatch(m)
	}
	return out
}

type preTokenizer interface {
	// preTokenize splits each word further. first is true when words come
	// from the start of the input (not after an added token).
	preTokenize(words []string, first bool) []string
}

type preTokenizerSeq []preTokenizer

func (q preTokenizerSeq) preTokenize(words []string, first bool) []string {
	for _, p := range q {
		words = p.preTokenize(words, first)
	}
	return words
}

type splitBehavior int

const (
	removed splitBehavior = iota
	isolated
	mergedWithPrevious
	mergedWithNext
	contiguous
)

func parseBehavior(s string) (splitBehavior, error) {
	switch s {
	case "Removed":
		return removed, nil
	case "Isolated":
		return isolated, nil
	case "MergedWithPrevious":
		return mergedWithPrevious, nil
	case "MergedWithNext":
		return mergedWithNext, nil
	case "Contiguous":
		return contiguous, nil
	}
	return 0, fmt.Errorf("tokenizer.json: split behavior %q is not supported (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)", s)
}

type piece struct {
	start, end int
	match      bool
}

// splitPieces cuts s into match/non-match pieces given sorted match ranges,
// as Rust's Pattern::find_matches does.
func splitPieces(s string, matches [][2]int, invert bool) []piece {
	if s == "" {
		return []piece{{0, 0, false}}
	}
	var ps []piece
	prev := 0
	for _, m := range matches {
		if prev != m[0] {
			ps = append(ps, piece{prev, m[0], invert})
		}
		ps = append(ps, piece{m[0], m[1], !invert})
		prev = m[1]
	}
	if prev != len(s) {
		ps = append(ps, piece{prev, len(s), invert})
	}
	return ps
}

// applyBehavior mirrors Rust's NormalizedString::split.
func applyBehavior(s string, ps []piece, b splitBehavior, out []string) []string {
	var res []piece
	switch b {
	case isolated:
		res = ps
	case removed:
		for _, p := range ps {
			if !p.match {
				res = append(res, p)
			}
		}
	case mergedWithPrevious:
		prevMatch := false
		for _, p := range ps {
			if p.match && !prevMatch && len(res) > 0 {
				res[len(res)-1].end = p.end
			} else {
				res = append(res, p)
			}
			prevMatch = p.match
		}
	case mergedWithNext:
		prevMatch := false
		for i := len(ps) - 1; i >= 0; i-- {
			p := ps[i]
			if p.match && !prevMatch && len(res) > 0 {
				res[len(res)-1].start = p.start
			} else {
				res = append(res, p)
			}
			prevMatch = p.match
		}
		for i, j := 0, len(res)-1; i < j; i, j = i+1, j-1 {
			res[i], res[j] = res[j], res[i]
		}
	case contiguous:
		prevMatch := false
		for i, p := range ps {
			if i > 0 && p.match == prevMatch && len(res) > 0 {
				res[len(res)-1].end = p.end
			} else {
				res = append(res, p)
			}
			prevMatch = p.match
		}
	}
	for _, p := range res {
		if p.end > p.start {
			out = append(out, s[p.start:p.end])
		}
	}
	return out
}

// splitPre is the Split pre-tokenizer.
type splitPre struct {
	literal  string
	re       *regexp2.Regexp
	fast     *fastMatcher // same matches as re, faster
	behavior splitBehavior
	invert   bool
}

func (p *splitPre) matches(s string) [][2]int {
	if p.fast != nil {
		return p.fast.findAll(s)
	}
	if p.re != nil {
		return findAll(p.re, s)
	}
	if p.literal == "" {
		return nil
	}
	var out [][2]int
	for i := 0; ; {
		j := strings.Index(s[i:], p.literal)
		if j < 0 {
			return out
		}
		out = append(out, [2]int{i + j, i + j + len(p.literal)})
		i += j + len(p.literal)
	}
}

func (p *splitPre) preTokenize(words []string, _ bool) []string {
	var out []string
	for _, w := range words {
		out = applyBehavior(w, splitPieces(w, p.matches(w), p.invert), p.behavior, out)
	}
	return out
}

// funcSplit splits where a rune predicate holds (Digits, Punctuation,
// WhitespaceSplit).
type funcSplit struct {
	is       func(rune) bool
	behavior splitBehavior
}

func (p funcSplit) preTokenize(words []string, _ bool) []string {
	var out []string
	for _, w := range words {
		var ms [][2]int
		for i, r := range w {
			if p.is(r) {
				ms = append(ms, [2]int{i, i + utf8.RuneLen(r)})
			}
		}
		out = applyBehavior(w, splitPieces(w, ms, false), p.behavior, out)
	}
	return out
}

// byteLevelPre maps bytes to GPT-2's printable characters, optionally
// splitting with the GPT-2 regex first.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

var gpt2Fast = fastMatcherFor(gpt2Pattern)

func (p *byteLevelPre) preTokenize(words []string, _ bool) []string {
	var out []string
	for _, w := range words {
		if p.addPrefixSpace && !strings.HasPrefix(w, " ") {
			w = " " + w
		}
		if p.useRegex {
			for _, m := range gpt2Fast.findAll(w) {
				out = append(out, w[m[0]:m[1]])
			}
		} else {
			out = append(out, w)
		}
	}
	for i, w := range out {
		out[i] = bytesToUnicode(w)
	}
	return out
}

// metaspacePre replaces spaces with ▁ and optionally prepends one and
// splits before each ▁.
type metaspacePre struct {
	replacement string
	prepend     string // "always", "first" or "never"
	split       bool
}

func (p *metaspacePre) preTokenize(words []string, first bool) []string {
	var out []string
	for i, w := range words {
		w = strings.ReplaceAll(w, " ", p.replacement)
		if (p.prepend == "always" || (p.prepend == "first" && first && i == 0)) && !strings.HasPrefix(w, p.replacement) {
			w = p.replacement + w
		}
		if !p.split {
			out = append(out, w)
			continue
		}
		var ms [][2]int
		for j := 0; ; {
			k := strings.Index(w[j:], p.replacement)
			if k < 0 {
				break
			}
			ms = append(ms, [2]int{j + k, j + k + len(p.replacement)})
			j += k + len(p.replacement)
		}
		out = applyBehavior(w, splitPieces(w, ms, false), mergedWithNext, out)
	}
	return out
}

func isWhitespace(r rune) bool { return unicode.Is(unicode.White_Space, r) }

// isPunctuation is Rust tokenizers' is_punc: ASCII punctuation or Unicode P*.
func isPunctuation(r rune) bool {
	return (r < 128 && unicode.IsPunct(r)) || (r < 128 && strings.ContainsRune("$+<=>^`|~", r)) || unicode.In(r, unicode.P)
}

func parsePreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var p struct {
		Type             string            `json:"type"`
		Pretokenizers    []json.RawMessage `json:"pretokenizers"`
		AddPrefixSpace   *bool             `json:"add_prefix_space"`
		UseRegex         *bool             `json:"use_regex"`
		Pattern          pattern           `json:"pattern"`
		Behavior         string            `json:"behavior"`
		Invert           bool              `json:"invert"`
		Replacement      string            `json:"replacement"`
		PrependScheme    string            `json:"prepend_scheme"`
		Split            *bool             `json:"split"`
		IndividualDigits bool              `json:"individual_digits"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("tokenizer.json: parse pre_tokenizer: %w", err)
	}
	switch p.Type {
	case "Sequence":
		var seq preTokenizerSeq
		for _, r := range p.Pretokenizers {
			c, err := parsePreTokenizer(r)
			if err != nil {
				return nil, err
			}
			if c != nil {
				seq = append(seq, c)
			}
		}
		return seq, nil
	case "ByteLevel":
		return &byteLevelPre{addPrefixSpace: p.AddPrefixSpace == nil || *p.AddPrefixSpace, useRegex: p.UseRegex == nil || *p.UseRegex}, nil
	case "Split":
		lit, re, err := p.Pattern.compile("Split pre-tokenizer")
		if err != nil {
			return nil, err
		}
		b, err := parseBehavior(p.Behavior)
		if err != nil {
			return nil, err
		}
		sp := &splitPre{literal: lit, re: re, behavior: b, invert: p.Invert}
		if re != nil {
			sp.fast = fastMatcherFor(*p.Pattern.Regex)
		}
		return sp, nil
	case "Metaspace":
		m := &metaspacePre{replacement: p.Replacement, prepend: p.PrependScheme, split: p.Split == nil || *p.Split}
		if m.replacement == "" {
			m.replacement = "▁"
		}
		if m.prepend == "" {
			m.prepend = "always"
			if p.AddPrefixSpace != nil && !*p.AddPrefixSpace {
				m.prepend = "never"
			}
		}
		return m, nil
	case "Digits":
		b := contiguous
		if p.IndividualDigits {
			b = isolated
		}
		return funcSplit{is: unicode.IsNumber, behavior: b}, nil
	case "Punctuation":
		b := isolated
		if p.Behavior != "" {
			var err error
			if b, err = parseBehavior(p.Behavior); err != nil {
				return nil, err
			}
		}
		return funcSplit{is: isPunctuation, behavior: b}, nil
	case "WhitespaceSplit":
		return funcSplit{is: isWhitespace, behavior: removed}, nil
	case "Whitespace":
		// \w+|[^\w\s]+ with Rust's Unicode \w (regexp2's lacks Mc marks).
		const w = `\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}\u200c\u200d`
		re := regexp2.MustCompile(`[`+w+`]+|[^`+w+`\s]+`, regexp2.None)
		return &splitPre{re: re, behavior: removed, invert: true}, nil
	}
	return nil, fmt.Errorf("tokenizer.json: pre_tokenizer %q is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit)", p.Type)
}

// GPT-2's byte ↔ printable-rune table.
var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()

// byteToUTF8 is byteToRune encoded, to append without encoding per byte.
var byteToUTF8 = func() (t [256][]byte) {
	for b, r := range byteToRune {
		t[b] = utf8.AppendRune(nil, r)
	}
	return t
}()

func bytesToUnicode(s string) string {
	buf := make([]byte, 0, len(s)*2)
	for i := 0; i < len(s); i++ {
		buf = append(buf, byteToUTF8[s[i]]...)
	}
	return string(buf)
}
