package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func newTestBackend(t testing.TB) backends.Backend {
	t.Helper()
	// ops_sequential: simplego's parallel executor reads a buffer-reuse counter
	// without a lock (GoMLX v0.26), which -race reports; sequential is as fast here.
	b, err := backends.NewWithConfig("go:ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randTensor(r *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

// TestDotGeneralGradientsMatchGoMLX checks Foundry's DotGeneral/Dot VJPs against
// GoMLX's stock ones on shapes with batch axes and contracting axes in odd positions.
func TestDotGeneralGradientsMatchGoMLX(t *testing.T) {
	backend := newTestBackend(t)
	r := rand.New(rand.NewPCG(1, 2))
	type dg struct {
		lhsDims, rhsDims                             []int
		lhsContract, lhsBatch, rhsContract, rhsBatch []int
		dot                                          bool // graph.Dot instead of DotGeneral
	}
	cases := map[string]dg{
		"matmul":                  {lhsDims: []int{3, 4}, rhsDims: []int{5, 4}, lhsContract: []int{1}, rhsContract: []int{1}},
		"linear rank 3":           {lhsDims: []int{2, 3, 4}, rhsDims: []int{5, 4}, lhsContract: []int{-1}, rhsContract: []int{1}},
		"batch last, contract 0":  {lhsDims: []int{4, 3, 2}, rhsDims: []int{2, 5, 4}, lhsContract: []int{0}, lhsBatch: []int{2}, rhsContract: []int{2}, rhsBatch: []int{0}},
		"two contracting swapped": {lhsDims: []int{3, 4, 6, 2}, rhsDims: []int{2, 6, 5, 3}, lhsContract: []int{2, 0}, lhsBatch: []int{3}, rhsContract: []int{1, 3}, rhsBatch: []int{0}},
		"attention gqa":           {lhsDims: []int{2, 3, 2, 2, 4}, rhsDims: []int{2, 5, 2, 4}, lhsContract: []int{4}, lhsBatch: []int{0, 2}, rhsContract: []int{3}, rhsBatch: []int{0, 2}},
		"two batch reordered":     {lhsDims: []int{2, 3, 4, 5}, rhsDims: []int{3, 5, 2, 6}, lhsContract: []int{3}, lhsBatch: []int{1, 0}, rhsContract: []int{1}, rhsBatch: []int{0, 2}},
		"dot matrix":              {lhsDims: []int{3, 4}, rhsDims: []int{4, 5}, dot: true},
		"dot matrix-vector":       {lhsDims: []int{3, 4}, rhsDims: []int{4}, dot: true},
		"dot vector-vector":       {lhsDims: []int{4}, rhsDims: []int{4}, dot: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			lhs, rhs := randTensor(r, c.lhsDims...), randTensor(r, c.rhsDims...)
			build := func(useFoundry bool) func(lhs, rhs *graph.Node) []*graph.Node {
				return func(lhs, rhs *graph.Node) []*graph.Node {
					var out *graph.Node
					switch {
					case c.dot:
						out = graph.Dot(lhs, rhs)
					case useFoundry:
						out = DotGeneral(lhs, c.lhsContract, c.lhsBatch, rhs, c.rhsContract, c.rhsBatch)
					default:
						out = graph.DotGeneral(lhs, c.lhsContract, c.lhsBatch, rhs, c.rhsContract, c.rhsBatch)
					}
					// A non-uniform upstream gradient: loss = sum(out * w), w = iota.
					w := graph.Scalar(out.Graph(), out.DType(), 1.5)
					if out.Rank() > 0 {
						w = graph.Iota(out.Graph(), out.Shape(), -1)
						w = graph.AddScalar(graph.MulScalar(graph.Sin(w), 0.5), 1)
					}
					loss := graph.ReduceAllSum(graph.Mul(out, w))
					grads := graph.Gradient(loss, lhs, rhs)
					if useFoundry && !(c.dot && len(c.rhsDims) == 1 && len(c.lhsDims) == 1) {
						for _, g := range grads {
							if typ := g.Type(); typ != graph.NodeTypeDotGeneral && typ != graph.NodeTypeTranspose {
								t.Errorf("Foundry gradient is a %s node, want DotGeneral (or its transpose)", typ)
							}
						}
					}
					return grads
				}
			}
			// Stock gradients: built before registering (GoMLX's own VJPs).
			stock := graph.MustExecOnceN(backend, build(false), lhs, rhs)
			var ours []*tensors.Tensor
			withFoundryGradients(t, func() { ours = graph.MustExecOnceN(backend, build(true), lhs, rhs) })
			for i := range 2 {
				a, b := stock[i].Value(), ours[i].Value()
				if !stock[i].Shape().Equal(ours[i].Shape()) {
					t.Fatalf("grad %d shape %s, want %s", i, ours[i].Shape(), stock[i].Shape())
				}
				fa, fb := flat(a), flat(b)
				for j := range fa {
					if d := math.Abs(float64(fa[j] - fb[j])); d > 1e-4*(1+math.Abs(float64(fa[j]))) {
						t.Fatalf("grad %d [%d] = %v, stock %v", i, j, fb[j], fa[j])
					}
				}
			}
		})
	}
}

// withFoundryGradients runs fn with Foundry's VJPs registered and restores the
// stock table afterwards, so the test can compare both in one process.
func withFoundryGradients(t testing.TB, fn func()) {
	dot, dotGen := graph.VJPRegistration[graph.NodeTypeDot], graph.VJPRegistration[graph.NodeTypeDotGeneral]
	RegisterGradients()
	RegisterGradients() // idempotent
	defer func() {
		graph.VJPRegistration[graph.NodeTypeDot], graph.VJPRegistration[graph.NodeTypeDotGeneral] = dot, dotGen
	}()
	fn()
}

func flat(v any) []float32 {
	var out []float32
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case float32:
			out = append(out, x)
		case []float32:
			out = append(out, x...)
		case [][]float32:
			for _, y := range x {
				walk(y)
			}
		case [][][]float32:
			for _, y := range x {
				walk(y)
			}
		case [][][][]float32:
			for _, y := range x {
				walk(y)
			}
		case [][][][][]float32:
			for _, y := range x {
				walk(y)
			}
		default:
			panic("flat: unexpected type")
		}
	}
	walk(v)
	return out
}
