package grad

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

// Masks computed from an input's data: an export's attention_mask input
// compared (Equal) and used as a Where condition, as transformers'
// causal-mask code builds the padding mask. The comparisons give 0/1
// values that no weight reaches, so they carry no gradient; Where's
// value operands get the output gradient where the data picked them.

func init() {
	for op := range floatComparisons {
		rules[op] = compare
	}
}

// compare evaluates a comparison of computed values elementwise, with
// numpy broadcasting, into 0/1 values. (Build-time values are compared
// by static.go before any rule runs.)
func compare(t *translator, n *graph.Node) error {
	a, err := t.in(n, 0)
	if err != nil {
		return err
	}
	b, err := t.in(n, 1)
	if err != nil {
		return err
	}
	dims, err := t.staticDims(n)
	if err != nil {
		return err
	}
	y, err := G.ApplyOp(compareOp{op: n.Op(), a: shapeOrScalar(a), b: shapeOrScalar(b), out: tensor.Shape(dims)}, a, b)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// selectData is Where on a condition computed by the net (0/1 values):
// a's element where it is set, b's elsewhere, broadcast to out.
func selectData(cond, a, b *G.Node, out []int) (*G.Node, error) {
	o := dataSelectOp{c: shapeOrScalar(cond), a: shapeOrScalar(a), b: shapeOrScalar(b), out: tensor.Shape(out).Clone()}
	return G.ApplyOp(o, cond, a, b)
}

// compareOp is one of floatComparisons with broadcasting.
type compareOp struct {
	op        string
	a, b, out tensor.Shape
}

func (compareOp) Arity() int { return 2 }
func (o compareOp) Type() hm.Type {
	return hm.NewFnType(typeOf(o.a), typeOf(o.b), typeOf(o.out))
}
func (o compareOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.out.Clone(), nil }

func (o compareOp) Do(in ...G.Value) (G.Value, error) {
	a, err := values64(in[0])
	if err != nil {
		return nil, err
	}
	b, err := values64(in[1])
	if err != nil {
		return nil, err
	}
	cmp := floatComparisons[o.op]
	y := make([]float64, total(o.out))
	eachIndex(o.out, func(idx []int, off int) {
		if cmp(a[broadcastOffset(idx, o.a)], b[broadcastOffset(idx, o.b)]) {
			y[off] = 1
		}
	})
	return newDense(o.out, y), nil
}

func (compareOp) ReturnsPtr() bool        { return false }
func (compareOp) CallsExtern() bool       { return false }
func (compareOp) OverwritesInput() int    { return -1 }
func (o compareOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o compareOp) Hashcode() uint32      { return hashString(o.String()) }
func (o compareOp) String() string        { return fmt.Sprintf("%s(%v, %v → %v)", o.op, o.a, o.b, o.out) }
func (compareOp) DiffWRT(int) []bool      { return []bool{false, false} }
func (o compareOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, noSymDiff(o.op)
}

// dataSelectOp picks a's element where cond is nonzero, b's elsewhere.
type dataSelectOp struct {
	c, a, b, out tensor.Shape
}

func (dataSelectOp) Arity() int { return 3 }
func (o dataSelectOp) Type() hm.Type {
	return hm.NewFnType(typeOf(o.c), typeOf(o.a), typeOf(o.b), typeOf(o.out))
}
func (o dataSelectOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.out.Clone(), nil }

func (o dataSelectOp) Do(in ...G.Value) (G.Value, error) {
	var vals [3][]float64
	for i := range vals {
		v, err := values64(in[i])
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	c := vals[0]
	return pickEach(o.out, o.a, o.b, vals[1], vals[2], func(idx []int, _ int) bool { return c[broadcastOffset(idx, o.c)] != 0 }), nil
}

func (dataSelectOp) ReturnsPtr() bool        { return false }
func (dataSelectOp) CallsExtern() bool       { return false }
func (dataSelectOp) OverwritesInput() int    { return -1 }
func (o dataSelectOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o dataSelectOp) Hashcode() uint32      { return hashString(o.String()) }
func (o dataSelectOp) String() string {
	return fmt.Sprintf("SelectData(%v, %v, %v → %v)", o.c, o.a, o.b, o.out)
}
func (dataSelectOp) DiffWRT(int) []bool { return []bool{false, true, true} }

func (o dataSelectOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	ga, err := G.ApplyOp(dataSelectGradOp{o, true}, in[0], grad)
	if err != nil {
		return nil, err
	}
	gb, err := G.ApplyOp(dataSelectGradOp{o, false}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{nil, ga, gb}, nil
}

// dataSelectGradOp sums the output gradient where the condition picked
// one side into that side's shape.
type dataSelectGradOp struct {
	dataSelectOp
	first bool // the gradient of a (else of b)
}

func (o dataSelectGradOp) side() tensor.Shape {
	if o.first {
		return o.a
	}
	return o.b
}

func (dataSelectGradOp) Arity() int { return 2 }
func (o dataSelectGradOp) Type() hm.Type {
	return hm.NewFnType(typeOf(o.c), typeOf(o.out), typeOf(o.side()))
}
func (o dataSelectGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return o.side().Clone(), nil
}

func (o dataSelectGradOp) Do(in ...G.Value) (G.Value, error) {
	c, err := values64(in[0])
	if err != nil {
		return nil, err
	}
	g, _, err := data64(in[1])
	if err != nil {
		return nil, err
	}
	return sumPicked(o.out, o.side(), g, o.first, func(idx []int, _ int) bool { return c[broadcastOffset(idx, o.c)] != 0 }), nil
}

func (o dataSelectGradOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o dataSelectGradOp) Hashcode() uint32      { return hashString(o.String()) }
func (o dataSelectGradOp) String() string {
	return fmt.Sprintf("Grad%v(%v)", o.dataSelectOp.String(), o.first)
}
func (dataSelectGradOp) DiffWRT(int) []bool { return []bool{false, false} }

func (dataSelectGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, noSymDiff("SelectDataGrad")
}
