package grad

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

func init() { rules["Pad"] = padRule }

// padRule translates Pad in constant mode (the pads and the value from
// attributes before opset 11, from inputs after; the axes input of
// opset 18). reflect, edge and wrap modes are refused.
func padRule(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	if mode := n.StringAttr("mode", "constant"); mode != "constant" {
		return fmt.Errorf("%w: Pad mode %s (constant only)", ErrUnsupported, mode)
	}
	rank := x.Dims()
	var pads []int64
	value := 0.0
	if n.Attr("pads") != nil { // opset < 11
		pads = n.IntsAttr("pads", nil)
		value = float64(n.FloatAttr("value", 0))
	} else {
		if pads, err = t.ints(n.Input(1)); err != nil {
			return err
		}
		if c := n.Input(2); c != "" {
			tp, ok := t.m.Graph.Constant(c)
			if !ok {
				return fmt.Errorf("%w: Pad value %s is not a constant", ErrUnsupported, c)
			}
			f, err := graph.Float32s(tp)
			if err != nil || len(f) != 1 {
				return fmt.Errorf("%w: Pad value %s is not one float", ErrUnsupported, c)
			}
			value = float64(f[0])
		}
	}
	axes := make([]int, 0, rank)
	if a := n.Input(3); a != "" {
		as, err := t.ints(a)
		if err != nil {
			return err
		}
		for _, v := range as {
			if v < 0 {
				v += int64(rank)
			}
			axes = append(axes, int(v))
		}
	} else {
		for i := range rank {
			axes = append(axes, i)
		}
	}
	if len(pads) != 2*len(axes) {
		return fmt.Errorf("%w: %d pads for %d axes", ErrUnsupported, len(pads), len(axes))
	}
	before, after := make([]int, rank), make([]int, rank)
	for i, a := range axes {
		before[a], after[a] = int(pads[i]), int(pads[i+len(axes)])
		if before[a] < 0 || after[a] < 0 {
			return fmt.Errorf("%w: negative pads %v", ErrUnsupported, pads)
		}
	}
	y, err := Pad(x, before, after, value)
	if err != nil {
		return err
	}
	t.set(n, 0, y)
	return nil
}

// Pad pads x with value: before[a] entries ahead of axis a, after[a]
// behind it. Its gradient crops the padding off again.
func Pad(x *G.Node, before, after []int, value float64) (*G.Node, error) {
	return G.ApplyOp(padOp{box{before, after}, value}, x)
}

// box is the padding around a tensor, per axis.
type box struct{ before, after []int }

func (b box) String() string { return fmt.Sprintf("%v/%v", b.before, b.after) }

// outer is the shape of the padded tensor.
func (b box) outer(inner tensor.Shape) tensor.Shape {
	s := inner.Clone()
	for a := range s {
		s[a] += b.before[a] + b.after[a]
	}
	return s
}

// inner is the shape of the cropped tensor.
func (b box) inner(outer tensor.Shape) tensor.Shape {
	s := outer.Clone()
	for a := range s {
		s[a] -= b.before[a] + b.after[a]
	}
	return s
}

// each calls f with the offset of every element of the inner tensor
// in the inner and in the outer tensor.
func (b box) each(inner, outer tensor.Shape, f func(in, out int)) {
	st := strides(outer)
	eachIndex(inner, func(idx []int, off int) {
		o := 0
		for a, i := range idx {
			o += (i + b.before[a]) * st[a]
		}
		f(off, o)
	})
}

type padOp struct {
	b     box
	value float64
}

func (padOp) Arity() int    { return 1 }
func (padOp) Type() hm.Type { return sameType(1) }

func (o padOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	if len(s) != len(o.b.before) {
		return nil, fmt.Errorf("pad of rank %d for a tensor of rank %d", len(o.b.before), len(s))
	}
	return o.b.outer(s), nil
}

func (o padOp) Do(in ...G.Value) (G.Value, error) {
	x, s, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	os := o.b.outer(s)
	y := make([]float64, os.TotalSize())
	if o.value != 0 {
		for i := range y {
			y[i] = o.value
		}
	}
	o.b.each(s, os, func(i, j int) { y[j] = x[i] })
	return newDense(os, y), nil
}

func (padOp) ReturnsPtr() bool        { return false }
func (padOp) CallsExtern() bool       { return false }
func (padOp) OverwritesInput() int    { return -1 }
func (o padOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o padOp) Hashcode() uint32      { return hashString(o.String()) }
func (o padOp) String() string        { return fmt.Sprintf("Pad(%s, %g)", o.b, o.value) }
func (padOp) DiffWRT(int) []bool      { return []bool{true} }

func (o padOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(cropOp{o.b}, grad)
	return G.Nodes{g}, err
}

// cropOp removes the padding b: the adjoint of padOp.
type cropOp struct{ b box }

func (cropOp) Arity() int    { return 1 }
func (cropOp) Type() hm.Type { return sameType(1) }

func (o cropOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapeOf(in[0])
	if err != nil {
		return nil, err
	}
	return o.b.inner(s), nil
}

func (o cropOp) Do(in ...G.Value) (G.Value, error) {
	y, s, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	is := o.b.inner(s)
	x := make([]float64, is.TotalSize())
	o.b.each(is, s, func(i, j int) { x[i] = y[j] })
	return newDense(is, x), nil
}

func (cropOp) ReturnsPtr() bool        { return false }
func (cropOp) CallsExtern() bool       { return false }
func (cropOp) OverwritesInput() int    { return -1 }
func (o cropOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o cropOp) Hashcode() uint32      { return hashString(o.String()) }
func (o cropOp) String() string        { return "Crop(" + o.b.String() + ")" }
func (cropOp) DiffWRT(int) []bool      { return []bool{true} }

func (o cropOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(padOp{o.b, 0}, grad)
	return G.Nodes{g}, err
}
