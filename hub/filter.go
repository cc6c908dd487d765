package hub

import (
	"regexp"
	"strings"
)

// DefaultInclude is what a pull fetches when no --include is given: what
// Foundry's engine loads (config, safetensors weights and their index,
// tokenizer files, chat templates) and nothing else.
var DefaultInclude = []string{
	"*.json",          // config.json, generation_config.json, tokenizer.json, *.safetensors.index.json, ...
	"*.safetensors",   // weights (sharded or not)
	"tokenizer.model", // SentencePiece tokenizers
	"*.tiktoken",      // tiktoken-style vocabularies
	"*.txt",           // merges.txt, vocab.txt
	"*.jinja",         // chat templates shipped as files
}

// DefaultExclude removes, from the default set, copies of the model in
// formats Foundry does not load that would otherwise match "*.json" or
// "*.safetensors": ONNX/OpenVINO/GGUF/Core ML exports in subfolders and
// Meta's "original/" checkpoints.
var DefaultExclude = []string{"onnx/", "openvino/", "original/", "gguf/", "coreml/", "tflite/"}

// pytorchFallback is added to the default set when a repo has no
// .safetensors at all (*.bin, *.pt, *.gguf, *.onnx are otherwise skipped), so
// such a repo is still pulled whole enough to be converted; Foundry's engine
// itself reads safetensors only.
var pytorchFallback = []string{"pytorch_model*.bin", "model*.bin", "*.pt", "*.pth"}

// fileFilter decides which repo files a pull fetches.
type fileFilter struct {
	include, exclude []*regexp.Regexp
}

// newFileFilter builds the filter for one repo's file list: explicit include
// patterns are used as given; otherwise the defaults apply, widened to
// PyTorch weights when the repo has no safetensors.
func newFileFilter(include, exclude []string, files []string) fileFilter {
	var f fileFilter
	if len(include) == 0 {
		include = DefaultInclude
		if !hasSuffix(files, ".safetensors") {
			include = append(append([]string{}, include...), pytorchFallback...)
		}
		exclude = append(append([]string{}, DefaultExclude...), exclude...)
	}
	for _, p := range include {
		f.include = append(f.include, globRegexp(p))
	}
	for _, p := range exclude {
		f.exclude = append(f.exclude, globRegexp(p))
	}
	return f
}

func (f fileFilter) match(name string) bool {
	ok := false
	for _, re := range f.include {
		if re.MatchString(name) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, re := range f.exclude {
		if re.MatchString(name) {
			return false
		}
	}
	return true
}

func hasSuffix(names []string, suffix string) bool {
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}

// MatchGlob reports whether the repo file name matches pattern as
// Options.Include and Exclude patterns match ("*" also matches "/").
func MatchGlob(pattern, name string) bool { return globRegexp(pattern).MatchString(name) }

// IsGlob reports whether s has glob characters ("*", "?", "[").
func IsGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

// globRegexp translates an fnmatch pattern the way Python's fnmatch does,
// which is what huggingface_hub's allow_patterns/ignore_patterns use: "*"
// matches any run of characters including "/", "?" one character, "[...]" a
// class ("[!...]" negated). A pattern ending in "/" matches everything below.
func globRegexp(pat string) *regexp.Regexp {
	if strings.HasSuffix(pat, "/") {
		pat += "*"
	}
	var b strings.Builder
	b.WriteString("(?s)^")
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(pat) && pat[j] == '!' {
				j++
			}
			if j < len(pat) && pat[j] == ']' {
				j++
			}
			for j < len(pat) && pat[j] != ']' {
				j++
			}
			if j >= len(pat) {
				b.WriteString(`\[`)
				continue
			}
			class := pat[i+1 : j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			class = strings.ReplaceAll(class, `\`, `\\`)
			b.WriteString("[" + class + "]")
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil { // an odd class; treat the whole pattern literally
		return regexp.MustCompile("^" + regexp.QuoteMeta(pat) + "$")
	}
	return re
}
