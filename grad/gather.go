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

func init() { rules["Gather"] = gather }

// gather reads a float tensor at indices known at build time (a ViT's
// class token, a decoder's rotary table at the positions of the
// sequence, a token-type embedding at type 0), or looks up the rows of
// a table for indices computed from the token-id input (the ids
// themselves or a reshape of them). Indices that are neither are
// refused.
func gather(t *translator, n *graph.Node) error {
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	axis := int(n.IntAttr("axis", 0))
	if axis < 0 {
		axis += x.Dims()
	}
	if ids, ok := t.vals[n.Input(1)]; ok {
		return embedding(t, n, x, ids, axis)
	}
	idx, err := t.ints(n.Input(1))
	if err != nil {
		return err
	}
	ishape, err := t.intShape(n.Input(1), len(idx))
	if err != nil {
		return err
	}
	d := x.Shape()[axis]
	for i, v := range idx {
		if v < 0 {
			v += int64(d)
		}
		if v < 0 || v >= int64(d) {
			return fmt.Errorf("%w: Gather index %d outside an axis of %d", ErrUnsupported, idx[i], d)
		}
		idx[i] = v
	}
	if len(ishape) == 0 {
		// One index drops the axis: a slice, as gorgonia has it.
		sl := make([]tensor.Slice, x.Dims()) // nil: the whole axis
		sl[axis] = G.S(int(idx[0]))
		y, err := G.Slice(x, sl...)
		if err != nil {
			return err
		}
		t.set(n, 0, y)
		return nil
	}
	y, err := Take(x, axis, ints(idx), ishape)
	if err != nil {
		return err
	}
	return t.setInferred(n, 0, y)
}

// intShape is the static shape of the integer tensor name holding size
// values.
func (t *translator) intShape(name string, size int) ([]int, error) {
	if tp, ok := t.m.Graph.Constant(name); ok {
		return ints(tp.Dims), nil
	}
	if s, ok := t.statics[name]; ok {
		return s.shape, nil
	}
	s, ok := t.shapes.Of(name)
	dims, known := s.Ints()
	if !ok || !known {
		return nil, fmt.Errorf("%w: %s has no static shape", ErrUnsupported, name)
	}
	return ints(dims), nil
}

// embedding is Gather(table, ids) along axis 0 for ids computed from
// the token-id input: the ids are flattened to a column, looked up by
// Embed in the table seen as rows, and the rows reshaped to the
// output's inferred shape.
func embedding(t *translator, n *graph.Node, table, ids *G.Node, axis int) error {
	if axis != 0 || table.Dims() < 2 {
		return fmt.Errorf("%w: Gather by indices computed from the input of a table of shape %v along axis %d (rows of a table only)",
			ErrUnsupported, table.Shape(), axis)
	}
	if table.Dims() > 2 {
		s := table.Shape()
		var err error
		if table, err = G.Reshape(table, []int{s[0], s.TotalSize() / s[0]}); err != nil {
			return err
		}
	}
	col, err := G.Reshape(ids, []int{ids.Shape().TotalSize(), 1})
	if err != nil {
		return err
	}
	y, err := Embed(table, col)
	if err != nil {
		return err
	}
	return t.setInferred(n, 0, y)
}

// Take gathers x along axis at the static indices idx (row-major, of
// shape ishape, each in range): the output's shape is x's with the axis
// replaced by ishape. Its gradient adds each output element's gradient
// into the element it was read from (an index taken twice collects
// both).
func Take(x *G.Node, axis int, idx, ishape []int) (*G.Node, error) {
	return G.ApplyOp(newTakeOp(x.Shape(), axis, idx, ishape), x)
}

// takeOp is Gather at static indices of an input of shape in.
type takeOp struct {
	in     tensor.Shape
	axis   int
	idx    []int
	ishape []int
	key    uint32 // hash of the indices, for String
}

func newTakeOp(in tensor.Shape, axis int, idx, ishape []int) takeOp {
	h := fnv.New32a()
	for _, v := range idx {
		fmt.Fprint(h, v, ",")
	}
	return takeOp{in: in.Clone(), axis: axis, idx: idx, ishape: ishape, key: h.Sum32()}
}

func (o takeOp) out() tensor.Shape {
	s := append(tensor.Shape{}, o.in[:o.axis]...)
	s = append(s, o.ishape...)
	return append(s, o.in[o.axis+1:]...)
}

// blocks returns the sizes before the axis, of the axis and after it.
func (o takeOp) blocks() (outer, d, inner int) {
	outer, inner = 1, 1
	for _, v := range o.in[:o.axis] {
		outer *= v
	}
	for _, v := range o.in[o.axis+1:] {
		inner *= v
	}
	return outer, o.in[o.axis], inner
}

func (takeOp) Arity() int { return 1 }

// Type maps a tensor of the input's rank to one of the output's.
func (o takeOp) Type() hm.Type {
	return hm.NewFnType(G.TensorType{Dims: len(o.in), Of: G.Float64}, G.TensorType{Dims: len(o.out()), Of: G.Float64})
}

func (o takeOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.out(), nil }

func (o takeOp) Do(in ...G.Value) (G.Value, error) {
	x, _, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	outer, d, inner := o.blocks()
	k := len(o.idx)
	y := make([]float64, outer*k*inner)
	for a := range outer {
		for j, i := range o.idx {
			copy(y[(a*k+j)*inner:(a*k+j+1)*inner], x[(a*d+i)*inner:(a*d+i+1)*inner])
		}
	}
	return newDense(o.out(), y), nil
}

func (takeOp) ReturnsPtr() bool        { return false }
func (takeOp) CallsExtern() bool       { return false }
func (takeOp) OverwritesInput() int    { return -1 }
func (o takeOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o takeOp) Hashcode() uint32      { return hashString(o.String()) }
func (o takeOp) String() string {
	return fmt.Sprintf("Take(%v, axis %d, %d indices %v #%x)", o.in, o.axis, len(o.idx), o.ishape, o.key)
}
func (takeOp) DiffWRT(int) []bool { return []bool{true} }

func (o takeOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(takeGradOp{o}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

// takeGradOp scatters the gradient of a Take's output back into its
// input's shape.
type takeGradOp struct{ takeOp }

func (o takeGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.in.Clone(), nil }

func (o takeGradOp) Type() hm.Type {
	return hm.NewFnType(G.TensorType{Dims: len(o.out()), Of: G.Float64}, G.TensorType{Dims: len(o.in), Of: G.Float64})
}

func (o takeGradOp) Do(in ...G.Value) (G.Value, error) {
	g, _, err := data64(in[0])
	if err != nil {
		return nil, err
	}
	outer, d, inner := o.blocks()
	k := len(o.idx)
	dx := make([]float64, outer*d*inner)
	for a := range outer {
		for j, i := range o.idx {
			dst, src := dx[(a*d+i)*inner:(a*d+i+1)*inner], g[(a*k+j)*inner:(a*k+j+1)*inner]
			for e, v := range src {
				dst[e] += v
			}
		}
	}
	return newDense(o.in, dx), nil
}

func (o takeGradOp) WriteHash(h hash.Hash) { writeHash(h, o.String()) }
func (o takeGradOp) Hashcode() uint32      { return hashString(o.String()) }
func (o takeGradOp) String() string        { return "Grad" + o.takeOp.String() }
func (takeGradOp) DiffWRT(int) []bool      { return []bool{false} }

func (takeGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, noSymDiff("TakeGrad")
}
