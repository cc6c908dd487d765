//go:build !race

package engine

const testBackendConfig = "go"
