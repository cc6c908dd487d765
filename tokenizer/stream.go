package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// StreamDecoder turns generated ids into text one id at a time. It never
// emits a broken UTF-8 sequence: bytes of a character split across tokens
// (byte-level BPE, <0xNN> byte fallback) are held back until complete, and
// the concatenation of everything Add and Flush return equals
// Decode(all ids).
//
// It decodes a sliding window of ids (as text-generation-inference does):
// the text of the window's already-emitted prefix is subtracted from the
// text of the whole window, so decoder rules that look at the first token
// (SentencePiece's leading-space strip) apply the same way to both.
type StreamDecoder struct {
	tok         *Tokenizer
	skipSpecial bool
	ids         []int
	prefix      int // start of the window
	read        int // ids before read have been emitted
}

// NewStreamDecoder returns a streaming decoder; with skipSpecial, special
// tokens produce no text (as Decode(ids, true)).
func NewStreamDecoder(tok *Tokenizer, skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{tok: tok, skipSpecial: skipSpecial}
}

// maxHeld bounds how many ids may wait for a character to complete; past
// it the replacement character is emitted, as Decode would.
const maxHeld = 8

// Add appends id and returns the text that is now final ("" while a
// character is incomplete).
func (d *StreamDecoder) Add(id int) string {
	d.ids = append(d.ids, id)
	prev := d.tok.Decode(d.ids[d.prefix:d.read], d.skipSpecial)
	cur := d.tok.Decode(d.ids[d.prefix:], d.skipSpecial)
	if len(cur) <= len(prev) || (incomplete(cur) && len(d.ids)-d.read < maxHeld) {
		return ""
	}
	out := cur[commonPrefix(prev, cur):]
	// Keep only the window: ids before it are never decoded again.
	d.ids = append(d.ids[:0], d.ids[d.read:]...)
	d.prefix, d.read = 0, len(d.ids)
	return out
}

// Flush returns whatever text is still held back (a trailing incomplete
// character decodes to U+FFFD, as in Decode) and resets the decoder.
func (d *StreamDecoder) Flush() string {
	prev := d.tok.Decode(d.ids[d.prefix:d.read], d.skipSpecial)
	cur := d.tok.Decode(d.ids[d.prefix:], d.skipSpecial)
	d.ids, d.prefix, d.read = d.ids[:0], 0, 0
	if len(cur) <= len(prev) {
		return ""
	}
	return cur[commonPrefix(prev, cur):]
}

// commonPrefix is the length of the longest common prefix of a and b that
// ends on a character boundary. It is len(a) whenever the window decodes
// locally; invalid byte runs can decode differently once more bytes come.
func commonPrefix(a, b string) int {
	if strings.HasPrefix(b, a) {
		return len(a)
	}
	n := 0
	for i, r := range a {
		if i >= len(b) || !strings.HasPrefix(b[i:], string(r)) {
			break
		}
		n = i + utf8.RuneLen(r)
	}
	return n
}

// incomplete reports whether s ends with the replacement character that
// stands for a character whose remaining bytes may still come.
func incomplete(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return r == utf8.RuneError
}
