package tokenizer

import (
	"strings"
	"unicode"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// gonja v2.9.1's str.lstrip(), str.rstrip() and str.split() fail when
// called without arguments (their default is a rune, not a string), and
// Python's no-argument forms strip or split on any whitespace. These
// replace them; every other str method is gonja's.
func pythonStrMethods() *exec.MethodSet[string] {
	base := builtins.Methods.Str
	m := map[string]exec.Method[string]{}
	for _, name := range []string{"capitalize", "capwords", "casefold", "center", "count", "encode", "endswith", "expandtabs",
		"find", "format", "format_map", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "islower", "isnumeric",
		"isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "partition", "removeprefix", "removesuffix",
		"replace", "rfind", "rjust", "rpartition", "rsplit", "splitlines", "startswith", "swapcase", "title", "upper", "zfill"} {
		if f, ok := base.Get(name); ok {
			m[name] = f
		}
	}
	strip := func(left, right bool) exec.Method[string] {
		return func(self string, _ *exec.Value, args *exec.VarArgs) (any, error) {
			cut := func(r rune) bool { return unicode.IsSpace(r) }
			if len(args.Args) > 0 && !args.Args[0].IsNil() {
				chars := args.Args[0].String()
				cut = func(r rune) bool { return strings.ContainsRune(chars, r) }
			}
			if left {
				self = strings.TrimLeftFunc(self, cut)
			}
			if right {
				self = strings.TrimRightFunc(self, cut)
			}
			return self, nil
		}
	}
	m["strip"] = strip(true, true)
	m["lstrip"] = strip(true, false)
	m["rstrip"] = strip(false, true)
	m["split"] = func(self string, _ *exec.Value, args *exec.VarArgs) (any, error) {
		maxsplit := -1
		if v, ok := args.KwArgs["maxsplit"]; ok {
			maxsplit = v.Integer()
		} else if len(args.Args) > 1 {
			maxsplit = args.Args[1].Integer()
		}
		var parts []string
		if v, ok := args.KwArgs["sep"]; (ok && !v.IsNil()) || (!ok && len(args.Args) > 0 && !args.Args[0].IsNil()) {
			sep := v
			if !ok {
				sep = args.Args[0]
			}
			parts = strings.SplitN(self, sep.String(), maxsplit+1)
			if maxsplit < 0 {
				parts = strings.Split(self, sep.String())
			}
		} else {
			parts = strings.Fields(self)
			if maxsplit >= 0 && len(parts) > maxsplit {
				// Python keeps the rest, leading whitespace stripped.
				rest := strings.TrimLeftFunc(self, unicode.IsSpace)
				parts = parts[:0]
				for i := 0; i < maxsplit && rest != ""; i++ {
					j := strings.IndexFunc(rest, unicode.IsSpace)
					if j < 0 {
						break
					}
					parts = append(parts, rest[:j])
					rest = strings.TrimLeftFunc(rest[j:], unicode.IsSpace)
				}
				if rest != "" {
					parts = append(parts, rest)
				}
			}
		}
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	}
	return exec.NewMethodSet(m)
}
