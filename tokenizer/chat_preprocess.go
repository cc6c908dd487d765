package tokenizer

import (
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// gonja v2.9.1 parses a conditional expression (A if C else B) only at the
// top of {{ ... }} and {% set %}, not inside parentheses, brackets or call
// arguments, which real templates use: Gemma 3 writes
// '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "").
// preprocessTemplate rewrites each nested conditional into a call of the
// global __foundry_ifelse(C, A, B). Unlike Jinja it evaluates both branches;
// chat templates' branches are plain values, so the output is the same.
func preprocessTemplate(src string) string {
	var b strings.Builder
	for {
		i := strings.Index(src, "{")
		if i < 0 || i+1 >= len(src) {
			b.WriteString(src)
			return b.String()
		}
		var closer string
		switch src[i+1] {
		case '{':
			closer = "}}"
		case '%':
			closer = "%}"
		case '#':
			j := strings.Index(src[i:], "#}")
			if j < 0 {
				b.WriteString(src)
				return b.String()
			}
			b.WriteString(src[:i+j+2])
			src = src[i+j+2:]
			continue
		default:
			b.WriteString(src[:i+1])
			src = src[i+1:]
			continue
		}
		end := tagEnd(src, i+2, closer)
		if end < 0 {
			b.WriteString(src)
			return b.String()
		}
		b.WriteString(src[:i+2])
		inner := src[i+2 : end]
		if closer == "%}" && strings.HasPrefix(strings.TrimLeft(inner, "-+ \t\r\n"), "raw") {
			// Leave {% raw %} ... {% endraw %} alone.
			k := strings.Index(src[end:], "endraw")
			if k >= 0 {
				k2 := strings.Index(src[end+k:], "%}")
				if k2 >= 0 {
					b.WriteString(src[i+2 : end+k+k2+2])
					src = src[end+k+k2+2:]
					continue
				}
			}
		}
		if closer == "%}" {
			switch strings.Trim(inner, "-+ \t\r\n") {
			case "generation", "endgeneration":
				// HF's {% generation %} marks assistant text for
				// return_assistant_tokens_mask; Render finds spans itself.
				if strings.Contains(inner, "endgeneration") {
					b.WriteString(strings.Replace(inner, "endgeneration", "endif", 1))
				} else {
					b.WriteString(strings.Replace(inner, "generation", "if true", 1))
				}
				src = src[end:]
				continue
			}
		}
		b.WriteString(rewriteNested(inner))
		src = src[end:]
	}
}

// tagEnd finds closer after pos, skipping string literals.
func tagEnd(s string, pos int, closer string) int {
	for i := pos; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"':
			i = skipString(s, i)
		default:
			if strings.HasPrefix(s[i:], closer) {
				return i
			}
		}
	}
	return -1
}

// skipString returns the index of the closing quote of the literal at i.
func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if s[j] == q {
			return j
		}
	}
	return len(s) - 1
}

var closing = map[byte]byte{'(': ')', '[': ']', '{': '}'}

// rewriteNested rewrites conditionals inside every bracket group of s,
// leaving s's own top level (where gonja handles them) alone.
func rewriteNested(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := skipString(s, i)
			b.WriteString(s[i : j+1])
			i = j
		case closing[c] != 0:
			j := matchBracket(s, i)
			if j < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			b.WriteByte(c)
			b.WriteString(rewriteGroup(s[i+1 : j]))
			b.WriteByte(s[j])
			i = j
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func matchBracket(s string, i int) int {
	var stack []byte
	for j := i; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '\'' || c == '"':
			j = skipString(s, j)
		case closing[c] != 0:
			stack = append(stack, closing[c])
		case c == ')' || c == ']' || c == '}':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return -1
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return j
			}
		}
	}
	return -1
}

// rewriteGroup rewrites the comma-separated elements inside one bracket
// group: nested groups first, then "A if C else B" at this level.
func rewriteGroup(s string) string {
	s = rewriteNested(s)
	parts := splitTop(s, func(s string, i int) int {
		if s[i] == ',' {
			return 1
		}
		return 0
	})
	for k, p := range parts {
		parts[k] = rewriteConditional(p)
	}
	return strings.Join(parts, ",")
}

// splitTop splits s at top-level separators found by sep (which returns
// the separator's length at i, or 0).
func splitTop(s string, sep func(string, int) int) []string {
	var out []string
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			i = skipString(s, i)
		case closing[c] != 0:
			if j := matchBracket(s, i); j >= 0 {
				i = j
			}
		default:
			if n := sep(s, i); n > 0 {
				out = append(out, s[last:i])
				last = i + n
				i += n - 1
			}
		}
	}
	return append(out, s[last:])
}

// keywordAt reports whether the word w starts at s[i] as a whole word.
func keywordAt(s string, i int, w string) bool {
	if !strings.HasPrefix(s[i:], w) {
		return false
	}
	isIdent := func(c byte) bool {
		return c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	return (i == 0 || !isIdent(s[i-1])) && (i+len(w) == len(s) || !isIdent(s[i+len(w)]))
}

func rewriteConditional(p string) string {
	ifParts := splitTop(p, func(s string, i int) int {
		if keywordAt(s, i, "if") {
			return 2
		}
		return 0
	})
	if len(ifParts) < 2 || strings.TrimSpace(ifParts[0]) == "" {
		return p
	}
	a := ifParts[0]
	rest := strings.Join(ifParts[1:], "if")
	elseParts := splitTop(rest, func(s string, i int) int {
		if keywordAt(s, i, "else") {
			return 4
		}
		return 0
	})
	cond, alt := elseParts[0], "none"
	if len(elseParts) > 1 {
		alt = rewriteConditional(strings.Join(elseParts[1:], "else"))
	}
	return " __foundry_ifelse(" + strings.TrimSpace(cond) + ", " + strings.TrimSpace(a) + ", " + strings.TrimSpace(alt) + ") "
}

func ifElse(_ *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	if len(params.Args) != 3 {
		return exec.AsValue(nil)
	}
	if params.Args[0].IsTrue() {
		return params.Args[1]
	}
	return params.Args[2]
}
