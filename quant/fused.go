package quant

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// A fused rotation (QuaRot's R1) rotates a whole set of values that
// carry the same feature axis, typically a transformer's residual stream,
// by one orthogonal Q, and pays for it entirely in the weights:
//
//   - writers into the set (MatMul weights whose output enters it, Gather
//     embedding tables, constant operands of its Adds and Concats) get
//     their output features multiplied by Q;
//   - readers (MatMuls whose input is in the set) get Qᵀ on their input
//     side, so their outputs are unchanged and their weights, now QᵀW,
//     have their outliers spread;
//   - ops that keep the feature axis whole pass the rotation through:
//     Add of two rotated values, Transpose and Reshape that keep the last
//     axis last and whole, Gather/Slice/Concat/Expand along other axes,
//     Identity, Dropout; Shape reads are harmless.
//
// A LayerNorm (a LayerNormalization node, or the same written out node by
// node as opset-13 exports do) is not rotation-invariant: it subtracts
// the mean of the features, and the mean of xQ is not that of x. As QuaRot and
// SliceGPT do, when the set has LayerNorms every writer is first centred
// (its output features made zero-mean), so every value in the set has
// zero mean and the subtraction does nothing; the LayerNorm is then an
// RMSNorm, which commutes with Q (‖xQ‖ = ‖x‖). Its scale γ and shift β
// are folded into the readers of its output (W ← diag(γ)W, bias += βW)
// and its nodes are replaced by x/√(mean(x²)+ε) (Pow, ReduceMean, Add,
// Sqrt, Div, Mul by ones: the pattern onnxruntime fuses into its
// SimplifiedLayerNormalization kernel). This needs every linear reader
// of the set to read through a LayerNorm (pre-norm transformers); a
// LayerNorm output added back into the stream (post-norm) is refused.
//
// A value whose producer cannot take Q (a Conv patch embedding reshaped
// into tokens, a graph input) enters the set through one explicit d×d
// MatMul (with the centring folded in): a one-off cost at the model
// entry, not per layer. Anything else that reads a value of the set
// (graph outputs, non-linear ops) makes the whole set fall back to
// online rotation.

// fusedSet is one set of values rotated together.
type fusedSet struct {
	d      int
	status map[string]*graph.Node // value → LayerNorm it is the (passed-through) output of, nil for the stream
	order  []string
	lns    []*graph.Node
	norms  map[*graph.Node]*normInfo // by the node that writes the normalised output
	// writers and readers: MatMuls with a constant weight.
	writers, readers []*graph.Node
	tables           []*graph.Node // Gather of a constant table
	consts           []operand     // constant operands in the stream
	entries          []string      // values rotated by an explicit MatMul
	failed           string
}

type operand struct {
	n *graph.Node
	i int
}

type fuser struct {
	m      *graph.Model
	shapes *graph.Shapes
	outs   map[string]bool
	// norms holds the LayerNorms that can become RMSNorms, by the node
	// writing their output; memberOf maps each of their nodes to them.
	norms    map[*graph.Node]*normInfo
	memberOf map[*graph.Node]*normInfo
}

// normInfo is a LayerNorm over the last axis, as a LayerNormalization
// node or written out as opset-13 exports do:
//
//	x → ReduceMean → Sub(x, ·) → Pow(·, 2) → ReduceMean → Add(ε) → Sqrt
//	  → Div(Sub, ·) → Mul(γ) → [Add(β)] → y
type normInfo struct {
	x, y        string
	gamma, beta string // constant names; beta may be ""
	eps         float32
	d           int
	nodes       []*graph.Node // the last writes y
}

func (n *normInfo) last() *graph.Node { return n.nodes[len(n.nodes)-1] }

// findNorms collects the LayerNorms of the graph that rotation can turn
// into RMSNorms.
func (f *fuser) findNorms() {
	f.norms, f.memberOf = map[*graph.Node]*normInfo{}, map[*graph.Node]*normInfo{}
	for _, n := range f.m.Graph.Nodes {
		var info *normInfo
		switch {
		case n.Op() == "LayerNormalization" && n.Domain() == "":
			d, _, ok := f.lastDim(n.Input(0))
			if !ok || !f.rmsReady(n, d) {
				continue
			}
			info = &normInfo{x: n.Input(0), y: n.Output(0), gamma: n.Input(1), eps: n.FloatAttr("epsilon", 1e-5), d: d, nodes: []*graph.Node{n}}
			if len(n.Proto.Input) > 2 {
				info.beta = n.Input(2)
			}
		case n.Op() == "ReduceMean" && n.Domain() == "":
			info = f.matchWrittenOutNorm(n)
		}
		if info == nil {
			continue
		}
		f.norms[info.last()] = info
		for _, m := range info.nodes {
			f.memberOf[m] = info
		}
	}
}

// only returns the single consumer of value v, if it has exactly one and
// v is not a graph output.
func (f *fuser) only(v string) *graph.Node {
	cs := f.m.Graph.Consumers(v)
	if len(cs) != 1 || f.outs[v] {
		return nil
	}
	return cs[0]
}

// lastAxisMean reports whether n is a ReduceMean over the last axis of a
// rank-r input, keeping dims.
func (f *fuser) lastAxisMean(n *graph.Node) bool {
	if n == nil || n.Op() != "ReduceMean" || n.Domain() != "" || n.IntAttr("keepdims", 1) == 0 {
		return false
	}
	_, rank, ok := f.lastDim(n.Input(0))
	if !ok {
		return false
	}
	axes := n.IntsAttr("axes", nil)
	if len(n.Proto.Input) > 1 && n.Input(1) != "" {
		t, ok := f.m.Graph.Constant(n.Input(1))
		if !ok {
			return false
		}
		v, err := graph.Int64s(t)
		if err != nil {
			return false
		}
		axes = v
	}
	return len(axes) == 1 && (axes[0] == -1 || axes[0] == int64(rank-1))
}

// matchWrittenOutNorm matches the written-out LayerNorm starting at the
// ReduceMean mean (see normInfo), over the last axis, or returns nil.
func (f *fuser) matchWrittenOutNorm(mean *graph.Node) *normInfo {
	if !f.lastAxisMean(mean) {
		return nil
	}
	d, _, ok := f.lastDim(mean.Input(0))
	if !ok || d < 2 {
		return nil
	}
	ln, ok := graph.MatchLayerNorm(f.m.Graph, mean, func(c string) bool { return f.isVector(c, d) })
	if !ok || !f.lastAxisMean(ln.Variance) {
		return nil
	}
	return &normInfo{x: ln.X, y: ln.Y, gamma: ln.Gamma, beta: ln.Beta, eps: ln.Eps, d: d, nodes: ln.Nodes}
}

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

// normalizedBy returns the LayerNorm whose output v is, possibly through
// ops that pass the rotation through, or nil.
func (f *fuser) normalizedBy(v string, d int) *graph.Node {
	for range 64 {
		p := f.m.Graph.Producer(v)
		switch {
		case p == nil:
			return nil
		case f.norms[p] != nil && f.norms[p].y == v && f.norms[p].d == d:
			return p
		case p.Op() != "Concat" && f.passThrough(p, 0, d):
			v = p.Input(0)
		default:
			return nil
		}
	}
	return nil
}

// isTable reports whether name is a constant float [rows, d] table.
func (f *fuser) isTable(name string, d int) bool {
	t := f.m.Graph.Initializer(name)
	return t != nil && len(t.Dims) == 2 && t.Dims[1] == int64(d) && graph.DataTypeOf(t) == onnx.TensorProto_FLOAT
}

// rmsReady reports whether a LayerNormalization normalises the last axis
// of size d, has constant scale (and bias) and only its first output used.
func (f *fuser) rmsReady(n *graph.Node, d int) bool {
	if n.Domain() != "" {
		return false
	}
	_, rank, ok := f.lastDim(n.Input(0))
	if !ok {
		return false
	}
	if a := n.IntAttr("axis", -1); a != -1 && a != int64(rank-1) {
		return false
	}
	for i := 1; i < len(n.Proto.Input); i++ {
		if n.Input(i) == "" {
			continue
		}
		if !f.isVector(n.Input(i), d) {
			return false
		}
	}
	for i := 1; i < len(n.Proto.Output); i++ {
		if n.Output(i) != "" && len(f.m.Graph.Consumers(n.Output(i))) > 0 || f.outs[n.Output(i)] {
			return false
		}
	}
	return true
}

func (f *fuser) isVector(name string, d int) bool {
	t, ok := f.m.Graph.Constant(name)
	return ok && len(t.Dims) == 1 && t.Dims[0] == int64(d) && graph.DataTypeOf(t) == onnx.TensorProto_FLOAT
}

// rotateFused finds the sets of values that can carry a fused rotation
// and rotates them, one set at a time; it returns the names of the
// weights that absorbed one, for the online rotation to skip.
func rotateFused(m *graph.Model, o *Options, rep *Report) (map[string]bool, error) {
	rng := rand.New(rand.NewPCG(o.Seed, 0x2545f4914f6cdd1d))
	claimed := map[string]bool{}
	fused := map[string]bool{}
	sets, lns, entries := 0, 0, 0
	refused := map[string][]string{} // reason → layers
	var reasons []string
	for {
		shapes, err := graph.InferShapes(m)
		if err != nil {
			return nil, fmt.Errorf("quant: fused rotation: %w", err)
		}
		f := &fuser{m: m, shapes: shapes, outs: map[string]bool{}}
		for _, out := range m.Graph.Outputs {
			f.outs[out.Name] = true
		}
		f.findNorms()
		var s *fusedSet
		for _, l := range FindLayers(m, o.Exclude) {
			if l.Op() != "MatMul" || claimed[l.Input()] || fused[l.Weight] {
				continue
			}
			c := f.grow(l.Input(), l.In())
			for _, v := range c.order {
				claimed[v] = true
			}
			if c.failed == "" && rotationBlock(c.d, maxRotationBlock) < 2 {
				c.failed = fmt.Sprintf("K=%d has no even factor", c.d)
			}
			if c.failed != "" {
				why := c.failed
				if refused[why] == nil {
					reasons = append(reasons, why)
				}
				refused[why] = append(refused[why], l.Node.Name())
				continue
			}
			s = c
			break
		}
		if s == nil {
			break
		}
		e := newEditor(m)
		if err := applyFused(m, e, s, RandomHadamard(rotationBlock(s.d, maxRotationBlock), rng)); err != nil {
			return nil, err
		}
		for _, r := range s.readers {
			fused[r.Input(1)] = true // the rotated weight, named afresh
		}
		sets++
		lns += len(s.lns)
		entries += len(s.entries)
		if err := e.apply(); err != nil {
			return nil, err
		}
	}
	for _, why := range reasons {
		rep.note(o, "fused rotation: not at the input of %s: %s", strings.Join(refused[why], ", "), why)
	}
	if sets > 0 {
		rep.note(o, "rotation: %d MatMul layers read a fused rotation (%d rotated sets, %d LayerNorms turned into RMSNorm, %d explicit entry rotations)", len(fused), sets, lns, entries)
	}
	return fused, nil
}

// applyFused rewrites the weights and nodes of one set with Q = I ⊗ mb.
func applyFused(m *graph.Model, e *editor, s *fusedSet, mb Matrix) error {
	d, b := s.d, mb.Rows
	center := len(s.lns) > 0
	// rowsTimesQ rotates (after centring) every length-d row of v.
	rowsTimesQ := func(v []float32) []float32 {
		out := make([]float32, len(v))
		row := make([]float32, d)
		for r0 := 0; r0 < len(v); r0 += d {
			copy(row, v[r0:r0+d])
			if center {
				mean := 0.0
				for _, x := range row {
					mean += float64(x)
				}
				mean /= float64(d)
				for i := range row {
					row[i] -= float32(mean)
				}
			}
			for k0 := 0; k0 < d; k0 += b {
				for j := range b {
					acc := float32(0)
					for i := range b {
						acc += row[k0+i] * mb.Data[i*b+j]
					}
					out[r0+k0+j] = acc
				}
			}
		}
		return out
	}
	floats := func(name string) (*onnx.TensorProto, []float32, error) {
		t, ok := m.Graph.Constant(name)
		if !ok {
			return nil, nil, fmt.Errorf("quant: fused rotation: %s is not constant", name)
		}
		v, err := graph.Float32s(t)
		return t, v, err
	}
	// Weights of MatMuls, transformed in place of a copy; a MatMul may be
	// both a reader and a writer.
	weights := map[*graph.Node][]float32{}
	weight := func(n *graph.Node) ([]float32, []int64, error) {
		t, v, err := floats(n.Input(1))
		if err != nil {
			return nil, nil, err
		}
		if w, ok := weights[n]; ok {
			return w, t.Dims, nil
		}
		return slices.Clone(v), t.Dims, nil
	}
	for _, r := range s.readers {
		w, dims, err := weight(r)
		if err != nil {
			return err
		}
		k, n := int(dims[0]), int(dims[1])
		if ln := s.status[r.Input(0)]; ln != nil {
			info := s.norms[ln]
			// Fold γ into the rows and add βW to the bias.
			var beta []float32
			if info.beta != "" {
				if _, beta, err = floats(info.beta); err != nil {
					return err
				}
			}
			if beta != nil {
				bias := make([]float32, n)
				nonzero := false
				for i := range k {
					for j := range n {
						bias[j] += beta[i] * w[i*n+j]
					}
				}
				for _, x := range bias {
					nonzero = nonzero || x != 0
				}
				if nonzero {
					if err := addBias(m, e, r, bias); err != nil {
						return err
					}
				}
			}
			_, gamma, err := floats(info.gamma)
			if err != nil {
				return err
			}
			for i := range k {
				for j := range n {
					w[i*n+j] *= gamma[i]
				}
			}
		}
		weights[r] = rotateRows(Matrix{Rows: k, Cols: n, Data: w}, mb).Data
	}
	for _, wr := range s.writers {
		w, _, err := weight(wr)
		if err != nil {
			return err
		}
		weights[wr] = rowsTimesQ(w)
	}
	for n, w := range weights {
		t := m.Graph.Initializer(n.Input(1))
		n.Proto.Input[1] = e.init(graph.FloatTensor(n.Input(1)+"_rotated", t.Dims, w))
	}
	for _, g := range s.tables {
		t, v, err := floats(g.Input(0))
		if err != nil {
			return err
		}
		g.Proto.Input[0] = e.init(graph.FloatTensor(g.Input(0)+"_rotated", t.Dims, rowsTimesQ(v)))
	}
	for _, c := range s.consts {
		t, v, err := floats(c.n.Input(c.i))
		if err != nil {
			return err
		}
		c.n.Proto.Input[c.i] = e.init(graph.FloatTensor(sanitize(c.n.Input(c.i))+"_rotated", t.Dims, rowsTimesQ(v)))
	}
	for _, v := range s.entries {
		// x → Reshape[−1, d] → MatMul(C·Q) → Reshape(shape of x).
		full := NewMatrix(d, d)
		for i := range d {
			full.Data[i*d+i] = 1
		}
		mat := rowsTimesQ(full.Data) // rows of I, centred, times Q: C·Q
		mName := e.init(graph.FloatTensor(rotationPrefix+"_entry_"+sanitize(v), []int64{int64(d), int64(d)}, mat))
		flat := e.init(graph.Int64Tensor(rotationPrefix+"_entry_shape_"+sanitize(v), []int64{2}, []int64{-1, int64(d)}))
		shape, x1, x2, xr := e.out(v+"_shape"), e.out(v+"_rows"), e.out(v+"_rotated_rows"), e.out(v+"_rotated")
		nodes := []*onnx.NodeProto{
			e.node("Shape", "", v+"_entry_Shape", []string{v}, []string{shape}),
			e.node("Reshape", "", v+"_entry_Reshape", []string{v, flat}, []string{x1}),
			e.node("MatMul", "", v+"_entry_MatMul", []string{x1, mName}, []string{x2}),
			e.node("Reshape", "", v+"_entry_Restore", []string{x2, shape}, []string{xr}),
		}
		consumers := m.Graph.Consumers(v)
		if len(consumers) == 0 {
			continue
		}
		first := consumers[0]
		for _, c := range consumers {
			if c.Index < first.Index {
				first = c
			}
			for i, in := range c.Proto.Input {
				if in == v {
					c.Proto.Input[i] = xr
				}
			}
		}
		e.insertBefore(first, nodes...)
	}
	for _, ln := range s.lns {
		if err := replaceWithRMS(m, e, s.norms[ln], d); err != nil {
			return err
		}
	}
	return nil
}

// addBias adds bias (length N) to the output of MatMul n: into the
// constant operand of the Add that alone reads it, else with a new Add.
func addBias(m *graph.Model, e *editor, n *graph.Node, bias []float32) error {
	out := n.Output(0)
	if cs := m.Graph.Consumers(out); len(cs) == 1 && cs[0].Op() == "Add" {
		c := cs[0]
		for i := range 2 {
			if c.Input(i) == out {
				continue
			}
			t, ok := m.Graph.Constant(c.Input(i))
			if !ok || len(t.Dims) == 0 || t.Dims[len(t.Dims)-1] != int64(len(bias)) || graph.DataTypeOf(t) != onnx.TensorProto_FLOAT {
				break
			}
			v, err := graph.Float32s(t)
			if err != nil {
				return err
			}
			nv := slices.Clone(v)
			for j := range nv {
				nv[j] += bias[j%len(bias)]
			}
			c.Proto.Input[i] = e.init(graph.FloatTensor(sanitize(c.Input(i))+"_folded", t.Dims, nv))
			return nil
		}
	}
	tmp := e.out(out + "_unbiased")
	bName := e.init(graph.FloatTensor(sanitize(out)+"_folded_bias", []int64{int64(len(bias))}, bias))
	n.Proto.Output[0] = tmp
	e.insertBefore(n, e.node("Add", "", n.Name()+"_folded_bias", []string{tmp, bName}, []string{out}))
	return nil
}

// replaceWithRMS replaces a LayerNorm (scale and bias already folded
// into its readers) by y = x/√(mean(x²)+ε)·1.
func replaceWithRMS(m *graph.Model, e *editor, info *normInfo, d int) error {
	x, y, eps := info.x, info.y, info.eps
	ln := info.last()
	for _, n := range info.nodes[:len(info.nodes)-1] {
		e.replaceNode(n) // dropped: the RMSNorm replaces the whole pattern
	}
	base := ln.Name() + "_rms"
	two := e.init(graph.FloatTensor(rotationPrefix+"_two", nil, []float32{2}))
	epsName := e.init(graph.FloatTensor(rotationPrefix+"_eps_"+sanitize(ln.Name()), nil, []float32{eps}))
	ones := make([]float32, d)
	for i := range ones {
		ones[i] = 1
	}
	onesName := e.init(graph.FloatTensor(rotationPrefix+"_ones_"+sanitize(ln.Name()), []int64{int64(d)}, ones))
	sq, ms, v, r, q := e.out(base+"_sq"), e.out(base+"_mean"), e.out(base+"_var"), e.out(base+"_rms"), e.out(base+"_normed")
	var mean *onnx.NodeProto
	if m.OpsetVersion("") >= 18 {
		axes := e.init(graph.Int64Tensor(rotationPrefix+"_axes", []int64{1}, []int64{-1}))
		mean = e.node("ReduceMean", "", base+"_ReduceMean", []string{sq, axes}, []string{ms}, attrInt("keepdims", 1))
	} else {
		mean = e.node("ReduceMean", "", base+"_ReduceMean", []string{sq}, []string{ms}, attrInts("axes", -1), attrInt("keepdims", 1))
	}
	e.replaceNode(ln,
		e.node("Pow", "", base+"_Pow", []string{x, two}, []string{sq}),
		mean,
		e.node("Add", "", base+"_Add", []string{ms, epsName}, []string{v}),
		e.node("Sqrt", "", base+"_Sqrt", []string{v}, []string{r}),
		e.node("Div", "", base+"_Div", []string{x, r}, []string{q}),
		e.node("Mul", "", base+"_Mul", []string{q, onesName}, []string{y}))
	return nil
}
