package dataset

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestReadOnceGivesBlocksBack checks that a spool read through readOnce
// reads back exactly what was written while the blocks behind the reader
// are given back to the file system.
func TestReadOnceGivesBlocksBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool")
	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0) // as dedupe's spool: punching holes needs write access
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blocks := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks
	}
	if err := f.Sync(); err != nil { // allocate the blocks (delayed allocation) so that freeing shows
		t.Fatal(err)
	}
	before := blocks()
	r := &readOnce{f: f, every: 64 << 10}
	got, err := io.ReadAll(io.LimitReader(r, int64(len(want))/2))
	if err != nil {
		t.Fatal(err)
	}
	mid := blocks()
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, rest...), want) {
		t.Fatal("read back differs from what was written")
	}
	if fi, _ := f.Stat(); fi.Size() != int64(len(want)) {
		t.Errorf("size %d after reading, want %d (kept)", fi.Size(), len(want))
	}
	t.Logf("512-byte blocks: %d before, %d halfway, %d at the end", before, mid, blocks())
	if before == 0 {
		t.Fatal("the file has no blocks to give back")
	}
	if mid >= before || blocks() >= mid {
		t.Errorf("blocks %d → %d → %d: want them given back as the reader goes", before, mid, blocks())
	}
}
