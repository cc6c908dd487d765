// Package nn holds the graph building blocks every Foundry model is made of:
// the Foundry matmul (DotGeneral with fast gradients), Linear with its adapter
// seam, RMSNorm and rotary embeddings.
package nn

import (
	"reflect"
	"runtime"
	"slices"
	"sync"
	"weak"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// dotAxes are the (normalised, non-negative) axes of one DotGeneral node.
type dotAxes struct {
	lhsContract, lhsBatch, rhsContract, rhsBatch []int
}

// axesByNode remembers the axes of every DotGeneral built by DotGeneral,
// because GoMLX keeps them private. Keys are weak, and entries are dropped when
// their node is collected, so graphs that are thrown away do not leak.
// It is package state because graph.VJPRegistration, which reads it, is too.
var axesByNode sync.Map // weak.Pointer[graph.Node] -> dotAxes

// DotGeneral is the Foundry matmul: graph.DotGeneral, with its axes recorded
// so that the gradients registered by RegisterGradients compute both operand
// gradients as DotGenerals. Every model matmul goes through it.
// Negative axes count from the end.
func DotGeneral(lhs *graph.Node, lhsContract, lhsBatch []int, rhs *graph.Node, rhsContract, rhsBatch []int) *graph.Node {
	ax := dotAxes{
		lhsContract: normAxes(lhs.Rank(), lhsContract), lhsBatch: normAxes(lhs.Rank(), lhsBatch),
		rhsContract: normAxes(rhs.Rank(), rhsContract), rhsBatch: normAxes(rhs.Rank(), rhsBatch),
	}
	out := graph.DotGeneral(lhs, ax.lhsContract, ax.lhsBatch, rhs, ax.rhsContract, ax.rhsBatch)
	key := weak.Make(out)
	axesByNode.Store(key, ax)
	runtime.AddCleanup(out, func(k weak.Pointer[graph.Node]) { axesByNode.Delete(k) }, key)
	return out
}

func normAxes(rank int, axes []int) []int {
	out := make([]int, len(axes))
	for i, a := range axes {
		if a < 0 {
			a += rank
		}
		out[i] = a
	}
	return out
}

var (
	stockOnce   sync.Once
	stockDotGen graph.VJP
)

// RegisterGradients installs Foundry's VJPs for graph.NodeTypeDot and
// graph.NodeTypeDotGeneral in graph.VJPRegistration. GoMLX v0.26's own
// gradients build a broadcast multiply plus a reduction that materialises
// M×N×K tensors (35× slower on an H100, 17× on simplego, out of memory on
// modest models); these compute grad_lhs = v·rhsᵀ and grad_rhs = lhsᵀ·v as
// DotGenerals. DotGeneral nodes not built by DotGeneral (so with unknown
// axes) keep GoMLX's gradient.
//
// It also adds the Rsqrt and Slice gradients training needs (gradients.go).
//
// Call it before building any gradient graph; engine.NewBackend does.
// It writes a GoMLX-wide table only when Foundry's VJPs are not there yet,
// so once they are, later calls (a second training run in another
// goroutine) only read it and may run beside gradients being built.
func RegisterGradients() {
	registerMu.Lock()
	defer registerMu.Unlock()
	stockOnce.Do(func() { stockDotGen = graph.VJPRegistration[graph.NodeTypeDotGeneral] })
	if !sameFunc(graph.VJPRegistration[graph.NodeTypeDot], foundryDotVJP) {
		graph.VJPRegistration[graph.NodeTypeDot] = foundryDotVJP
	}
	if !sameFunc(graph.VJPRegistration[graph.NodeTypeDotGeneral], foundryDotGeneralVJP) {
		graph.VJPRegistration[graph.NodeTypeDotGeneral] = foundryDotGeneralVJP
	}
	registerTrainingGradients()
}

// registerMu serialises RegisterGradients' check-then-write.
var registerMu sync.Mutex

// sameFunc reports whether a and b are the same function (Go has no == on
// funcs; their code pointers say it).
func sameFunc(a, b graph.VJP) bool {
	return a != nil && reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
}

func foundryDotVJP(node *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
	return dotVJP(node, v[0])
}

func foundryDotGeneralVJP(node *graph.Node, v []*graph.Node, out shapes.Shape) []*graph.Node {
	ax, ok := axesByNode.Load(weak.Make(node))
	if !ok {
		return stockDotGen(node, v, out)
	}
	in := node.Inputs()
	return dotGeneralVJP(in[0], in[1], ax.(dotAxes), v[0])
}

// dotVJP handles graph.Dot: vector·vector, matrix·vector and matrix·matrix.
func dotVJP(node, v *graph.Node) []*graph.Node {
	in := node.Inputs()
	lhs, rhs := in[0], in[1]
	switch {
	case lhs.Rank() == 1 && rhs.Rank() == 1: // v is a scalar
		return []*graph.Node{graph.Mul(v, rhs), graph.Mul(v, lhs)}
	case lhs.Rank() == 2 && rhs.Rank() == 1: // [i,j]·[j] -> [i]
		return dotGeneralVJP(lhs, rhs, dotAxes{lhsContract: []int{1}, rhsContract: []int{0}}, v)
	default: // [i,j]·[j,k] -> [i,k]
		return dotGeneralVJP(lhs, rhs, dotAxes{lhsContract: []int{1}, rhsContract: []int{0}}, v)
	}
}

// crossAxes lists the axes of a rank-r operand that are neither contracted nor batch, ascending.
func crossAxes(rank int, contract, batch []int) []int {
	var out []int
	for a := range rank {
		if !slices.Contains(contract, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

// dotGeneralVJP returns the gradients of lhs and rhs for out = DotGeneral(lhs, rhs)
// with upstream gradient v, whose axes are [batch..., lhsCross..., rhsCross...].
func dotGeneralVJP(lhs, rhs *graph.Node, ax dotAxes, v *graph.Node) []*graph.Node {
	nb := len(ax.lhsBatch)
	lhsCross := crossAxes(lhs.Rank(), ax.lhsContract, ax.lhsBatch)
	rhsCross := crossAxes(rhs.Rank(), ax.rhsContract, ax.rhsBatch)
	vBatch := seq(0, nb)
	vLhsCross := seq(nb, len(lhsCross))
	vRhsCross := seq(nb+len(lhsCross), len(rhsCross))

	// grad_lhs = v·rhsᵀ: contract v's rhs-cross axes with rhs's cross axes.
	// Result axes: [batch..., lhsCross..., rhs's contracting axes in ascending order].
	gl := DotGeneral(v, vRhsCross, vBatch, rhs, rhsCross, ax.rhsBatch)
	glAxes := append(append(slices.Clone(ax.lhsBatch), lhsCross...), pairedAscending(ax.rhsContract, ax.lhsContract)...)

	// grad_rhs = lhsᵀ·v: contract lhs's cross axes with v's lhs-cross axes.
	// Result axes: [batch..., lhs's contracting axes ascending (as rhs axes)..., rhsCross...].
	gr := DotGeneral(lhs, lhsCross, ax.lhsBatch, v, vLhsCross, vBatch)
	grAxes := append(append(slices.Clone(ax.rhsBatch), pairedAscending(ax.lhsContract, ax.rhsContract)...), rhsCross...)

	return []*graph.Node{permuteTo(gl, glAxes), permuteTo(gr, grAxes)}
}

// pairedAscending walks from's axes in ascending order and returns, for each,
// the axis paired with it in to (from[i] pairs with to[i]).
func pairedAscending(from, to []int) []int {
	idx := seq(0, len(from))
	slices.SortFunc(idx, func(a, b int) int { return from[a] - from[b] })
	out := make([]int, len(idx))
	for i, j := range idx {
		out[i] = to[j]
	}
	return out
}

// permuteTo transposes x, whose axis i is the operand's axis target[i], into operand order.
func permuteTo(x *graph.Node, target []int) *graph.Node {
	perm := make([]int, len(target))
	identity := true
	for i, a := range target {
		perm[a] = i
		identity = identity && a == i
	}
	if identity {
		return x
	}
	return graph.TransposeAllAxes(x, perm...)
}

func seq(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}
