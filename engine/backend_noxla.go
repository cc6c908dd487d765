//go:build !(cgo && ((linux && amd64) || darwin) && !noxla)

package engine

import (
	"errors"

	"github.com/gomlx/gomlx/backends"
)

// findPJRTPlugin finds nothing: this binary was built without XLA support (no cgo, or the noxla tag).
func findPJRTPlugin() (string, string) { return "", "" }

func newXLA(string) (backends.Backend, error) {
	return nil, errors.New("this foundry binary was built without XLA support (build with CGO_ENABLED=1 and without the noxla tag)")
}
