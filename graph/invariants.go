package graph

import (
	"fmt"

	"github.com/pare-dev/pare/onnx"
)

// CheckInvariants verifies what every model pare writes must satisfy
// (RELIABILITY.md): an IR version and opset imports that agree with each
// other and cover every operator domain in use; nodes in topological
// order, in the main graph and in every subgraph; every value produced
// once; initializer names unique; every graph output produced; tensor
// data sized exactly dims × element size (sub-byte types packed);
// per-axis and blocked QuantizeLinear/DequantizeLinear scales matching
// the quantized axis where shapes are known; MatMulNBits weights, scales
// and zero points matching its K, N, bits and block_size attributes.
//
// It reads m.Proto only (m.Graph may be stale after edits) and returns
// the first violation, wrapping ErrInvalidModel and naming the node,
// value or tensor.
func CheckInvariants(m *Model) error {
	if m == nil || m.Proto == nil {
		return fmt.Errorf("graph: %w: no model", ErrInvalidModel)
	}
	mp := m.Proto
	if err := checkHeader(mp); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	if err := checkOpsets(mp); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	if err := checkScopes(mp.Graph, nil); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	if err := checkTensors(mp); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	g, err := NewGraph(mp.Graph)
	if err != nil {
		return err
	}
	for _, n := range g.Nodes {
		var err error
		switch {
		case (n.Op() == "QuantizeLinear" || n.Op() == "DequantizeLinear") &&
			(n.Domain() == "" || n.Domain() == "com.microsoft"):
			err = checkQDQ(g, n)
		case n.Op() == "MatMulNBits" && n.Domain() == "com.microsoft":
			err = checkMatMulNBits(g, n)
		}
		if err != nil {
			return fmt.Errorf("graph: %w: node %q (%s): %v", ErrInvalidModel, n.Name(), n.Op(), err)
		}
	}
	return nil
}

// minIRVersion is the lowest IR version that may carry the given version
// of the default ONNX opset (from the release table in onnx/helper.py).
func minIRVersion(opset int64) int64 {
	switch {
	case opset >= 23:
		return 11
	case opset >= 21:
		return 10
	case opset >= 19:
		return 9
	case opset >= 15:
		return 8
	case opset >= 12:
		return 7
	case opset == 11:
		return 6
	case opset == 10:
		return 5
	case opset == 9:
		return 4
	}
	return 3
}

// checkOpsets checks import versions and that the IR version is recent
// enough for the default domain's opset.
func checkOpsets(mp *onnx.ModelProto) error {
	for _, o := range mp.OpsetImport {
		if o.GetVersion() < 1 {
			return fmt.Errorf("%w: opset domain %q imported at version %d", ErrInvalidModel, o.GetDomain(), o.GetVersion())
		}
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			if need := minIRVersion(o.GetVersion()); mp.GetIrVersion() < need {
				return fmt.Errorf("%w: ir_version %d is too old for opset %d (needs %d)",
					ErrInvalidModel, mp.GetIrVersion(), o.GetVersion(), need)
			}
		}
	}
	return nil
}

// scope is the set of names visible in a graph: its own and, through
// parent, those of the graphs enclosing it.
type scope struct {
	names  map[string]bool
	parent *scope
}

func (s *scope) has(name string) bool {
	for ; s != nil; s = s.parent {
		if s.names[name] {
			return true
		}
	}
	return false
}

// checkScopes checks that gp defines each name once, that every node
// reads only names defined before it (in gp or an enclosing graph), and
// that every output is defined; then the same for each subgraph, which
// sees the names defined before its node.
func checkScopes(gp *onnx.GraphProto, outer *scope) error {
	local := &scope{names: map[string]bool{}, parent: outer}
	define := func(name, what string) error {
		if name == "" {
			return nil
		}
		if local.names[name] {
			return fmt.Errorf("%w: graph %q: %s %q is defined twice", ErrInvalidModel, gp.GetName(), what, name)
		}
		local.names[name] = true
		return nil
	}
	for _, in := range gp.Input {
		if err := define(in.GetName(), "input"); err != nil {
			return err
		}
	}
	inits := map[string]bool{}
	for _, t := range gp.Initializer {
		if inits[t.GetName()] {
			return fmt.Errorf("%w: graph %q: initializer %q appears twice", ErrInvalidModel, gp.GetName(), t.GetName())
		}
		inits[t.GetName()] = true
		local.names[t.GetName()] = true // an initializer may also be an input
	}
	for _, st := range gp.SparseInitializer {
		name := st.GetValues().GetName()
		if inits[name] {
			return fmt.Errorf("%w: graph %q: initializer %q appears twice", ErrInvalidModel, gp.GetName(), name)
		}
		inits[name] = true
		local.names[name] = true
	}
	produced := map[string]bool{}
	for _, n := range gp.Node {
		for _, o := range n.Output {
			produced[o] = true
		}
	}
	for _, n := range gp.Node {
		for _, in := range n.Input {
			if in == "" || local.has(in) {
				continue
			}
			if produced[in] {
				return fmt.Errorf("%w: graph %q: node %q (%s) reads %q before it is produced (nodes are not in topological order)",
					ErrInvalidModel, gp.GetName(), n.GetName(), n.GetOpType(), in)
			}
			return fmt.Errorf("%w: graph %q: node %q (%s) reads %q, which nothing produces",
				ErrInvalidModel, gp.GetName(), n.GetName(), n.GetOpType(), in)
		}
		for _, a := range n.Attribute {
			subs := a.Graphs
			if a.G != nil {
				subs = append([]*onnx.GraphProto{a.G}, subs...)
			}
			for _, sg := range subs {
				if err := checkScopes(sg, local); err != nil {
					return fmt.Errorf("node %q (%s) attribute %q: %w", n.GetName(), n.GetOpType(), a.GetName(), err)
				}
			}
		}
		for _, o := range n.Output {
			if err := define(o, "value"); err != nil {
				return fmt.Errorf("%w (node %q)", err, n.GetName())
			}
		}
	}
	for _, o := range gp.Output {
		if !local.has(o.GetName()) {
			return fmt.Errorf("%w: graph %q: output %q is never produced", ErrInvalidModel, gp.GetName(), o.GetName())
		}
	}
	return nil
}

// knownDims returns the static shape of name when it is known: from a
// constant, or from a declared type whose dims are all numbers.
func knownDims(g *Graph, name string) ([]int64, bool) {
	if name == "" {
		return nil, false
	}
	if t, ok := g.Constant(name); ok {
		return t.Dims, true
	}
	v := g.Value(name)
	if v == nil || v.Info == nil {
		return nil, false
	}
	tt := v.Info.GetType().GetTensorType()
	if tt == nil || tt.Shape == nil {
		return nil, false
	}
	dims := make([]int64, len(tt.Shape.Dim))
	for i, d := range tt.Shape.Dim {
		dv, ok := d.Value.(*onnx.TensorShapeProto_Dimension_DimValue)
		if !ok || dv.DimValue < 0 {
			return nil, false
		}
		dims[i] = dv.DimValue
	}
	return dims, true
}

func sameDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkQDQ checks the scale (and zero point) of a QuantizeLinear or
// DequantizeLinear node against the quantized tensor's shape: a scalar
// or one-element scale is per tensor; a 1-D scale is per axis and has
// one entry per index of the axis; with block_size > 0 the scale has the
// input's rank and ceil(d / block_size) entries along the axis.
func checkQDQ(g *Graph, n *Node) error {
	scale, ok := knownDims(g, n.Input(1))
	if !ok {
		return nil
	}
	if zp, ok := knownDims(g, n.Input(2)); ok && !sameDims(zp, scale) {
		return fmt.Errorf("zero point %q has shape %v, scale %q has %v", n.Input(2), zp, n.Input(1), scale)
	}
	x, xKnown := knownDims(g, n.Input(0))
	blockSize := n.IntAttr("block_size", 0)
	if blockSize < 0 {
		return fmt.Errorf("block_size %d", blockSize)
	}
	count, err := NumElements(scale)
	if err != nil {
		return fmt.Errorf("scale %q: %v", n.Input(1), err)
	}
	if blockSize == 0 && (len(scale) == 0 || (len(scale) == 1 && count == 1)) {
		return nil // per tensor
	}
	if blockSize == 0 && len(scale) != 1 {
		return fmt.Errorf("scale %q has shape %v; per-axis scales are 1-D", n.Input(1), scale)
	}
	if !xKnown {
		return nil
	}
	axis := n.IntAttr("axis", 1)
	if axis < 0 {
		axis += int64(len(x))
	}
	if axis < 0 || axis >= int64(len(x)) {
		return fmt.Errorf("axis %d out of range for input %q of shape %v", n.IntAttr("axis", 1), n.Input(0), x)
	}
	if blockSize == 0 {
		if scale[0] != x[axis] {
			return fmt.Errorf("scale %q has %d entries, axis %d of %q has %d", n.Input(1), scale[0], axis, n.Input(0), x[axis])
		}
		return nil
	}
	if len(scale) != len(x) {
		return fmt.Errorf("blocked scale %q has shape %v, input %q has rank %d", n.Input(1), scale, n.Input(0), len(x))
	}
	for i := range x {
		want := x[i]
		if int64(i) == axis {
			want = (x[i] + blockSize - 1) / blockSize
		}
		if scale[i] != want {
			return fmt.Errorf("blocked scale %q has shape %v; input %q of shape %v with block_size %d on axis %d needs %d at dim %d",
				n.Input(1), scale, n.Input(0), x, blockSize, axis, want, i)
		}
	}
	return nil
}

// checkMatMulNBits checks com.microsoft MatMulNBits: B is uint8
// [N, ceil(K/block_size), block_size·bits/8], scales hold
// N·ceil(K/block_size) values, zero points as many (float) or that many
// packed bits-wide values per row (uint8), bias N, and A's last dim is K.
func checkMatMulNBits(g *Graph, n *Node) error {
	k, nOut := n.IntAttr("K", 0), n.IntAttr("N", 0)
	bits, bs := n.IntAttr("bits", 4), n.IntAttr("block_size", 0)
	switch {
	case k <= 0 || nOut <= 0:
		return fmt.Errorf("K=%d and N=%d must be positive", k, nOut)
	case bits < 2 || bits > 8:
		return fmt.Errorf("bits=%d is not in 2..8", bits)
	case bs < 16 || bs&(bs-1) != 0:
		return fmt.Errorf("block_size=%d is not a power of two >= 16", bs)
	case k > 1<<40 || nOut > 1<<40:
		return fmt.Errorf("K=%d, N=%d are implausibly large", k, nOut)
	}
	blocks := (k + bs - 1) / bs
	blob := bs * bits / 8
	if a, ok := knownDims(g, n.Input(0)); ok && len(a) > 0 && a[len(a)-1] != k {
		return fmt.Errorf("input %q has shape %v; last dim must be K=%d", n.Input(0), a, k)
	}
	if b, ok := knownDims(g, n.Input(1)); ok {
		if want := []int64{nOut, blocks, blob}; !sameDims(b, want) {
			return fmt.Errorf("weight %q has shape %v; K=%d N=%d bits=%d block_size=%d need %v",
				n.Input(1), b, k, nOut, bits, bs, want)
		}
		if t, ok := g.Constant(n.Input(1)); ok && DataTypeOf(t) != onnx.TensorProto_UINT8 {
			return fmt.Errorf("weight %q is %v, not UINT8", n.Input(1), DataTypeOf(t))
		}
	}
	count := func(name string) (int64, bool, error) {
		dims, ok := knownDims(g, name)
		if !ok {
			return 0, false, nil
		}
		c, err := NumElements(dims)
		return c, true, err
	}
	if c, ok, err := count(n.Input(2)); err != nil {
		return fmt.Errorf("scales %q: %v", n.Input(2), err)
	} else if ok && c != nOut*blocks {
		return fmt.Errorf("scales %q hold %d values; N=%d × %d blocks need %d", n.Input(2), c, nOut, blocks, nOut*blocks)
	}
	if c, ok, err := count(n.Input(3)); err != nil {
		return fmt.Errorf("zero points %q: %v", n.Input(3), err)
	} else if ok {
		want := nOut * blocks
		if t, isConst := g.Constant(n.Input(3)); isConst && DataTypeOf(t) == onnx.TensorProto_UINT8 {
			want = nOut * ((blocks*bits + 7) / 8)
		}
		if c != want {
			return fmt.Errorf("zero points %q hold %d values; need %d", n.Input(3), c, want)
		}
	}
	if c, ok, err := count(n.Input(5)); err != nil {
		return fmt.Errorf("bias %q: %v", n.Input(5), err)
	} else if ok && c != nOut {
		return fmt.Errorf("bias %q holds %d values; N=%d", n.Input(5), c, nOut)
	}
	return nil
}
