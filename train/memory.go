package train

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
)

// Kinds of memory a Job's PeakMemoryBytes measures.
const (
	MemoryProcessRSS = "process_rss" // the training process's resident memory (Linux)
	MemoryGoRuntime  = "go_runtime"  // memory the Go runtime holds from the OS (elsewhere)
)

// memoryUse returns how much memory training holds now, and which kind.
//
// On simplego every tensor is Go memory, so the process's resident set is
// the training's footprint. On XLA it is host memory only: GoMLX v0.26 does
// not expose device memory (go-xla v0.1.4 has PJRT_Device_MemoryStats as a
// C call with no Go wrapper, and the xla backend does not hand out its PJRT
// client), so a GPU run's device memory is not measured here.
func memoryUse() (int64, string) {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
				f := bytes.Fields(rest) // "123456 kB"
				if len(f) == 2 && string(f[1]) == "kB" {
					if kb, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil {
						return kb << 10, MemoryProcessRSS
					}
				}
			}
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.Sys - m.HeapReleased), MemoryGoRuntime
}

// formatBytes writes n in binary units: "512 B", "37.2 MiB", "1.50 GiB".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
