package quant

import (
	"fmt"
	"slices"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// lastDim returns the static size of the last axis of a value.
func (f *fuser) lastDim(name string) (int, int, bool) {
	if t, ok := f.m.Graph.Constant(name); ok {
		if len(t.Dims) == 0 {
			return 0, 0, false
		}
		return int(t.Dims[len(t.Dims)-1]), len(t.Dims), true
	}
	s, ok := f.shapes.Of(name)
	if !ok || s.Rank() < 1 {
		return 0, 0, false
	}
	v, ok := s.Dims[s.Rank()-1].Value()
	return int(v), s.Rank(), ok
}

// linear reports whether n is a MatMul with a constant 2-D float weight
// as input 1 and a non-constant input 0.
func (f *fuser) linear(n *graph.Node) bool {
	if n.Op() != "MatMul" || n.Domain() != "" {
		return false
	}
	if _, ok := f.m.Graph.Constant(n.Input(0)); ok {
		return false
	}
	t := f.m.Graph.Initializer(n.Input(1))
	return t != nil && len(t.Dims) == 2 && graph.DataTypeOf(t) == onnx.TensorProto_FLOAT
}

// passThrough reports whether n moves data without mixing the last axis
// of its input `in` (index i) into its output 0, given the rotated size d.
func (f *fuser) passThrough(n *graph.Node, i, d int) bool {
	if n.Domain() != "" || len(n.Proto.Output) == 0 {
		return false
	}
	in, out := n.Input(i), n.Output(0)
	di, rank, ok1 := f.lastDim(in)
	do, _, ok2 := f.lastDim(out)
	if !ok1 || !ok2 || di != d || do != d || d < 2 {
		return false
	}
	switch n.Op() {
	case "Identity", "Reshape", "Expand", "Squeeze", "Unsqueeze":
		return i == 0
	case "Dropout":
		return i == 0 && (len(n.Proto.Output) == 1 || n.Output(1) == "")
	case "Transpose":
		perm := n.IntsAttr("perm", nil)
		return i == 0 && len(perm) > 0 && perm[len(perm)-1] == int64(len(perm)-1)
	case "Gather":
		axis := n.IntAttr("axis", 0)
		if axis < 0 {
			axis += int64(rank)
		}
		return i == 0 && axis != int64(rank-1)
	case "Concat":
		axis := n.IntAttr("axis", 0)
		if axis < 0 {
			axis += int64(rank)
		}
		return axis != int64(rank-1)
	case "Slice":
		if i != 0 {
			return false
		}
		if len(n.Proto.Input) > 3 && n.Input(3) != "" {
			t, ok := f.m.Graph.Constant(n.Input(3))
			if !ok {
				return false
			}
			axes, err := graph.Int64s(t)
			if err != nil {
				return false
			}
			for _, a := range axes {
				if a == -1 || a == int64(rank-1) {
					return false
				}
			}
			return true
		}
		t, ok := f.m.Graph.Constant(n.Input(1))
		return ok && len(t.Dims) == 1 && t.Dims[0] < int64(rank)
	}
	return false
}

// grow collects the set that contains value seed, of feature size d.
func (f *fuser) grow(seed string, d int) *fusedSet {
	s := &fusedSet{d: d, status: map[string]*graph.Node{}, norms: map[*graph.Node]*normInfo{}}
	fail := func(format string, args ...any) *fusedSet {
		if s.failed == "" {
			s.failed = fmt.Sprintf(format, args...)
		}
		return s
	}
	type item struct {
		v  string
		ln *graph.Node
	}
	var work []item
	add := func(v string, ln *graph.Node) bool {
		if old, ok := s.status[v]; ok {
			return old == ln
		}
		s.status[v] = ln
		s.order = append(s.order, v)
		work = append(work, item{v, ln})
		return true
	}
	seenConst := map[operand]bool{}
	constant := func(n *graph.Node, i int) bool {
		if _, ok := f.m.Graph.Constant(n.Input(i)); !ok {
			return false
		}
		if dd, _, ok := f.lastDim(n.Input(i)); !ok || dd != d {
			return false
		}
		if o := (operand{n, i}); !seenConst[o] {
			seenConst[o] = true
			s.consts = append(s.consts, o)
		}
		return true
	}
	add(seed, f.normalizedBy(seed, d))
	for len(work) > 0 {
		it := work[0]
		work = work[1:]
		v, ln := it.v, it.ln
		if f.outs[v] {
			return fail("%s is a graph output", v)
		}
		if dd, _, ok := f.lastDim(v); !ok || dd != d {
			return fail("%s: last axis not of static size %d", v, d)
		}
		// Where the value comes from.
		if p := f.m.Graph.Producer(v); p == nil {
			if _, isConst := f.m.Graph.Constant(v); isConst {
				return fail("%s is a constant reached as a value", v)
			}
			s.entries = append(s.entries, v)
		} else {
			switch {
			case ln != nil && p == ln:
				// The LayerNorm itself: its input is the stream.
				if !add(f.norms[ln].x, nil) {
					return fail("%s is both normalised and not", f.norms[ln].x)
				}
			case ln != nil && f.passThrough(p, 0, d):
				for i := range p.Proto.Input {
					if p.Op() != "Concat" && i > 0 {
						break
					}
					if !add(p.Input(i), ln) {
						return fail("%s is both normalised and not", p.Input(i))
					}
				}
			case ln != nil:
				return fail("normalised value %s produced by %s", v, p)
			case p.Op() == "MatMul" && f.linear(p) && p.Output(0) == v:
				if !slices.Contains(s.writers, p) {
					s.writers = append(s.writers, p)
				}
			case p.Op() == "Gather" && p.IntAttr("axis", 0) == 0 && f.isTable(p.Input(0), d):
				s.tables = append(s.tables, p)
			case p.Op() == "Add":
				for i := range 2 {
					if constant(p, i) {
						continue
					}
					if _, isConst := f.m.Graph.Constant(p.Input(i)); isConst || !add(p.Input(i), nil) {
						return fail("Add %s: operand %s cannot be rotated", p.Name(), p.Input(i))
					}
				}
			case f.norms[p] != nil || p.Op() == "LayerNormalization":
				return fail("%s is a LayerNorm output reached as the stream", v)
			case f.passThrough(p, 0, d):
				for i := range p.Proto.Input {
					if p.Op() != "Concat" && i > 0 {
						break
					}
					if constant(p, i) {
						continue
					}
					if !add(p.Input(i), nil) {
						return fail("%s is both normalised and not", p.Input(i))
					}
				}
			default:
				s.entries = append(s.entries, v)
			}
		}
		// Who reads it.
		for _, c := range f.m.Graph.Consumers(v) {
			switch {
			case c.Op() == "Shape":
			case c.Op() == "MatMul" && f.linear(c) && c.Input(0) == v:
				if !slices.Contains(s.readers, c) {
					s.readers = append(s.readers, c)
				}
			case c.Op() == "Add" && ln == nil:
				for i := range 2 {
					if c.Input(i) == v || constant(c, i) {
						continue
					}
					if !add(c.Input(i), nil) {
						return fail("Add %s mixes normalised and stream values", c.Name())
					}
				}
				if !add(c.Output(0), nil) {
					return fail("%s is both normalised and not", c.Output(0))
				}
			case ln == nil && f.memberOf[c] != nil && f.memberOf[c].x == v && f.memberOf[c].d == d:
				info := f.memberOf[c]
				key := info.last()
				if !slices.Contains(s.lns, key) {
					s.lns = append(s.lns, key)
					s.norms[key] = info
				}
				if !add(info.y, key) {
					return fail("%s is both normalised and not", info.y)
				}
			default:
				idx := slices.Index(c.Proto.Input, v)
				if idx < 0 || !f.passThrough(c, idx, d) {
					return fail("%s reads %s", c, v)
				}
				if c.Op() == "Concat" {
					for i := range c.Proto.Input {
						if i == idx || constant(c, i) {
							continue
						}
						if !add(c.Input(i), ln) {
							return fail("Concat %s mixes normalised and stream values", c.Name())
						}
					}
				}
				if !add(c.Output(0), ln) {
					return fail("%s is both normalised and not", c.Output(0))
				}
			}
		}
	}
	if len(s.lns) > 0 {
		for _, r := range s.readers {
			if s.status[r.Input(0)] == nil {
				return fail("%s reads the stream directly while LayerNorms need it centred", r)
			}
		}
	}
	for _, r := range s.readers {
		if s.status[r.Input(0)] != nil && slices.Contains(s.writers, r) {
			// Its folded β·W bias would have to be rotated as a writer's.
			return fail("%s reads a LayerNorm output and writes into the same set", r)
		}
	}
	if len(s.readers) == 0 {
		return fail("no MatMul reads it")
	}
	if len(s.writers)+len(s.tables) == 0 {
		return fail("no weight produces it (online instead)")
	}
	return s
}

// isTable reports whether name is a constant float [rows, d] table.
func (f *fuser) isTable(name string, d int) bool {
	t := f.m.Graph.Initializer(name)
	return t != nil && len(t.Dims) == 2 && t.Dims[1] == int64(d) && graph.DataTypeOf(t) == onnx.TensorProto_FLOAT
}

func (f *fuser) isVector(name string, d int) bool {
	t, ok := f.m.Graph.Constant(name)
	return ok && len(t.Dims) == 1 && t.Dims[0] == int64(d) && graph.DataTypeOf(t) == onnx.TensorProto_FLOAT
}
