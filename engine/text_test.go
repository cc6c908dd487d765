package engine

import (
	"strings"
	"testing"
)

// byteDetok decodes each id as one byte, so a multi-byte character spans tokens.
var byteDetok = DecodeFunc(func(ids []int32) (string, error) {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
})

func TestTextStreamHoldsIncompleteCharacters(t *testing.T) {
	ts := newTextStream(byteDetok, []int32{'h', 'i', ' '})
	var pieces []string
	for _, b := range []byte("né€!") {
		p, err := ts.add(int32(b))
		if err != nil {
			t.Fatal(err)
		}
		pieces = append(pieces, p)
	}
	want := []string{"n", "", "é", "", "", "€", "!"}
	if strings.Join(pieces, "|") != strings.Join(want, "|") {
		t.Fatalf("pieces %q, want %q", pieces, want)
	}
	ts.add(0xE2) // half a character at the end comes out on flush
	if p, _ := ts.flush(); p != "\uFFFD" {
		t.Fatalf("flush %q", p)
	}
}

func TestStopMatcher(t *testing.T) {
	m := stopMatcher{stops: []string{"</s>", "STOP"}}
	var out strings.Builder
	for _, piece := range []string{"a <", "/", "x> b S", "TO", "P c"} {
		o, stopped := m.push(piece)
		out.WriteString(o)
		if stopped {
			break
		}
	}
	if out.String() != "a </x> b " {
		t.Fatalf("emitted %q, want %q", out.String(), "a </x> b ")
	}
}
