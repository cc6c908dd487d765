//go:build !unix

package safetensors

import (
	"errors"
	"os"
)

func mmap(*os.File, int64) ([]byte, func() error, error) {
	return nil, nil, errors.New("mmap not supported on this platform")
}
