package grad

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Clamp is min(max(x, lo), hi) (Relu: lo 0, hi +Inf; Relu6, Clip,
// HardSigmoid and HardSwish). gorgonia's Rectify builds x ⊙ (x ≥ 0):
// a comparison, a copy and a product forward, the product again
// backward; a CNN's block fit spent a tenth of its CPU there. One pass
// each way here. The gradient passes where lo ≤ x < hi, the convention
// of the graph it replaces (lo + relu(x−lo) − relu(x−hi)).
func Clamp(x *G.Node, lo, hi float64) (*G.Node, error) {
	if lo > hi || math.IsNaN(lo) || math.IsNaN(hi) {
		return nil, fmt.Errorf("%w: clamp to [%g, %g]", ErrUnsupported, lo, hi)
	}
	return G.ApplyOp(clampOp{lo, hi}, x)
}

type clampOp struct{ lo, hi float64 }

func (clampOp) Arity() int    { return 1 }
func (clampOp) Type() hm.Type { return sameType(1) }

func (clampOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

func (o clampOp) Do(in ...G.Value) (G.Value, error) {
	x, s, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = min(max(v, o.lo), o.hi)
	}
	return newDense(s, y), nil
}

func (clampOp) ReturnsPtr() bool        { return false }
func (clampOp) CallsExtern() bool       { return false }
func (clampOp) OverwritesInput() int    { return -1 }
func (o clampOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o clampOp) Hashcode() uint32      { return hashString(o.String()) }
func (o clampOp) String() string        { return fmt.Sprintf("Clamp(%g, %g)", o.lo, o.hi) }
func (clampOp) DiffWRT(int) []bool      { return []bool{true} }

func (o clampOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(clampGradOp(o), inputs[0], grad)
	return G.Nodes{g}, err
}

// clampGradOp passes the gradient (its second input) where its first
// input lies in [lo, hi).
type clampGradOp clampOp

func (clampGradOp) Arity() int    { return 2 }
func (clampGradOp) Type() hm.Type { return sameType(2) }

func (clampGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[1])
	if err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

func (o clampGradOp) Do(in ...G.Value) (G.Value, error) {
	x, g, s, err := sameSize64(in, "clamp gradient")
	if err != nil {
		return nil, err
	}
	dx := make([]float64, len(x))
	for i, v := range x {
		// A mask of the gradient's bits, not a branch: activations
		// fall either side of a bound at random, and a branch there
		// is mispredicted about half the time.
		keep := -(oneIf(v >= o.lo) & oneIf(v < o.hi))
		dx[i] = math.Float64frombits(math.Float64bits(g[i]) & keep)
	}
	return newDense(s, dx), nil
}

// oneIf is 1 when c holds, else 0, without a branch.
func oneIf(c bool) uint64 {
	var u uint64
	if c {
		u = 1
	}
	return u
}

func (clampGradOp) ReturnsPtr() bool        { return false }
func (clampGradOp) CallsExtern() bool       { return false }
func (clampGradOp) OverwritesInput() int    { return -1 }
func (o clampGradOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o clampGradOp) Hashcode() uint32      { return hashString(o.String()) }
func (o clampGradOp) String() string        { return fmt.Sprintf("ClampGrad(%g, %g)", o.lo, o.hi) }
func (clampGradOp) DiffWRT(int) []bool      { return []bool{false, false} }

func (clampGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, noSymDiff("ClampGrad")
}
