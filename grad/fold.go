package grad

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/pare-dev/pare/graph"
)

// Float values that depend on neither the input's data nor the weights
// (a decoder's rotary Cos/Sin tables and its causal mask, computed from
// the sequence length) are evaluated once at build time: the node's
// rule runs on a scratch graph holding its constant inputs, and its
// outputs enter the net as constants. Ops that only ever see such
// values (Trilu, ConstantOfShape) then need no differentiable op, and
// the training graph carries no work that never changes.

func init() {
	rules["ConstantOfShape"] = constantOfShape
	rules["Trilu"] = trilu
	rules["ScatterND"] = scatterND
}

// constValue returns the build-time value of the float value name: a
// folded result or a float Constant (not an initializer, which is a
// weight or a frozen statistic).
func (t *translator) constValue(name string) (G.Value, bool) {
	if v, ok := t.consts[name]; ok {
		return v, true
	}
	if _, computed := t.vals[name]; computed || t.m.Graph.Initializer(name) != nil {
		return nil, false
	}
	tp, ok := t.m.Graph.Constant(name)
	if !ok || graph.DataType(tp.GetDataType()) != graph.DataType(1) {
		return nil, false
	}
	f, err := graph.Float32s(tp)
	if err != nil {
		return nil, false
	}
	data := make([]float64, len(f))
	for i, x := range f {
		data[i] = float64(x)
	}
	var v G.Value
	if len(tp.Dims) == 0 {
		v = G.NewF64(data[0])
	} else {
		v = newDense(tensor.Shape(ints(tp.Dims)), data)
	}
	t.consts[name] = v
	return v, true
}

// constantInputs reports whether every input of n is known at build
// time: a float constant or a static integer tensor.
func (t *translator) constantInputs(n *graph.Node) bool {
	some := false
	for _, in := range n.Proto.Input {
		if in == "" {
			continue
		}
		some = true
		if _, ok := t.constValue(in); ok {
			continue
		}
		if s, ok := t.shapes.Of(in); ok && s.Elem == graph.DataType(1) {
			return false
		}
		if _, err := t.ints(in); err != nil {
			return false
		}
	}
	return some
}

// fold runs rule r for n on a scratch graph of its constant inputs and
// keeps its outputs' values as constants of the net.
func (t *translator) fold(r rule, n *graph.Node) error {
	st := &translator{m: t.m, shapes: t.shapes, g: G.NewGraph(), vals: map[string]*G.Node{},
		frozen: t.frozen, consts: map[string]G.Value{}, statics: t.statics, net: &Net{byName: map[string]*G.Node{}}, folding: true}
	for _, in := range n.Proto.Input {
		if v, ok := t.constValue(in); ok && in != "" {
			st.vals[in] = constNode(st.g, in, v)
		}
	}
	if err := r(st, n); err != nil {
		return err
	}
	vm := G.NewTapeMachine(st.g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return fmt.Errorf("folding constants: %w", err)
	}
	for _, o := range n.Proto.Output {
		v, ok := st.vals[o]
		if !ok || v.Value() == nil {
			continue
		}
		var c G.Value
		switch x := v.Value().(type) {
		case *G.F64:
			c = G.NewF64(float64(*x))
		case tensor.Tensor:
			d, s, err := data64(x)
			if err != nil {
				return fmt.Errorf("folding constants: %s: %w", o, err)
			}
			if len(s) == 0 {
				// A rank-0 tensor (a one-element value reshaped to a
				// scalar) is a scalar: gorgonia's scalar ops refuse
				// to mix the two kinds.
				c = G.NewF64(d[0])
				break
			}
			c = newDense(s, append([]float64(nil), d...))
		default:
			return fmt.Errorf("folding constants: %s: value of type %T", o, x)
		}
		t.consts[o] = c
	}
	return nil
}

// constNode is a node of g holding the constant value v.
func constNode(g *G.ExprGraph, name string, v G.Value) *G.Node {
	if s, ok := v.(*G.F64); ok {
		return G.NewScalar(g, G.Float64, G.WithName(name), G.WithValue(float64(*s)))
	}
	d := v.(*tensor.Dense)
	return G.NewTensor(g, G.Float64, d.Dims(), G.WithShape(d.Shape().Clone()...), G.WithName(name), G.WithValue(d))
}

// setConst stores the build-time value v (row-major, of shape) as the
// node's output i.
func (t *translator) setConst(n *graph.Node, i int, shape []int, v []float64) {
	var val G.Value
	if len(shape) == 0 {
		val = G.NewF64(v[0])
	} else {
		val = newDense(tensor.Shape(shape), v)
	}
	t.set(n, i, constNode(t.g, n.Output(i), val))
}

// constantOfShape fills a static shape with the node's float value (an
// integer fill is a shape computation, folded before any rule runs).
func constantOfShape(t *translator, n *graph.Node) error {
	dims, err := t.ints(n.Input(0))
	if err != nil {
		return err
	}
	fill := 0.0
	if a := n.Attr("value"); a != nil && a.T != nil {
		if graph.DataType(a.T.GetDataType()) != graph.DataType(1) {
			return fmt.Errorf("%w: ConstantOfShape of data type %d on a float path", ErrUnsupported, a.T.GetDataType())
		}
		f, err := graph.Float32s(a.T)
		if err != nil || len(f) != 1 {
			return fmt.Errorf("%w: ConstantOfShape value is not one number", ErrUnsupported)
		}
		fill = float64(f[0])
	}
	shape := ints(dims)
	size := 1
	for _, d := range shape {
		size *= d
	}
	v := make([]float64, size)
	for i := range v {
		v[i] = fill
	}
	t.setConst(n, 0, shape, v)
	return nil
}

// trilu keeps the upper (or lower) triangle of the last two axes of a
// build-time constant, from diagonal k: the causal mask of a decoder.
func trilu(t *translator, n *graph.Node) error {
	if !t.folding {
		return fmt.Errorf("%w: Trilu of a value that depends on the input or weights", ErrUnsupported)
	}
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	d, s, err := data64(x.Value())
	if err != nil || len(s) < 2 {
		return fmt.Errorf("%w: Trilu of a value of shape %v", ErrUnsupported, s)
	}
	k := int64(0)
	if in := n.Input(1); in != "" {
		kk, err := t.ints(in)
		if err != nil || len(kk) != 1 {
			return fmt.Errorf("%w: Trilu diagonal %s is not one static integer", ErrUnsupported, in)
		}
		k = kk[0]
	}
	upper := n.IntAttr("upper", 1) != 0
	rows, cols := s[len(s)-2], s[len(s)-1]
	out := make([]float64, len(d))
	for off, v := range d {
		i, j := int64(off/cols%rows), int64(off%cols)
		if (upper && j-i >= k) || (!upper && j-i <= k) {
			out[off] = v
		}
	}
	t.setConst(n, 0, s.Clone(), out)
	return nil
}

// scatterND writes updates into a copy of a build-time constant at the
// index tuples of indices' last axis (a shifted-window attention mask
// built from constants); reduction none only.
func scatterND(t *translator, n *graph.Node) error {
	if !t.folding {
		return fmt.Errorf("%w: ScatterND of a value that depends on the input or weights", ErrUnsupported)
	}
	if r := n.StringAttr("reduction", "none"); r != "none" {
		return fmt.Errorf("%w: ScatterND with reduction %s", ErrUnsupported, r)
	}
	x, err := t.in(n, 0)
	if err != nil {
		return err
	}
	u, err := t.in(n, 2)
	if err != nil {
		return err
	}
	d, s, err := data64(x.Value())
	if err != nil {
		return fmt.Errorf("%w: ScatterND data: %v", ErrUnsupported, err)
	}
	upd, err := values64(u.Value())
	if err != nil {
		return fmt.Errorf("%w: ScatterND updates: %v", ErrUnsupported, err)
	}
	idx, err := t.staticOf(n.Input(1))
	if err != nil {
		return fmt.Errorf("%w: ScatterND indices: %v", ErrUnsupported, err)
	}
	k := idx.shape[len(idx.shape)-1]
	st := strides(s)
	slice := total(s[k:])
	out := append([]float64(nil), d...)
	tuples := len(idx.v) / max(k, 1)
	if len(upd) != tuples*slice {
		return fmt.Errorf("%w: ScatterND of %d updates for %d slices of %d", ErrUnsupported, len(upd), tuples, slice)
	}
	for j := range tuples {
		off := 0
		for a, i := range idx.v[j*k : (j+1)*k] {
			if i < 0 {
				i += int64(s[a])
			}
			if i < 0 || i >= int64(s[a]) {
				return fmt.Errorf("%w: ScatterND index %d outside an axis of %d", ErrUnsupported, i, s[a])
			}
			off += int(i) * st[a]
		}
		copy(out[off:off+slice], upd[j*slice:(j+1)*slice])
	}
	t.setConst(n, 0, s.Clone(), out)
	return nil
}
