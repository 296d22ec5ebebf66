package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ioslice"
	"github.com/pare-dev/pare/onnx"
)

// edit is a rewrite, other than slicing a parameter, that pruning needs:
// an attribute or a shape constant whose value depends on how many
// channels of some dimension are kept.
type edit interface {
	apply(ap *applier) error
}

// applier holds the kept masks while a selection is applied.
type applier struct {
	a        *Analysis
	pruned   map[int32]bool  // class roots removed
	private  map[string]bool // constants copied for one node
	unshared map[string]int  // shared fill → readers given a copy
	io       ioslice.Map     // kept interface positions, nil until an interface axis shrinks (iface.go)
}

// kept returns the kept mask of a label array.
func (ap *applier) kept(l []int32) []bool {
	out := make([]bool, len(l))
	for i, e := range l {
		out[i] = e < 0 || !ap.pruned[ap.a.uf.find(e)]
	}
	return out
}

// keptCount returns how many positions of dim d survive; size is the
// dim's size when it carries no labels.
func (ap *applier) keptCount(d DimRef, size int64) int64 {
	l := ap.a.labels[d.Value][d.Axis]
	if l == nil {
		return size
	}
	return int64(countTrue(ap.kept(l)))
}

// keptBefore returns how many positions of dim d before pos survive.
func (ap *applier) keptBefore(d DimRef, pos int64) int64 {
	l := ap.a.labels[d.Value][d.Axis]
	if l == nil {
		return pos
	}
	k := ap.kept(l)
	var c int64
	for i := int64(0); i < pos && i < int64(len(k)); i++ {
		if k[i] {
			c++
		}
	}
	return c
}

func countTrue(b []bool) int {
	c := 0
	for _, v := range b {
		if v {
			c++
		}
	}
	return c
}

// Apply removes, from a.Model, every index of every group that keep does
// not list. keep maps a group id to its kept indices; groups not in keep
// are left whole. The analysis must have been made on a.Model and is
// spent afterwards.
func (a *Analysis) Apply(keep map[int][]int) error {
	ap := &applier{a: a, pruned: map[int32]bool{}, unshared: map[string]int{}}
	for gid, idx := range keep {
		if gid < 0 || gid >= len(a.Groups) {
			return fmt.Errorf("prune: %w: no group %d", ErrPlanMismatch, gid)
		}
		grp := a.Groups[gid]
		in := make([]bool, grp.Size)
		for _, i := range idx {
			if i < 0 || i >= grp.Size {
				return fmt.Errorf("prune: %w: group %d has no index %d", ErrPlanMismatch, gid, i)
			}
			in[i] = true
		}
		if countTrue(in) == grp.Size {
			continue
		}
		if grp.Frozen {
			return fmt.Errorf("prune: group %d is frozen (%s)", gid, grp.Reason)
		}
		if countTrue(in) == 0 {
			return fmt.Errorf("prune: %w: group %d would lose every channel", ErrInvalidOption, gid)
		}
		for i, k := range in {
			if !k {
				ap.pruned[grp.units[i]] = true
			}
		}
	}
	if len(ap.pruned) == 0 {
		return nil
	}
	if err := a.checkCovers(ap); err != nil {
		return err
	}
	for _, sl := range a.paramSlots(ap) {
		p, mask := sl.param, sl.mask
		if countTrue(mask) == len(mask) {
			continue
		}
		if p.reader != nil {
			if err := ap.unshare(p, mask); err != nil {
				return err
			}
			continue
		}
		t, err := a.mutableConst(p.key.tensor)
		if err != nil {
			return err
		}
		if err := sliceTensor(t, p.key.axis, mask); err != nil {
			return fmt.Errorf("prune: slice %q axis %d: %w", p.key.tensor, p.key.axis, err)
		}
	}
	for _, e := range a.edits {
		if err := e.apply(ap); err != nil {
			return err
		}
	}
	if ap.io != nil {
		if err := ap.io.Write(a.Model.Proto); err != nil {
			return err
		}
	}
	if err := ap.dropUnread(); err != nil {
		return err
	}
	a.dropStaleValueInfo(ap)
	if err := a.g.Reindex(); err != nil {
		return fmt.Errorf("prune: reindex: %w", err)
	}
	return nil
}

// paramSlot is one tensor axis to slice: its first param and the kept
// mask, a position kept when every facet of the axis keeps it.
type paramSlot struct {
	param *param
	mask  []bool
}

// paramSlots merges the facets of every parameter axis, in param order.
func (a *Analysis) paramSlots(ap *applier) []paramSlot {
	var out []paramSlot
	at := map[paramKey]int{}
	for _, k := range a.porder {
		p := a.params[k]
		mask := ap.kept(p.labels)
		base := paramKey{tensor: k.tensor, axis: k.axis, copy: k.copy}
		i, ok := at[base]
		if !ok {
			at[base] = len(out)
			out = append(out, paramSlot{p, mask})
			continue
		}
		for j := range out[i].mask {
			out[i].mask[j] = out[i].mask[j] && mask[j]
		}
	}
	return out
}

// dropStaleValueInfo removes value_info of every value whose labeled dims
// lost a position.
func (a *Analysis) dropStaleValueInfo(ap *applier) {
	changed := map[string]bool{}
	for v, axes := range a.labels {
		for _, l := range axes {
			if countTrue(ap.kept(l)) != len(l) {
				changed[v] = true
			}
		}
	}
	gp := a.g.Proto
	kept := gp.ValueInfo[:0]
	for _, vi := range gp.ValueInfo {
		if !changed[vi.GetName()] {
			kept = append(kept, vi)
		}
	}
	gp.ValueInfo = kept
}

// mutableConst returns the tensor proto behind a constant so that it can
// be edited in place: an initializer, or the value of a Constant node
// (converted to a tensor attribute when given as value_floats or
// value_ints).
func (a *Analysis) mutableConst(name string) (*onnx.TensorProto, error) {
	if t := a.g.Initializer(name); t != nil {
		return t, nil
	}
	p := a.g.Producer(name)
	if p == nil || p.Op() != "Constant" {
		return nil, fmt.Errorf("prune: %w: %q is not a constant", ErrUnsupported, name)
	}
	t, err := graph.ConstantNodeTensor(p.Proto)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	for _, at := range p.Proto.Attribute {
		if at.GetName() == "value" {
			return at.T, nil
		}
	}
	vn := "value"
	p.Proto.Attribute = []*onnx.AttributeProto{{Name: &vn, Type: onnx.AttributeProto_TENSOR.Enum(), T: t}}
	return t, nil
}

// sliceTensor keeps the positions of axis where keep is true.
func sliceTensor(t *onnx.TensorProto, axis int, keep []bool) error {
	if axis < 0 || axis >= len(t.Dims) || t.Dims[axis] != int64(len(keep)) {
		return fmt.Errorf("%w: dims %v, %d positions on axis %d", ErrPlanMismatch, t.Dims, len(keep), axis)
	}
	kept := make([]int, 0, countTrue(keep))
	for i, k := range keep {
		if k {
			kept = append(kept, i)
		}
	}
	return gatherAxis(t, axis, func(int64) []int { return kept })
}

// gatherAxis rewrites t so that position p of axis holds what position
// from(o)[p] held, o being the position over the axes before it. Every
// from(o) has the same length, the axis's new size: fewer positions
// slice it (sliceTensor), all of them in another order permute it
// (PermuteBlocks).
func gatherAxis(t *onnx.TensorProto, axis int, from func(outer int64) []int) error {
	dt := graph.DataTypeOf(t)
	bits := graph.Bits(dt)
	if bits < 8 {
		return fmt.Errorf("%w: element type %v", ErrUnsupported, dt)
	}
	if axis < 0 || axis >= len(t.Dims) {
		return fmt.Errorf("%w: dims %v, axis %d", ErrPlanMismatch, t.Dims, axis)
	}
	raw, err := graph.RawBytes(t)
	if err != nil {
		return err
	}
	outer := prod(t.Dims[:axis])
	inner := prod(t.Dims[axis+1:]) * int64(bits/8)
	n := t.Dims[axis]
	size := int64(len(from(0)))
	out := make([]byte, 0, outer*size*inner)
	for o := range outer {
		base := o * n * inner
		for _, q := range from(o) {
			out = append(out, raw[base+int64(q)*inner:base+int64(q+1)*inner]...)
		}
	}
	dims := append([]int64{}, t.Dims...)
	dims[axis] = size
	graph.SetRaw(t, dims, out)
	return nil
}

// --- edits ---------------------------------------------------------------

// groupAttr rewrites a convolution's group to the kept channels of dim
// over the channels per group: a depthwise Conv's kept inputs, or the
// kept whole groups of a grouped one (Options.ConvGroups).
type groupAttr struct {
	node *graph.Node
	dim  DimRef
	size int64
	per  int64 // channels of dim per group; 0 means 1
}

func (e groupAttr) apply(ap *applier) error {
	e.node.SetIntAttr("group", ap.keptCount(e.dim, e.size)/max(e.per, 1))
	return nil
}

// constEntry rewrites entry k of an int64 constant input of a node (a
// Reshape shape, a Split size) to the kept size of a dim.
type constEntry struct {
	node  *graph.Node
	input int
	entry int
	dim   DimRef
	size  int64
}

func (e constEntry) apply(ap *applier) error {
	return ap.rewriteInts(e.node, e.input, func(v []int64) error {
		if e.entry >= len(v) {
			return fmt.Errorf("prune: node %q: constant has no entry %d", e.node.Name(), e.entry)
		}
		v[e.entry] = ap.keptCount(e.dim, e.size)
		return nil
	})
}

// sliceBounds rewrites one axis of a Slice's starts and ends (step 1) to
// the kept positions before the original bounds.
type sliceBounds struct {
	node       *graph.Node
	entry      int
	start, end int64 // normalised to [0, size]
	dim        DimRef
}

func (e sliceBounds) apply(ap *applier) error {
	s, en := ap.keptBefore(e.dim, e.start), ap.keptBefore(e.dim, e.end)
	if err := ap.rewriteInts(e.node, 1, func(v []int64) error { v[e.entry] = s; return nil }); err != nil {
		return err
	}
	return ap.rewriteInts(e.node, 2, func(v []int64) error { v[e.entry] = en; return nil })
}

// splitSizes rewrites a Split's sizes (input or attribute) to the kept
// sizes of its outputs.
type splitSizes struct {
	node    *graph.Node
	outs    []DimRef
	sizes   []int64
	asInput bool
}

func (e splitSizes) apply(ap *applier) error {
	sizes := make([]int64, len(e.outs))
	for i, d := range e.outs {
		sizes[i] = ap.keptCount(d, e.sizes[i])
	}
	if !e.asInput {
		e.node.SetIntsAttr("split", sizes)
		return nil
	}
	if e.node.Input(1) == "" {
		name := ap.uniqueName(e.node.Name() + "_split")
		ap.a.g.Proto.Initializer = append(ap.a.g.Proto.Initializer, graph.Int64Tensor(name, []int64{int64(len(sizes))}, sizes))
		for len(e.node.Proto.Input) < 2 {
			e.node.Proto.Input = append(e.node.Proto.Input, "")
		}
		e.node.Proto.Input[1] = name
		// num_outputs (opset 18) and split are exclusive.
		at := e.node.Proto.Attribute[:0]
		for _, x := range e.node.Proto.Attribute {
			if x.GetName() != "num_outputs" {
				at = append(at, x)
			}
		}
		e.node.Proto.Attribute = at
		return nil
	}
	return ap.rewriteInts(e.node, 1, func(v []int64) error {
		if len(v) != len(sizes) {
			return fmt.Errorf("prune: node %q: split has %d sizes, %d outputs", e.node.Name(), len(v), len(sizes))
		}
		copy(v, sizes)
		return nil
	})
}

// rewriteInts edits the int constant at input i of node. A constant read
// by other nodes too is copied first so that they keep their value.
func (ap *applier) rewriteInts(n *graph.Node, i int, f func([]int64) error) error {
	name := n.Input(i)
	t, ok := ap.a.g.Constant(name)
	if !ok {
		if _, leaf := ap.a.leaves[inputRef{n.Proto, i}]; leaf {
			return ap.rewriteLeaves(n, i, f)
		}
		return ap.materialiseInts(n, i, f)
	}
	vals, err := graph.Int64s(t)
	if err != nil {
		return fmt.Errorf("prune: node %q: %w", n.Name(), err)
	}
	vals = append([]int64{}, vals...)
	if err := f(vals); err != nil {
		return err
	}
	if ap.sharedConst(name, n) {
		clone := ap.uniqueName(name + "_" + n.Name())
		nt := graph.Int64Tensor(clone, t.Dims, vals)
		nt.DataType = t.DataType
		if err := graph.SetInt64s(nt, t.Dims, vals); err != nil {
			return err
		}
		ap.a.g.Proto.Initializer = append(ap.a.g.Proto.Initializer, nt)
		n.Proto.Input[i] = clone
		ap.private[clone] = true
		return ap.a.g.Reindex()
	}
	mt, err := ap.a.mutableConst(name)
	if err != nil {
		return err
	}
	return graph.SetInt64s(mt, mt.Dims, vals)
}

// sharedConst reports whether the constant name is read by a node other
// than n (or is a graph output), before pare copied it for n.
func (ap *applier) sharedConst(name string, n *graph.Node) bool {
	if ap.private == nil {
		ap.private = map[string]bool{}
	}
	if ap.private[name] {
		return false
	}
	v := ap.a.g.Value(name)
	if v == nil {
		return false
	}
	if v.IsOutput {
		return true
	}
	for _, c := range v.Consumers {
		if c.Proto != n.Proto {
			return true
		}
	}
	return false
}

func (ap *applier) uniqueName(base string) string {
	name := base
	for k := 1; ap.a.g.Value(name) != nil || ap.taken(name); k++ {
		name = fmt.Sprintf("%s_%d", base, k)
	}
	return name
}

func (ap *applier) taken(name string) bool {
	for _, t := range ap.a.g.Proto.Initializer {
		if t.GetName() == name {
			return true
		}
	}
	return false
}
