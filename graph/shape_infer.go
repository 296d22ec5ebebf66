package graph

import (
	"fmt"

	"github.com/pare-dev/pare/onnx"
)

// InferOptions tunes InferShapesWith.
type InferOptions struct {
	// IgnoreValueInfo infers every value from the graph inputs,
	// initializers and constants alone. By default a value_info entry is
	// trusted where inference knows less, and overrides it (recording a
	// Conflict) where they disagree.
	IgnoreValueInfo bool
}

// InferShapes propagates element types and shapes from the graph inputs,
// initializers, Constant nodes and value_info through every node of the
// main graph. Ops without a rule give unknown outputs, not an error; a
// contradiction between known shapes is an error (ErrShapeMismatch).
func InferShapes(m *Model) (*Shapes, error) { return InferShapesWith(m, InferOptions{}) }

// InferShapesWith is InferShapes with options.
func InferShapesWith(m *Model, opts InferOptions) (*Shapes, error) {
	g := m.Graph
	s := &Shapes{shapes: map[string]TensorShape{}, consts: map[string]*cval{}}
	declared := map[string]TensorShape{}
	if !opts.IgnoreValueInfo {
		for _, vi := range g.Proto.ValueInfo {
			if t, ok := ShapeFromInfo(vi); ok {
				declared[vi.GetName()] = t
			}
		}
	}
	outputs := map[string]TensorShape{}
	for _, vi := range g.Proto.Output {
		if t, ok := ShapeFromInfo(vi); ok {
			outputs[vi.GetName()] = t
		}
	}
	s.seed(g, m.InputShapes)
	for _, n := range g.Nodes {
		c := &nodeCtx{s: s, g: g, n: n, opset: m.OpsetVersion(n.Domain())}
		if err := c.infer(); err != nil {
			return nil, fmt.Errorf("graph: node %q (%s): %w", n.Name(), n.Op(), err)
		}
		for _, out := range n.Proto.Output {
			if d, ok := declared[out]; ok {
				s.reconcile(out, d, true)
			} else if d, ok := outputs[out]; ok && !opts.IgnoreValueInfo {
				// A graph output's declaration is reconciled as its
				// producer runs, so that what reads it downstream sees
				// the declared symbols (a KV cache's "total" length,
				// which a Concat of past and new keys cannot name).
				s.reconcile(out, d, true)
			}
		}
	}
	for _, out := range g.Outputs {
		if d, ok := outputs[out.Name]; ok {
			s.reconcile(out.Name, d, !opts.IgnoreValueInfo)
		}
	}
	return s, nil
}

// seed records the graph inputs and initializers.
func (s *Shapes) seed(g *Graph, fixed map[string][]int64) {
	for _, v := range g.Inputs {
		if v.Info != nil {
			if t, ok := ShapeFromInfo(v.Info); ok {
				if dims, ok := fixed[v.Name]; ok {
					t = StaticShape(t.Elem, dims...)
				}
				s.shapes[v.Name] = t
			}
		}
	}
	for _, t := range g.Proto.Initializer {
		s.shapes[t.GetName()] = StaticShape(DataTypeOf(t), t.Dims...)
		if v := g.Value(t.GetName()); v != nil && !v.IsInput {
			if c := constFromTensor(t); c != nil {
				s.consts[t.GetName()] = c
			}
		}
	}
	for _, st := range g.Proto.SparseInitializer {
		s.shapes[st.GetValues().GetName()] = StaticShape(DataTypeOf(st.GetValues()), st.Dims...)
	}
}

// reconcile merges a declared shape into the inferred one: the declared
// shape fills what inference does not know and, when trust is set, wins
// where they disagree. Disagreements are recorded as Conflicts.
func (s *Shapes) reconcile(name string, declared TensorShape, trust bool) {
	inferred, ok := s.shapes[name]
	if !ok {
		if trust {
			s.shapes[name] = declared
		}
		return
	}
	conflict := false
	merged := inferred
	if declared.Elem != onnx.TensorProto_UNDEFINED {
		if inferred.Elem == onnx.TensorProto_UNDEFINED {
			merged.Elem = declared.Elem
		} else if inferred.Elem != declared.Elem {
			conflict = true
			merged.Elem = declared.Elem
		}
	}
	switch {
	case !declared.Ranked:
	case !inferred.Ranked:
		merged.Dims, merged.Ranked = declared.Dims, true
	case len(declared.Dims) != len(inferred.Dims):
		conflict = true
		merged.Dims = declared.Dims
	default:
		merged.Dims = append([]Dim(nil), inferred.Dims...)
		for i, d := range declared.Dims {
			switch id := inferred.Dims[i]; {
			case d.IsKnown() && id.IsKnown() && d != id:
				conflict = true
				merged.Dims[i] = d
			case id.IsUnknown():
				merged.Dims[i] = d
			}
		}
	}
	if conflict {
		s.Conflicts = append(s.Conflicts, Conflict{Value: name, Declared: declared, Inferred: inferred})
	}
	if trust {
		s.shapes[name] = merged
	}
}

// nodeCtx is what a shape rule sees of one node.
type nodeCtx struct {
	s     *Shapes
	g     *Graph
	n     *Node
	opset int64
}

func (c *nodeCtx) infer() error {
	rule := shapeRuleFor(c.n.Domain(), c.n.Op())
	if rule == nil {
		return nil
	}
	if err := rule(c); err != nil {
		return err
	}
	if fold := foldRuleFor(c.n.Domain(), c.n.Op()); fold != nil {
		if v := fold(c); v != nil && len(v.v) <= maxConstElems {
			c.s.consts[c.n.Output(0)] = v
		}
	}
	return nil
}

// has reports whether optional input i is present.
func (c *nodeCtx) has(i int) bool { return c.n.Input(i) != "" }

// in returns what is known of input i (an unranked, untyped shape when
// nothing is).
func (c *nodeCtx) in(i int) TensorShape {
	if name := c.n.Input(i); name != "" {
		return c.s.shapes[name]
	}
	return TensorShape{}
}

// out records output i.
func (c *nodeCtx) out(i int, t TensorShape) {
	if name := c.n.Output(i); name != "" {
		c.s.shapes[name] = t
	}
}

// value returns the known contents of input i.
func (c *nodeCtx) value(i int) (*cval, bool) {
	v := c.s.consts[c.n.Input(i)]
	return v, v != nil
}

// ints returns the contents of input i when every element is known.
func (c *nodeCtx) ints(i int) ([]int64, bool) {
	v, ok := c.value(i)
	if !ok {
		return nil, false
	}
	return v.ints()
}

// floats returns the contents of a constant float input (initializer or
// Constant node).
func (c *nodeCtx) floats(i int) ([]float32, bool) {
	t, ok := c.g.Constant(c.n.Input(i))
	if !ok || !IsFloat(DataTypeOf(t)) {
		return nil, false
	}
	f, err := Float32s(t)
	return f, err == nil
}

// mismatch builds an ErrShapeMismatch error.
func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrShapeMismatch, fmt.Sprintf(format, args...))
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, error) {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		return 0, mismatch("axis %d out of range for rank %d", axis, rank)
	}
	return int(axis), nil
}
