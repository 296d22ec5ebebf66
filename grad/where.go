package grad

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() { rules["Where"] = where }

// where selects between two float values by a condition known at build
// time (a causal or padding mask computed from shapes): Select with the
// condition baked in; or by a condition computed from an input's data
// (an attention_mask input's padding), selectData.
func where(t *translator, n *graph.Node) error {
	cond, err := t.staticOf(n.Input(0))
	if err != nil {
		return whereData(t, n)
	}
	a, err := t.in(n, 1)
	if err != nil {
		return err
	}
	b, err := t.in(n, 2)
	if err != nil {
		return err
	}
	dims, err := t.staticDims(n)
	if err != nil {
		return err
	}
	y, err := Select(cond.v, cond.shape, a, b, dims)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// whereData is Where on a condition the net computes.
func whereData(t *translator, n *graph.Node) error {
	var in [3]*G.Node
	for i := range in {
		v, err := t.in(n, i)
		if err != nil {
			return fmt.Errorf("%w: Where on a condition neither known at build time nor computed from the inputs: %v", ErrUnsupported, err)
		}
		in[i] = v
	}
	dims, err := t.staticDims(n)
	if err != nil {
		return err
	}
	y, err := selectData(in[0], in[1], in[2], dims)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// staticOf returns the build-time integer tensor name.
func (t *translator) staticOf(name string) (static, error) {
	if v, ok := t.staticValue(name); ok {
		return v, nil
	}
	return static{}, fmt.Errorf("%s is computed by the net", name)
}

// Select is numpy's where(cond, a, b) for a static condition: cond (of
// shape cshape), a and b broadcast to out. The gradient of each side
// is the output gradient where the condition picked it, summed back
// over the axes it was broadcast along.
func Select(cond []int64, cshape []int, a, b *G.Node, out []int) (*G.Node, error) {
	pick := make([]bool, total(out))
	eachIndex(out, func(idx []int, off int) { pick[off] = cond[broadcastOffset(idx, cshape)] != 0 })
	h := fnv.New32a()
	for _, p := range pick {
		fmt.Fprint(h, b2i(p))
	}
	o := selectOp{pick: pick, out: tensor.Shape(out).Clone(), a: shapeOrScalar(a), b: shapeOrScalar(b), key: h.Sum32()}
	return G.ApplyOp(o, a, b)
}

func shapeOrScalar(x *G.Node) tensor.Shape {
	if x.IsScalar() {
		return tensor.Shape{}
	}
	return x.Shape().Clone()
}

// typeOf is the gorgonia type of a float64 value of shape s.
func typeOf(s tensor.Shape) hm.Type {
	if len(s) == 0 {
		return G.Float64
	}
	return G.TensorType{Dims: len(s), Of: G.Float64}
}

// values64 returns the float64 values of a tensor or scalar value.
func values64(v G.Value) ([]float64, error) {
	if s, ok := v.(*G.F64); ok {
		return []float64{float64(*s)}, nil
	}
	d, _, err := data64(v)
	return d, err
}

// selectOp picks a's element where pick is set, b's elsewhere.
type selectOp struct {
	pick []bool
	out  tensor.Shape
	a, b tensor.Shape // the inputs' shapes (empty: a scalar)
	key  uint32       // hash of pick
}

func (selectOp) Arity() int { return 2 }
func (o selectOp) Type() hm.Type {
	return hm.NewFnType(typeOf(o.a), typeOf(o.b), typeOf(o.out))
}
func (o selectOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.out.Clone(), nil }

func (o selectOp) Do(in ...G.Value) (G.Value, error) {
	a, err := values64(in[0])
	if err != nil {
		return nil, err
	}
	b, err := values64(in[1])
	if err != nil {
		return nil, err
	}
	return pickEach(o.out, o.a, o.b, a, b, func(_ []int, off int) bool { return o.pick[off] }), nil
}

// pickEach is where(picked, a, b) over out, a and b broadcast from
// shapes as and bs.
func pickEach(out, as, bs tensor.Shape, a, b []float64, picked func(idx []int, off int) bool) G.Value {
	y := make([]float64, total(out))
	eachIndex(out, func(idx []int, off int) {
		if picked(idx, off) {
			y[off] = a[broadcastOffset(idx, as)]
		} else {
			y[off] = b[broadcastOffset(idx, bs)]
		}
	})
	return newDense(out, y)
}

// sumPicked sums the output gradient g over out where picked equals
// first into a side of shape s (broadcast to out).
func sumPicked(out, s tensor.Shape, g []float64, first bool, picked func(idx []int, off int) bool) G.Value {
	d := make([]float64, total(s))
	eachIndex(out, func(idx []int, off int) {
		if picked(idx, off) == first {
			d[broadcastOffset(idx, s)] += g[off]
		}
	})
	if len(s) == 0 {
		return G.NewF64(d[0])
	}
	return newDense(s, d)
}

func (selectOp) ReturnsPtr() bool        { return false }
func (selectOp) CallsExtern() bool       { return false }
func (selectOp) OverwritesInput() int    { return -1 }
func (o selectOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o selectOp) Hashcode() uint32      { return hashString(o.String()) }
func (o selectOp) String() string {
	return fmt.Sprintf("Select(%v, %v → %v #%x)", o.a, o.b, o.out, o.key)
}
func (selectOp) DiffWRT(int) []bool { return []bool{true, true} }

func (o selectOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	ga, err := G.ApplyOp(selectGradOp{o, true}, grad)
	if err != nil {
		return nil, err
	}
	gb, err := G.ApplyOp(selectGradOp{o, false}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{ga, gb}, nil
}

// selectGradOp sums the output gradient where one side was picked into
// that side's shape.
type selectGradOp struct {
	selectOp
	first bool // the gradient of a (else of b)
}

func (o selectGradOp) side() tensor.Shape {
	if o.first {
		return o.a
	}
	return o.b
}

func (selectGradOp) Arity() int { return 1 }
func (o selectGradOp) Type() hm.Type {
	return hm.NewFnType(typeOf(o.out), typeOf(o.side()))
}
func (o selectGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.side().Clone(), nil }

func (o selectGradOp) Do(in ...G.Value) (G.Value, error) {
	g, _, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	return sumPicked(o.out, o.side(), g, o.first, func(_ []int, off int) bool { return o.pick[off] }), nil
}

func (o selectGradOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o selectGradOp) Hashcode() uint32      { return hashString(o.String()) }
func (o selectGradOp) String() string {
	return fmt.Sprintf("Grad%v(%v)", o.selectOp.String(), o.first)
}
func (selectGradOp) DiffWRT(int) []bool { return []bool{false} }

func (selectGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, noSymDiff("SelectGrad")
}
