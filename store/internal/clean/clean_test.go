package clean

import (
	"slices"
	"testing"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"plain ünï ✓":   "plain ünï ✓",
		"a\x00b":        "a\uFFFDb",
		"a\xffb":        "a\uFFFDb",
		"\xe2\x82":      "\uFFFD", // a truncated sequence is one replacement
		"\x00\x00\xff!": "\uFFFD\uFFFD\uFFFD!",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTextsAndMapCopyOnlyWhenDirty(t *testing.T) {
	clean := []string{"a", "b"}
	if got := Texts(clean); &got[0] != &clean[0] {
		t.Error("Texts copied a clean slice")
	}
	dirty := []string{"a", "b\x00"}
	if got := Texts(dirty); !slices.Equal(got, []string{"a", "b\uFFFD"}) || dirty[1] != "b\x00" {
		t.Errorf("Texts(dirty) = %q, input now %q", got, dirty)
	}
	m := map[string]string{"k\xff": "v\x00", "ok": "ok"}
	got := Map(m)
	if len(got) != 2 || got["k\uFFFD"] != "v\uFFFD" || got["ok"] != "ok" || m["k\xff"] != "v\x00" {
		t.Errorf("Map = %q, input now %q", got, m)
	}
}
