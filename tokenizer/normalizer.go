package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dlclark/regexp2"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
)

type normalizer interface {
	normalize(s string) string
}

type normalizerSeq []normalizer

func (q normalizerSeq) normalize(s string) string {
	for _, n := range q {
		s = n.normalize(s)
	}
	return s
}

type unicodeNorm struct{ form norm.Form }

func (u unicodeNorm) normalize(s string) string { return u.form.String(s) }

type prependNorm struct{ prefix string }

func (p prependNorm) normalize(s string) string {
	if s == "" {
		return s
	}
	return p.prefix + s
}

// lowercaseNorm uses full case mapping (İ → i̇, final sigma) as Rust's
// str::to_lowercase does; strings.ToLower maps rune by rune.
type lowercaseNorm struct{}

func (lowercaseNorm) normalize(s string) string { return cases.Lower(language.Und).String(s) }

type stripNorm struct{ left, right bool }

func (p stripNorm) normalize(s string) string {
	if p.left {
		s = strings.TrimLeftFunc(s, isWhitespace)
	}
	if p.right {
		s = strings.TrimRightFunc(s, isWhitespace)
	}
	return s
}

// replaceNorm replaces a literal string or every match of a regex.
type replaceNorm struct {
	literal string
	re      *regexp2.Regexp
	content string
}

func (p replaceNorm) normalize(s string) string {
	if p.re == nil {
		if p.literal == "" {
			return s
		}
		return strings.ReplaceAll(s, p.literal, p.content)
	}
	var b strings.Builder
	last := 0
	for _, m := range findAll(p.re, s) {
		b.WriteString(s[last:m[0]])
		b.WriteString(p.content)
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// pattern is tokenizer.json's {"String": ...} or {"Regex": ...}.
type pattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

func (p pattern) compile(where string) (string, *regexp2.Regexp, error) {
	switch {
	case p.Regex != nil:
		re, err := compileRegex(*p.Regex)
		if err != nil {
			return "", nil, fmt.Errorf("tokenizer.json: %s: regex %q: %w", where, *p.Regex, err)
		}
		return "", re, nil
	case p.String != nil:
		return *p.String, nil, nil
	}
	return "", nil, fmt.Errorf("tokenizer.json: %s: pattern has neither String nor Regex", where)
}

func parseNormalizer(raw json.RawMessage) (normalizer, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var n struct {
		Type        string            `json:"type"`
		Normalizers []json.RawMessage `json:"normalizers"`
		Prepend     string            `json:"prepend"`
		Pattern     pattern           `json:"pattern"`
		Content     string            `json:"content"`
		Left        bool              `json:"left"`
		Right       bool              `json:"right"`
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, fmt.Errorf("tokenizer.json: parse normalizer: %w", err)
	}
	switch n.Type {
	case "Sequence":
		var seq normalizerSeq
		for _, r := range n.Normalizers {
			c, err := parseNormalizer(r)
			if err != nil {
				return nil, err
			}
			if c != nil {
				seq = append(seq, c)
			}
		}
		return seq, nil
	case "NFC":
		return unicodeNorm{norm.NFC}, nil
	case "NFD":
		return unicodeNorm{norm.NFD}, nil
	case "NFKC":
		return unicodeNorm{norm.NFKC}, nil
	case "NFKD":
		return unicodeNorm{norm.NFKD}, nil
	case "Prepend":
		return prependNorm{n.Prepend}, nil
	case "Lowercase":
		return lowercaseNorm{}, nil
	case "Strip":
		return stripNorm{n.Left, n.Right}, nil
	case "Replace":
		lit, re, err := n.Pattern.compile("Replace normalizer")
		if err != nil {
			return nil, err
		}
		return replaceNorm{literal: lit, re: re, content: n.Content}, nil
	}
	return nil, fmt.Errorf("tokenizer.json: normalizer %q is not supported (supported: Sequence, NFC, NFD, NFKC, NFKD, Prepend, Replace, Lowercase, Strip)", n.Type)
}
