package npy

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{3}, {2, 3}, {1, 2, 2}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i) - 1.5
		}
		p := filepath.Join(t.TempDir(), "x.npy")
		if err := WriteFile(p, shape, data); err != nil {
			t.Fatal(err)
		}
		gs, gd, err := ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) != len(shape) || len(gd) != n || gd[n-1] != data[n-1] {
			t.Fatalf("got %v %v", gs, gd)
		}
		// NumPy itself, when present, must read it too.
		if py, err := exec.LookPath("python3"); err == nil {
			out, err := exec.Command(py, "-c", "import numpy,sys; a=numpy.load(sys.argv[1]); print(a.shape, a.dtype)", p).CombinedOutput()
			if err == nil && !strings.Contains(string(out), "float32") {
				t.Errorf("numpy reads %s", out)
			}
		}
	}
}
