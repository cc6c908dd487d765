//go:build unix

package dataset

import (
	"syscall"
	"unsafe"
)

// offHeap allocates n zeroed values of T outside the Go heap. Dedupe's index
// is large, long-lived and pointer-free: kept on the heap it would also
// raise the garbage collector's target by its own size (GOGC), roughly
// doubling the process's memory. free must be called exactly once.
func offHeap[T any](n int) (s []T, free func()) {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if size == 0 {
		return nil, func() {}
	}
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]T, n), func() {} // out of address space: let the heap try
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n), func() { syscall.Munmap(b) }
}
