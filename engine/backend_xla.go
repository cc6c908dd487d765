//go:build cgo && ((linux && amd64) || darwin) && !noxla

package engine

import (
	"os"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"
)

// findPJRTPlugin returns the preferred installed PJRT plugin ("cuda" before
// "cpu") without ever auto-installing one.
func findPJRTPlugin() (plugin, where string) {
	xla.EnableAutoInstall(false)
	plugins := xla.GetAvailablePlugins()
	where = "in GoMLX's plugin directories"
	if p := os.Getenv("PJRT_PLUGIN_LIBRARY_PATH"); p != "" {
		where = "in PJRT_PLUGIN_LIBRARY_PATH=" + p
	}
	for _, want := range xla.DefaultPlugins {
		if slices.Contains(plugins, want) {
			return want, where
		}
	}
	if len(plugins) > 0 {
		return plugins[0], where
	}
	return "", ""
}

func newXLA(plugin string) (backends.Backend, error) {
	xla.EnableAutoInstall(false)
	return xla.New(plugin)
}
