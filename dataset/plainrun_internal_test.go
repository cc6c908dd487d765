package dataset

import "testing"

// TestPlainRun checks the 8-byte test against the byte-by-byte rule for
// every byte value at every position of a 17-byte run.
func TestPlainRun(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' && c < 0x80 }
	for pos := range 17 {
		for v := range 256 {
			b := []byte("abcdefghijklmnopq")
			b[pos] = byte(v)
			want := len(b)
			if !plain(byte(v)) {
				want = pos
			}
			if got := plainRun(b); got != want {
				t.Fatalf("byte %#x at %d: plainRun = %d, want %d", v, pos, got, want)
			}
			if got := plainRun(string(b)); got != want {
				t.Fatalf("byte %#x at %d (string): plainRun = %d, want %d", v, pos, got, want)
			}
		}
	}
}
