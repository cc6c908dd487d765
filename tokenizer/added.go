package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// addedVocab matches added tokens (special and not) in text before
// pre-tokenization, leftmost-longest, as HF's AddedVocabulary does.
type addedVocab struct {
	ids  map[string]int
	raw  *trie // normalized=false tokens, matched on the input text
	norm *trie // normalized=true tokens, matched on normalized text
}

type trie struct {
	next  map[byte]*trie
	tok   *addedToken // non-nil when a token ends here
	first [256]bool   // at the root: bytes some token starts with
}

func (t *trie) insert(a *addedToken) {
	t.first[a.Content[0]] = true
	n := t
	for i := 0; i < len(a.Content); i++ {
		if n.next == nil {
			n.next = map[byte]*trie{}
		}
		c, ok := n.next[a.Content[i]]
		if !ok {
			c = &trie{}
			n.next[a.Content[i]] = c
		}
		n = c
	}
	n.tok = a
}

type segment struct {
	text string
	id   int // -1 for plain text
}

func newAddedVocab(tokens []addedToken) *addedVocab {
	v := &addedVocab{ids: map[string]int{}, raw: &trie{}, norm: &trie{}}
	for i := range tokens {
		a := &tokens[i]
		v.ids[a.Content] = a.ID
		if a.Content == "" {
			continue
		}
		// As Rust's AddedVocabulary: normalized tokens match the
		// normalized text, the others the raw input.
		if a.Normalized {
			v.norm.insert(a)
		} else {
			v.raw.insert(a)
		}
	}
	return v
}

func (v *addedVocab) split(s string, parseSpecial bool) []segment {
	return v.raw.split(s, parseSpecial)
}

func (v *addedVocab) splitNormalized(s string) []segment {
	return v.norm.split(s, true)
}

// longest returns the longest token starting at s[i:], or nil.
func (t *trie) longest(s string, i int, parseSpecial bool) *addedToken {
	var best *addedToken
	n := t
	for j := i; j < len(s) && n.next != nil; j++ {
		n = n.next[s[j]]
		if n == nil {
			break
		}
		if n.tok != nil && (parseSpecial || !n.tok.Special) {
			if n.tok.SingleWord && !singleWordOK(s, i, j+1) {
				continue
			}
			best = n.tok
		}
	}
	return best
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

func singleWordOK(s string, start, end int) bool {
	if start > 0 {
		r, _ := utf8.DecodeLastRuneInString(s[:start])
		if isWordRune(r) {
			return false
		}
	}
	if end < len(s) {
		r, _ := utf8.DecodeRuneInString(s[end:])
		if isWordRune(r) {
			return false
		}
	}
	return true
}

func (t *trie) split(s string, parseSpecial bool) []segment {
	if t.next == nil {
		return []segment{{s, -1}}
	}
	var out []segment
	last := 0
	for i := 0; i < len(s); {
		if !t.first[s[i]] {
			i++
			continue
		}
		a := t.longest(s, i, parseSpecial)
		if a == nil {
			i++
			continue
		}
		start, end := i, i+len(a.Content)
		if a.LStrip {
			for start > last {
				r, n := utf8.DecodeLastRuneInString(s[:start])
				if !isWhitespace(r) {
					break
				}
				start -= n
			}
		}
		if a.RStrip {
			for end < len(s) {
				r, n := utf8.DecodeRuneInString(s[end:])
				if !isWhitespace(r) {
					break
				}
				end += n
			}
		}
		if start > last {
			out = append(out, segment{s[last:start], -1})
		}
		out = append(out, segment{a.Content, a.ID})
		last, i = end, end
	}
	if last < len(s) {
		out = append(out, segment{s[last:], -1})
	}
	return out
}

// snapToTokenEnd moves pos to the end of an added token that straddles it.
func (v *addedVocab) snapToTokenEnd(text string, pos int) int {
	for k := max(0, pos-64); k < pos; k++ {
		if a := v.raw.longest(text, k, true); a != nil && k+len(a.Content) > pos {
			return k + len(a.Content)
		}
	}
	return pos
}
