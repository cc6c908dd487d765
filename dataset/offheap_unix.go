//go:build unix

package dataset

import (
	"os"
	"syscall"
	"unsafe"
)

// offHeap allocates n zeroed values of T outside the Go heap, in a shared
// mapping of an unlinked file in dir (os.TempDir when ""). Dedupe's index is
// large, long-lived and pointer-free: kept on the heap it would also raise
// the garbage collector's target by its own size (GOGC), and kept in
// anonymous memory it would grow the process's RAM with the row count.
// File pages can be written back and evicted by the kernel under memory
// pressure, so the index costs disk, not RAM, when RAM is short (while RAM
// is free, its pages stay resident and count in RSS as RssFile).
//
// Where the file cannot be created or its blocks reserved (a full disk
// would otherwise fault on first write), it falls back to anonymous memory,
// then to the heap. free must be called exactly once.
func offHeap[T any](dir string, n int) (s []T, free func()) {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if size == 0 {
		return nil, func() {}
	}
	b, err := mapFile(dir, size)
	if err != nil {
		b, err = syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	}
	if err != nil {
		return make([]T, n), func() {} // out of address space: let the heap try
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n), func() { syscall.Munmap(b) }
}

// mapFile maps size zeroed bytes of a new file in dir, unlinked at once so
// that it goes with the mapping (or the process).
func mapFile(dir string, size int) ([]byte, error) {
	f, err := os.CreateTemp(dir, "foundry-dedupe-index-*.bin")
	if err != nil {
		return nil, err
	}
	defer f.Close() // the mapping keeps the file
	if err := os.Remove(f.Name()); err != nil {
		return nil, err
	}
	if err := reserve(f, int64(size)); err != nil {
		return nil, err
	}
	return syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}
