package dataset

import (
	"os"
	"syscall"
)

// reserve allocates f's blocks up to size, so that writing through a mapping
// of it cannot fail (with SIGBUS) on a full disk.
func reserve(f *os.File, size int64) error {
	return syscall.Fallocate(int(f.Fd()), 0, 0, size)
}

// discard gives f's blocks in [off, off+n) back to the file system (the file
// keeps its size and reads there as zeros): a spool read once releases what
// it has read. Best effort: a file system without hole punching keeps them.
func discard(f *os.File, off, n int64) {
	const punchHole, keepSize = 0x02, 0x01 // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
	syscall.Fallocate(int(f.Fd()), punchHole|keepSize, off, n)
}
