package tokenizer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder turns token strings back into text pieces (joined by Decode).
type decoder interface {
	decode(tokens []string) []string
}

type decoderSeq []decoder

func (q decoderSeq) decode(toks []string) []string {
	for _, d := range q {
		toks = d.decode(toks)
	}
	return toks
}

// byteLevelDecoder maps GPT-2 runes back to bytes; added tokens pass
// through as written.
type byteLevelDecoder struct{ added map[string]bool }

func (d *byteLevelDecoder) decode(toks []string) []string {
	var out []string
	var buf []byte
	flush := func() {
		if len(buf) > 0 {
			out = append(out, lossyUTF8(buf))
			buf = buf[:0]
		}
	}
	for _, t := range toks {
		if d.added[t] {
			flush()
			out = append(out, t)
			continue
		}
		for _, r := range t {
			if b, ok := runeToByte[r]; ok {
				buf = append(buf, b)
			} else {
				buf = utf8.AppendRune(buf, r)
			}
		}
	}
	flush()
	return out
}

// lossyUTF8 is Rust's String::from_utf8_lossy: each maximal invalid
// subsequence becomes one U+FFFD (as Python's errors="replace" and
// JavaScript's TextDecoder do).
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			sb.Write(b[:n])
			b = b[n:]
			continue
		}
		sb.WriteRune(utf8.RuneError)
		b = b[invalidPrefixLen(b):]
	}
	return sb.String()
}

// invalidPrefixLen is the length of the maximal prefix of b that could
// start a valid sequence (at least 1), per the Unicode "maximal subpart"
// rule.
func invalidPrefixLen(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return i
}

// byteFallbackDecoder turns runs of <0xNN> tokens into text.
type byteFallbackDecoder struct{}

func byteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(t[3:5], 16, 8)
	return byte(v), err == nil
}

func (byteFallbackDecoder) decode(toks []string) []string {
	var out []string
	var buf []byte
	flush := func() {
		if len(buf) == 0 {
			return
		}
		if utf8.Valid(buf) {
			out = append(out, string(buf))
		} else {
			// Rust emits one U+FFFD per byte when the run is not valid UTF-8.
			for range buf {
				out = append(out, "\uFFFD")
			}
		}
		buf = buf[:0]
	}
	for _, t := range toks {
		if b, ok := byteToken(t); ok {
			buf = append(buf, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

type fuseDecoder struct{}

func (fuseDecoder) decode(toks []string) []string { return []string{strings.Join(toks, "")} }

type replaceDecoder struct{ from, to string }

func (d replaceDecoder) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = strings.ReplaceAll(t, d.from, d.to)
	}
	return out
}

// stripDecoder removes up to start leading and stop trailing copies of
// content from each token.
type stripDecoder struct {
	content     string
	start, stop int
}

func (d stripDecoder) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		for n := 0; n < d.start && strings.HasPrefix(t, d.content); n++ {
			t = t[len(d.content):]
		}
		for n := 0; n < d.stop && strings.HasSuffix(t, d.content); n++ {
			t = t[:len(t)-len(d.content)]
		}
		out[i] = t
	}
	return out
}

// metaspaceDecoder turns ▁ back into spaces. As in Rust, every ▁ of the
// first token is dropped unless prepend_scheme is "never".
type metaspaceDecoder struct {
	replacement string
	prepend     bool
}

func (d metaspaceDecoder) decode(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		if i == 0 && d.prepend {
			out[i] = strings.ReplaceAll(t, d.replacement, "")
		} else {
			out[i] = strings.ReplaceAll(t, d.replacement, " ")
		}
	}
	return out
}

func parseDecoder(raw json.RawMessage) (decoder, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var d struct {
		Type           string            `json:"type"`
		Decoders       []json.RawMessage `json:"decoders"`
		Pattern        pattern           `json:"pattern"`
		Content        string            `json:"content"`
		Start          int               `json:"start"`
		Stop           int               `json:"stop"`
		Replacement    string            `json:"replacement"`
		PrependScheme  string            `json:"prepend_scheme"`
		AddPrefixSpace *bool             `json:"add_prefix_space"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("tokenizer.json: parse decoder: %w", err)
	}
	switch d.Type {
	case "Sequence":
		var seq decoderSeq
		for _, r := range d.Decoders {
			c, err := parseDecoder(r)
			if err != nil {
				return nil, err
			}
			if c != nil {
				seq = append(seq, c)
			}
		}
		return seq, nil
	case "ByteLevel":
		return &byteLevelDecoder{}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		return stripDecoder{d.Content, d.Start, d.Stop}, nil
	case "Replace":
		if d.Pattern.String == nil {
			return nil, fmt.Errorf("tokenizer.json: Replace decoder with a Regex pattern is not supported (only String)")
		}
		return replaceDecoder{*d.Pattern.String, d.Content}, nil
	case "Metaspace":
		m := metaspaceDecoder{replacement: d.Replacement, prepend: d.PrependScheme != "never"}
		if m.replacement == "" {
			m.replacement = "▁"
		}
		if d.PrependScheme == "" && d.AddPrefixSpace != nil {
			m.prepend = *d.AddPrefixSpace
		}
		return m, nil
	}
	return nil, fmt.Errorf("tokenizer.json: decoder %q is not supported (supported: Sequence, ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace)", d.Type)
}

// postProcessor adds special tokens around an encoding.
type postProcessor interface {
	process(ids []int) []int
}

type templatePost struct{ before, after []int }

func (p templatePost) process(ids []int) []int {
	out := make([]int, 0, len(p.before)+len(ids)+len(p.after))
	out = append(out, p.before...)
	out = append(out, ids...)
	return append(out, p.after...)
}

func parsePostProcessor(raw json.RawMessage, vocab map[string]int) (postProcessor, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var p struct {
		Type       string            `json:"type"`
		Processors []json.RawMessage `json:"processors"`
		Single     []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID string `json:"id"`
			} `json:"Sequence"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int `json:"ids"`
		} `json:"special_tokens"`
		CLS []json.RawMessage `json:"cls"`
		SEP []json.RawMessage `json:"sep"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("tokenizer.json: parse post_processor: %w", err)
	}
	switch p.Type {
	case "ByteLevel":
		return nil, nil // only adjusts offsets
	case "Sequence":
		var out templatePost
		for _, r := range p.Processors {
			c, err := parsePostProcessor(r, vocab)
			if err != nil {
				return nil, err
			}
			if t, ok := c.(templatePost); ok {
				out.before = append(out.before, t.before...)
				out.after = append(out.after, t.after...)
			}
		}
		return out, nil
	case "TemplateProcessing":
		var out templatePost
		seen := false
		for _, item := range p.Single {
			switch {
			case item.Sequence != nil:
				seen = true
			case item.SpecialToken != nil:
				st, ok := p.SpecialTokens[item.SpecialToken.ID]
				if !ok {
					return nil, fmt.Errorf("tokenizer.json: TemplateProcessing uses special token %q missing from special_tokens", item.SpecialToken.ID)
				}
				if seen {
					out.after = append(out.after, st.IDs...)
				} else {
					out.before = append(out.before, st.IDs...)
				}
			}
		}
		return out, nil
	case "RobertaProcessing", "BertProcessing":
		// cls and sep are [token, id].
		id := func(r []json.RawMessage) ([]int, error) {
			if len(r) != 2 {
				return nil, fmt.Errorf("tokenizer.json: %s: cls/sep must be [token, id]", p.Type)
			}
			var n int
			if err := json.Unmarshal(r[1], &n); err != nil {
				return nil, fmt.Errorf("tokenizer.json: %s: %w", p.Type, err)
			}
			return []int{n}, nil
		}
		cls, err := id(p.CLS)
		if err != nil {
			return nil, err
		}
		sep, err := id(p.SEP)
		if err != nil {
			return nil, err
		}
		return templatePost{before: cls, after: sep}, nil
	}
	return nil, fmt.Errorf("tokenizer.json: post_processor %q is not supported (supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)", p.Type)
}
