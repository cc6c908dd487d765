package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizer regexes of GPT-2 (ByteLevel), Llama 3 and Qwen2 cover
// most models Foundry runs. regexp2 is a backtracking engine and dominates
// encoding time, so these three patterns also have hand-written matchers
// that find the same matches (checked against regexp2 in fastsplit_test.go).
const (
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// fastMatcher finds the matches of one of the known patterns.
type fastMatcher struct {
	gpt2   bool // GPT-2 style: " ?" prefixes, case-sensitive contractions
	digits int  // max digits per match (0: unlimited)
}

func fastMatcherFor(pattern string) *fastMatcher {
	switch pattern {
	case llama3Pattern:
		return &fastMatcher{digits: 3}
	case qwen2Pattern:
		return &fastMatcher{digits: 1}
	case gpt2Pattern:
		return &fastMatcher{gpt2: true}
	}
	return nil
}

// isL, isN and isS are \p{L}, \p{N} and \s as regexp2 defines them.
func isL(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
	}
	return unicode.IsLetter(r)
}

func isN(r rune) bool {
	if r < utf8.RuneSelf {
		return '0' <= r && r <= '9'
	}
	return unicode.IsNumber(r)
}

func isS(r rune) bool { return unicode.IsSpace(r) }

func isCRLF(r rune) bool { return r == '\r' || r == '\n' }

// findAll returns the byte ranges of all matches in s.
func (f *fastMatcher) findAll(s string) [][2]int {
	// Decode once; runes[k] starts at byte offs[k].
	runes := make([]rune, 0, len(s))
	offs := make([]int, 0, len(s)+1)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		runes = append(runes, r)
		offs = append(offs, i)
		i += n
	}
	offs = append(offs, len(s))
	out := make([][2]int, 0, len(runes)/3+1)
	for i := 0; i < len(runes); {
		e := f.match(runes, i)
		if e <= i { // no alternative matched: regexp2 moves on
			i++
			continue
		}
		out = append(out, [2]int{offs[i], offs[e]})
		i = e
	}
	return out
}

// contraction matches 's 't 're 've 'm 'll 'd at i.
func (f *fastMatcher) contraction(r []rune, i int) int {
	if r[i] != '\'' || i+1 >= len(r) {
		return -1
	}
	lower := func(c rune) rune {
		if !f.gpt2 && 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	c := lower(r[i+1])
	switch c {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if i+2 < len(r) && lower(r[i+2]) == 'e' {
			return i + 3
		}
	case 'l':
		if i+2 < len(r) && lower(r[i+2]) == 'l' {
			return i + 3
		}
	}
	return -1
}

func run(r []rune, i int, is func(rune) bool) int {
	for i < len(r) && is(r[i]) {
		i++
	}
	return i
}

func isOther(c rune) bool { return !isS(c) && !isL(c) && !isN(c) }

// match returns the end of the match at i (leftmost alternative wins), or
// i when none matches.
func (f *fastMatcher) match(r []rune, i int) int {
	n := len(r)
	if e := f.contraction(r, i); e > 0 {
		return e
	}
	c := r[i]
	if f.gpt2 {
		//  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ (disjoint classes)
		for _, is := range [...]func(rune) bool{isL, isN, isOther} {
			if c == ' ' && i+1 < n && is(r[i+1]) {
				return run(r, i+1, is)
			}
			if is(c) {
				return run(r, i, is)
			}
		}
		return f.spaces(r, i, false)
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isL(c) {
		return run(r, i, isL)
	}
	if !isCRLF(c) && !isN(c) && i+1 < n && isL(r[i+1]) {
		return run(r, i+1, isL)
	}
	// \p{N}{1,digits}
	if isN(c) {
		e := i + 1
		for e < n && isN(r[e]) && (f.digits == 0 || e-i < f.digits) {
			e++
		}
		return e
	}
	//  ?[^\s\p{L}\p{N}]+[\r\n]*
	j := i
	if c == ' ' && i+1 < n && isOther(r[i+1]) {
		j = i + 1
	}
	if isOther(r[j]) {
		e := run(r, j, isOther)
		return run(r, e, isCRLF)
	}
	return f.spaces(r, i, true)
}

// spaces matches the whitespace alternatives at i: (Llama 3 and Qwen only)
// \s*[\r\n]+, then \s+(?!\S), then \s+.
func (f *fastMatcher) spaces(r []rune, i int, crlf bool) int {
	if !isS(r[i]) {
		return i
	}
	j := run(r, i, isS)
	if crlf {
		// \s* backtracks to the last \r or \n of the run; [\r\n]+ then
		// takes it (the run's later characters are not \r or \n).
		for p := j - 1; p >= i; p-- {
			if isCRLF(r[p]) {
				return p + 1
			}
		}
	}
	if j == len(r) || j-1 > i {
		if j == len(r) {
			return j
		}
		return j - 1 // \s+(?!\S) leaves the last space for the next word
	}
	return j // \s+
}
