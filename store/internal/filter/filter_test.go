package filter

import (
	"errors"
	"testing"
	"time"

	"github.com/foundryhq/foundry/store"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{
		{CreatedAt: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), ID: "req-1"},
		{CreatedAt: time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), ID: "with/slash and ünïcode"},
		{CreatedAt: time.Unix(0, 0).UTC(), ID: ""},
	} {
		got, ok, err := Decode(c.Encode())
		if err != nil || !ok || !got.CreatedAt.Equal(c.CreatedAt) || got.ID != c.ID {
			t.Errorf("Decode(Encode(%+v)) = %+v, %v, %v", c, got, ok, err)
		}
	}
	if _, ok, err := Decode(""); ok || err != nil {
		t.Errorf("Decode(\"\") = %v, %v; want no cursor", ok, err)
	}
	for _, bad := range []string{"***", "bm8tc2xhc2g", "eC95"} { // "no-slash", "x/y"
		if _, _, err := Decode(bad); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("Decode(%q) = %v, want ErrInvalidQuery", bad, err)
		}
	}
}

func TestStatusRange(t *testing.T) {
	for _, tt := range []struct {
		in     string
		lo, hi int
		ok     bool
		bad    bool
	}{
		{"", 0, 0, false, false},
		{"ok", 200, 299, true, false},
		{"error", 400, 999, true, false},
		{"429", 429, 429, true, false},
		{"42", 0, 0, false, true},
		{"OK", 0, 0, false, true},
		{"4xx", 0, 0, false, true},
	} {
		lo, hi, ok, err := StatusRange(tt.in)
		if lo != tt.lo || hi != tt.hi || ok != tt.ok || (err != nil) != tt.bad || tt.bad && !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("StatusRange(%q) = %d, %d, %v, %v", tt.in, lo, hi, ok, err)
		}
	}
}

func TestLimit(t *testing.T) {
	for in, want := range map[int]int{-1: 50, 0: 50, 1: 1, 1000: 1000, 1001: 1000} {
		if got := Limit(in); got != want {
			t.Errorf("Limit(%d) = %d, want %d", in, got, want)
		}
	}
}
