//go:build !unix

package dataset

import "os"

// offHeap allocates on the Go heap where mmap is not available.
func offHeap[T any](dir string, n int) ([]T, func()) { return make([]T, n), func() {} }

// discard cannot punch holes here; the spool is freed when it is removed.
func discard(*os.File, int64, int64) {}
