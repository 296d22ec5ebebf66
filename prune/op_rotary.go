package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// Rotary position tables. A decoder exported from torch (Llama, Qwen2,
// Phi-3) builds its cos and sin tables in the graph from the positions
// and the inverse frequencies (Cos/Sin of their product, the frequencies
// concatenated twice), or slices cached tables by sequence length and
// gathers them by position id, and rotates each query and key head by
// q·cos + rotate_half(q)·sin. With Options.HeadDim the element-wise rule
// would freeze head_dim: the table is a full-size operand that is neither
// labeled nor constant. Pruning head_dim there is still exact when:
//
//   - rotate_half's Slices at D/2 (folded shape arithmetic, rewritten to
//     the kept count before D/2), its Neg and Concat move the labels, and
//     the Add of the two products couples position d with d + D/2: a
//     rotation pair goes whole or not at all, and the kept pairs stay in
//     matching order in both halves;
//   - the table is read at the kept positions only: a Gather of the kept
//     positions is inserted before the Mul. The table is position-wise,
//     so every kept product is unchanged.
//
// The Gather is exact for any operand of a Mul; it is offered only to
// tables produced by Cos or Sin, or cached in a float constant, through
// the ops below (their data input), and only with Options.HeadDim: any
// other computed full-size operand still freezes.

// rotaryTableOps may lie between the table and the Mul that reads it:
// they reshape, cast or select rows (positions) of it.
var rotaryTableOps = map[string]bool{
	"Unsqueeze": true, "Squeeze": true, "Cast": true, "Identity": true, "Expand": true,
	"Slice": true, "Gather": true,
}

// rotaryTable reports whether operand v of the element-wise node n is a
// rotary cos/sin table, full size on axis ax whose positions carry the
// labels l, and if so records the Gather that reads it at the kept
// positions.
func (a *Analysis) rotaryTable(v string, ax int, l []int32, n *graph.Node) bool {
	if !a.opts.HeadDim || n.Op() != "Mul" || n.Domain() != "" {
		return false
	}
	vs := a.shape(v)
	if vs == nil || ax < 0 || ax >= len(vs) || vs[ax] != int64(len(l)) {
		return false
	}
	in := -1
	for i, x := range n.Proto.Input {
		if x == v {
			if in >= 0 {
				return false
			}
			in = i
		}
	}
	if in < 0 || !a.fromCosSin(v) {
		return false
	}
	a.edits = append(a.edits, gatherKept{node: n, input: in, axis: ax, labels: l})
	return true
}

// fromCosSin: v is the output of a Cos or Sin, or a float constant,
// through rotaryTableOps (first input) only.
func (a *Analysis) fromCosSin(v string) bool {
	for range 8 {
		if a.isFloatConst(v) {
			return true
		}
		p := a.g.Producer(v)
		if p == nil || p.Domain() != "" {
			return false
		}
		switch {
		case p.Op() == "Cos" || p.Op() == "Sin":
			return true
		case rotaryTableOps[p.Op()]:
			v = p.Input(0)
		default:
			return false
		}
	}
	return false
}

// gatherKept makes input `input` of node read only the kept positions of
// its axis `axis`, whose positions carry labels: a Gather of the kept
// indices (an int64 initializer) is inserted before the node.
type gatherKept struct {
	node   *graph.Node
	input  int
	axis   int
	labels []int32
}

func (e gatherKept) apply(ap *applier) error {
	keep := ap.kept(e.labels)
	if countTrue(keep) == len(keep) {
		return nil
	}
	var idx []int64
	for i, k := range keep {
		if k {
			idx = append(idx, int64(i))
		}
	}
	g := ap.a.g
	src := e.node.Proto.Input[e.input]
	base := src + "_" + e.node.Name()
	idxName := ap.uniqueName(base + "_kept")
	g.Proto.Initializer = append(g.Proto.Initializer, graph.Int64Tensor(idxName, []int64{int64(len(idx))}, idx))
	out := ap.uniqueName(base + "_gathered")
	name, op := ap.uniqueName(e.node.Name()+"/GatherKept"), "Gather"
	gather := &onnx.NodeProto{Name: &name, OpType: &op, Input: []string{src, idxName}, Output: []string{out}}
	(&graph.Node{Proto: gather}).SetIntAttr("axis", int64(e.axis))
	at := -1
	for i, p := range g.Proto.Node {
		if p == e.node.Proto {
			at = i
			break
		}
	}
	if at < 0 {
		return fmt.Errorf("prune: node %q is not in the graph", e.node.Name())
	}
	g.Proto.Node = append(g.Proto.Node[:at], append([]*onnx.NodeProto{gather}, g.Proto.Node[at:]...)...)
	e.node.Proto.Input[e.input] = out
	return g.Reindex()
}
