//go:build unix && !linux

package dataset

import (
	"errors"
	"os"
)

// reserve is not available here: offHeap uses anonymous memory instead of
// a file whose blocks it cannot reserve.
func reserve(*os.File, int64) error { return errors.ErrUnsupported }

// discard cannot punch holes here; the spool is freed when it is removed.
func discard(*os.File, int64, int64) {}
