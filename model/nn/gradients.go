package nn

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// registerTrainingGradients adds the VJPs that training Foundry's models on
// GoMLX v0.26 needs beyond the matmul ones (RegisterGradients calls it):
//   - Rsqrt (RMSNorm) has no VJP at all;
//   - Slice's VJP pads with graph.Pad, which simplego does not implement
//     (rotary embeddings slice): unit-stride slices get their gradient by
//     concatenating zeros instead, on every backend.
//
// Like RegisterGradients it writes GoMLX's global table, so it must run
// before gradient graphs are built, not concurrently with one.
func registerTrainingGradients() {
	registerOnce.Do(func() {
		stockSliceVJP = graph.VJPRegistration[graph.NodeTypeSlice]
		graph.VJPRegistration[graph.NodeTypeRsqrt] = rsqrtVJP
		graph.VJPRegistration[graph.NodeTypeSlice] = sliceVJP
	})
}

var (
	// registerOnce writes the table once per process, so later training runs
	// (e.g. beside a serving engine) do not write it again.
	registerOnce sync.Once
	// stockSliceVJP is GoMLX's, kept for strided slices.
	stockSliceVJP graph.VJP
)

// rsqrtVJP: d(x^-½)/dx = −½·x^-3/2 = −½·y³ with y = rsqrt(x).
func rsqrtVJP(node *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
	y := node
	return []*graph.Node{graph.Mul(v[0], graph.MulScalar(graph.Mul(graph.Square(y), y), -0.5))}
}

// sliceVJP places v back at the slice's position in a zero tensor of the
// input's shape. GoMLX keeps a slice's bounds private; they are read with
// reflection (GoMLX is pinned at v0.26.0, and a test checks this gradient).
func sliceVJP(node *graph.Node, v []*graph.Node, out shapes.Shape) []*graph.Node {
	starts, strides, ok := sliceParams(node)
	if !ok {
		return stockSliceVJP(node, v, out)
	}
	for _, s := range strides {
		if s > 1 {
			return stockSliceVJP(node, v, out)
		}
	}
	x := node.Inputs()[0]
	g := v[0]
	for axis, start := range starts {
		end := x.Shape().Dim(axis) - start - g.Shape().Dim(axis)
		if start == 0 && end == 0 {
			continue
		}
		parts := make([]*graph.Node, 0, 3)
		zeros := func(n int) *graph.Node {
			dims := g.Shape().Clone().Dimensions
			dims[axis] = n
			return graph.Zeros(g.Graph(), shapes.Make(g.DType(), dims...))
		}
		if start > 0 {
			parts = append(parts, zeros(start))
		}
		parts = append(parts, g)
		if end > 0 {
			parts = append(parts, zeros(end))
		}
		g = graph.Concatenate(parts, axis)
	}
	return []*graph.Node{g}
}

// sliceParams reads a Slice node's starts and strides.
func sliceParams(node *graph.Node) (starts, strides []int, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	in := reflect.ValueOf(node).Elem().FieldByName("inputs")
	if !in.IsValid() || in.IsNil() {
		return nil, nil, false
	}
	p := in.Elem()
	if p.Kind() == reflect.Pointer {
		p = p.Elem()
	}
	ints := func(name string) []int {
		f := p.FieldByName(name)
		out := make([]int, f.Len())
		for i := range out {
			out[i] = int(f.Index(i).Int())
		}
		return out
	}
	starts, strides = ints("starts"), ints("strides")
	if len(starts) != node.Rank() || len(strides) != node.Rank() {
		panic(fmt.Sprintf("slice node with %d starts for rank %d", len(starts), node.Rank()))
	}
	return starts, strides, true
}
