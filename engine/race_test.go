//go:build race

package engine

// testBackendConfig runs simplego's ops one at a time under the race
// detector: its parallel executor decides buffer reuse from a counter read
// without a lock (GoMLX v0.26, simplego/exec.go), which the detector reports.
const testBackendConfig = "go:ops_sequential"
