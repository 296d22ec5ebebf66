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

// channels is one channel set of the model (graph.ChannelSet, from the
// pruning analysis) as the fused rotation reads it: the values and
// constants whose last axis carries the set's d channels in order.
type channels struct {
	d   int
	has map[string]bool
}

// index keeps, of each channel set, the members whose channel axis is
// their last, and maps each such value to its set.
func (f *fuser) index(sets []graph.ChannelSet) {
	f.setOf = map[string]*channels{}
	for _, cs := range sets {
		c := &channels{d: cs.Channels, has: map[string]bool{}}
		for _, va := range cs.Axes {
			if d, rank, ok := f.lastDim(va.Value); ok && va.Axis == rank-1 && d == cs.Channels {
				c.has[va.Value] = true
				f.setOf[va.Value] = c
			}
		}
	}
}

// moves reports whether n only moves, copies or selects elements of its
// data input i into its output 0 while both carry the set's channels on
// their last axis. Which axes keep the channels whole and in order is
// the analysis' answer (a Transpose keeping the last axis last, a Gather,
// Slice or Concat along another axis, any Reshape that leaves the last
// axis alone); what is left here is that these ops only rearrange whole
// rows, so a rotation of the rows passes through them.
func (f *fuser) moves(n *graph.Node, i int, cs *channels) bool {
	if n.Domain() != "" || len(n.Proto.Output) == 0 || i >= len(n.Proto.Input) || !cs.has[n.Input(i)] || !cs.has[n.Output(0)] {
		return false
	}
	switch n.Op() {
	case "Identity", "Reshape", "Expand", "Squeeze", "Unsqueeze", "Transpose", "Gather", "Slice":
		return i == 0
	case "Dropout":
		return i == 0 && (len(n.Proto.Output) == 1 || n.Output(1) == "")
	case "Concat":
		return true
	}
	return false
}

// grow collects the part of channel set cs around value seed that one
// rotation can cover: it follows the set's members through the ops a
// rotation passes (Add, the row-moving ops of moves, LayerNorms) and
// classifies the weights around them; any other reader of a member
// refuses the set (s.failed says why). Which values carry the channels
// is cs's answer, not the walk's: a value the walk reaches that is not
// in cs refuses the set.
func (f *fuser) grow(seed string, cs *channels) *fusedSet {
	d := cs.d
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
	// add puts v in the set, normalised by ln (nil: the stream itself),
	// and returns why it cannot be ("" when it can).
	add := func(v string, ln *graph.Node) string {
		if !cs.has[v] {
			return fmt.Sprintf("%s does not carry the %d channels on its last axis", v, d)
		}
		if old, ok := s.status[v]; ok {
			if old != ln {
				return fmt.Sprintf("%s is both normalised and not", v)
			}
			return ""
		}
		s.status[v] = ln
		s.order = append(s.order, v)
		work = append(work, item{v, ln})
		return ""
	}
	seenConst := map[operand]bool{}
	// constant reports whether input i of n is a constant of the set
	// (rotated along with it).
	constant := func(n *graph.Node, i int) bool {
		if _, ok := f.m.Graph.Constant(n.Input(i)); !ok || !cs.has[n.Input(i)] {
			return false
		}
		if o := (operand{n, i}); !seenConst[o] {
			seenConst[o] = true
			s.consts = append(s.consts, o)
		}
		return true
	}
	if why := add(seed, f.normalizedBy(seed, cs)); why != "" {
		return fail("%s", why)
	}
	for len(work) > 0 {
		it := work[0]
		work = work[1:]
		v, ln := it.v, it.ln
		if f.outs[v] {
			return fail("%s is a graph output", v)
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
				if why := add(f.norms[ln].x, nil); why != "" {
					return fail("%s", why)
				}
			case ln != nil && f.moves(p, 0, cs):
				for i := range p.Proto.Input {
					if p.Op() != "Concat" && i > 0 {
						break
					}
					if why := add(p.Input(i), ln); why != "" {
						return fail("%s", why)
					}
				}
			case ln != nil:
				return fail("normalised value %s produced by %s", v, p)
			case p.Op() == "MatMul" && f.linear(p) && p.Output(0) == v:
				if !slices.Contains(s.writers, p) {
					s.writers = append(s.writers, p)
				}
			case p.Op() == "Gather" && p.IntAttr("axis", 0) == 0 && cs.has[p.Input(0)] && f.isTable(p.Input(0), d):
				s.tables = append(s.tables, p)
			case p.Op() == "Add":
				for i := range 2 {
					if constant(p, i) {
						continue
					}
					if _, isConst := f.m.Graph.Constant(p.Input(i)); isConst || add(p.Input(i), nil) != "" {
						return fail("Add %s: operand %s cannot be rotated", p.Name(), p.Input(i))
					}
				}
			case f.norms[p] != nil || p.Op() == "LayerNormalization":
				return fail("%s is a LayerNorm output reached as the stream", v)
			case f.moves(p, 0, cs):
				for i := range p.Proto.Input {
					if p.Op() != "Concat" && i > 0 {
						break
					}
					if constant(p, i) {
						continue
					}
					if why := add(p.Input(i), nil); why != "" {
						return fail("%s", why)
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
					if add(c.Input(i), nil) != "" {
						return fail("Add %s mixes normalised and stream values", c.Name())
					}
				}
				if why := add(c.Output(0), nil); why != "" {
					return fail("%s", why)
				}
			case ln == nil && f.memberOf[c] != nil && f.memberOf[c].x == v && f.memberOf[c].d == d:
				info := f.memberOf[c]
				key := info.last()
				if !slices.Contains(s.lns, key) {
					s.lns = append(s.lns, key)
					s.norms[key] = info
				}
				if why := add(info.y, key); why != "" {
					return fail("%s", why)
				}
			default:
				idx := slices.Index(c.Proto.Input, v)
				if idx < 0 || !f.moves(c, idx, cs) {
					return fail("%s reads %s", c, v)
				}
				if c.Op() == "Concat" {
					for i := range c.Proto.Input {
						if i == idx || constant(c, i) {
							continue
						}
						if add(c.Input(i), ln) != "" {
							return fail("Concat %s mixes normalised and stream values", c.Name())
						}
					}
				}
				if why := add(c.Output(0), ln); why != "" {
					return fail("%s", why)
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
