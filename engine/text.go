package engine

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Detokenizer turns token ids back into text. The tokenizer package's
// tokenizer satisfies it (or adapts to it with DecodeFunc); the engine only
// needs whole-sequence decoding and makes it incremental itself.
type Detokenizer interface {
	// Decode returns the text of ids, special tokens skipped.
	Decode(ids []int32) (string, error)
}

// DecodeFunc adapts a function to Detokenizer.
type DecodeFunc func(ids []int32) (string, error)

// Decode calls f.
func (f DecodeFunc) Decode(ids []int32) (string, error) { return f(ids) }

// promptContext is how many prompt tokens seed the incremental decoder, so
// that a first generated token decodes with the spacing it has after the
// prompt (SentencePiece drops a leading space at the start of a text).
const promptContext = 4

// textStream decodes tokens incrementally (the prefix/read offset scheme of
// Hugging Face's text-generation-inference and vLLM): each new piece is the
// text of a short window of recent ids minus the text of the window without
// the new ones, held back while it ends in an incomplete UTF-8 sequence.
type textStream struct {
	d            Detokenizer
	ids          []int32
	prefix, read int
}

func newTextStream(d Detokenizer, prompt []int32) *textStream {
	ctx := prompt[max(0, len(prompt)-promptContext):]
	ids := append(make([]int32, 0, len(ctx)+64), ctx...)
	return &textStream{d: d, ids: ids, read: len(ids)}
}

// add appends id and returns the text it completes (possibly "").
func (t *textStream) add(id int32) (string, error) {
	t.ids = append(t.ids, id)
	return t.piece(false)
}

// flush returns text still held back (an incomplete character at the end).
func (t *textStream) flush() (string, error) { return t.piece(true) }

func (t *textStream) piece(final bool) (string, error) {
	if t.read == len(t.ids) {
		return "", nil
	}
	before, err := t.decode(t.ids[t.prefix:t.read])
	if err != nil {
		return "", err
	}
	after, err := t.decode(t.ids[t.prefix:])
	if err != nil {
		return "", err
	}
	if !final && (len(after) <= len(before) || strings.HasSuffix(after, string(utf8.RuneError))) {
		return "", nil
	}
	var piece string
	if strings.HasPrefix(after, before) {
		piece = after[len(before):]
	} else if len(after) > len(before) {
		piece = after[len(before):]
	}
	t.prefix, t.read = t.read, len(t.ids)
	return piece, nil
}

// decode calls the Detokenizer, turning a panic into an error so that one
// request's bad tokens cannot stop the scheduler.
func (t *textStream) decode(ids []int32) (s string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("detokenizer failed on ids %v: %v", ids, p)
		}
	}()
	return t.d.Decode(ids)
}

// stopMatcher finds stop strings in streamed text, holding back any tail
// that could be the start of one, so that a stop string is never emitted.
type stopMatcher struct {
	stops   []string
	pending string
}

// push adds text; it returns what can be emitted and whether a stop string
// was found (then out is the text before it and the rest is dropped).
func (m *stopMatcher) push(text string) (out string, stopped bool) {
	if len(m.stops) == 0 {
		return text, false
	}
	m.pending += text
	first := -1
	for _, s := range m.stops {
		if i := strings.Index(m.pending, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		out, m.pending = m.pending[:first], ""
		return out, true
	}
	hold := 0
	for _, s := range m.stops {
		for n := min(len(s)-1, len(m.pending)); n > hold; n-- {
			if strings.HasSuffix(m.pending, s[:n]) {
				hold = n
				break
			}
		}
	}
	out, m.pending = m.pending[:len(m.pending)-hold], m.pending[len(m.pending)-hold:]
	return out, false
}

// flush returns the held-back text at the end of generation.
func (m *stopMatcher) flush() string {
	out := m.pending
	m.pending = ""
	return out
}
