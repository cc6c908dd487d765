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
