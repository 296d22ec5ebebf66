package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// Computed shapes. Exporters write Reshape targets and Slice bounds as
// small integer subgraphs (Shape → Gather → Unsqueeze → Concat, sizes
// divided by the head count, ...) rather than constants. graph.InferShapes
// folds them. Where the folded value is static, or symbolic only in
// entries a Reshape can copy (0, same dim of the input) or infer (one
// −1), pare reads the input as that constant and, when a plan removes
// anything, replaces it by a fresh constant with the pruned sizes; the
// subgraph that computed it is left in place, unread.
//
// A Shape that exposes a channel dim is allowed when every value
// computed from it (through integer ops whose values are folded) ends in
// a Reshape shape or Slice bounds that pare replaces this way. The
// replacement does not depend on the exposed size, so it stays right
// when that size shrinks. Anything else reading the size (a
// ConstantOfShape, a Range, a float scale computed from a dim, a graph
// output) freezes the channel with the reader named.

// inputRef names one input of a node.
type inputRef struct {
	node  *onnx.NodeProto
	input int
}

// exposure is a set of channel labels whose size the graph computes with,
// safe as long as every sink is replaced by a constant.
type exposure struct {
	labels [][]int32
	sinks  []sinkRef
	reason string
}

type sinkRef struct {
	node  *graph.Node
	input int
}

// intOps are integer ops a shape computation may pass through.
var intOps = map[string]bool{
	"Gather": true, "Unsqueeze": true, "Squeeze": true, "Concat": true, "Cast": true,
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Mod": true, "Identity": true,
	"Neg": true, "Abs": true, "Max": true, "Min": true, "Slice": true, "Reshape": true,
	"Floor": true, "Ceil": true, "Equal": true, "Where": true,
}

// computedInts returns the integer values of input i of n: a constant's
// contents, or a folded shape computation (recorded so that Apply can
// replace it by a constant). For a Reshape shape, symbolic entries become
// 0 when they copy the same dim of the input and −1 otherwise (at most
// one −1 in all).
func (a *Analysis) computedInts(n *graph.Node, i int) ([]int64, bool) {
	name := n.Input(i)
	if name == "" {
		return nil, false
	}
	if t, ok := a.g.Constant(name); ok {
		v, err := graph.Int64s(t)
		return v, err == nil
	}
	ref := inputRef{n.Proto, i}
	if v, ok := a.computed[ref]; ok {
		return v, true
	}
	if a.inferred == nil {
		return nil, false
	}
	dims, ok := a.inferred.IntValue(name)
	if !ok || len(dims) == 0 {
		return a.leafInts(n, i)
	}
	reshape := n.Op() == "Reshape" && i == 1
	expand := n.Op() == "Expand" && i == 1
	var xd []graph.Dim
	if reshape || expand {
		if ts, ok := a.inferred.Of(n.Input(0)); ok && ts.Ranked {
			xd = ts.Dims
		}
	}
	vals := make([]int64, len(dims))
	infer := 0
	for k, d := range dims {
		switch v, _ := d.Value(); {
		case d.IsKnown():
			vals[k] = v
			if v == -1 && reshape {
				infer++
			}
		case d.IsSymbolic() && reshape:
			if n.IntAttr("allowzero", 0) == 0 && k < len(xd) && xd[k] == d {
				vals[k] = 0
			} else {
				vals[k] = -1
				infer++
			}
		case d.IsSymbolic() && expand:
			// 1 broadcasts to the input's size: right when the input
			// already has this size on the aligned axis.
			if ix := k - len(dims) + len(xd); ix >= 0 && xd != nil && xd[ix] == d {
				vals[k] = 1
			} else {
				return a.leafInts(n, i)
			}
		default:
			return a.leafInts(n, i)
		}
	}
	if reshape && infer > 1 {
		return a.leafInts(n, i)
	}
	if a.computed == nil {
		a.computed = map[inputRef][]int64{}
	}
	a.computed[ref] = vals
	return vals, true
}

// leafInts reads a computed Reshape or Expand shape that is a Concat of
// constant parts and parts computed at run time ([B, S] from Shape, then
// the literal [H, D]): the literal entries are known, the computed ones
// are returned as −1. Rather than replacing the whole shape by a constant
// (which needs every symbolic entry expressible as 0 or −1, and fails on
// [B·S, E] → [B, S, E]), Apply rewrites the literal part of the Concat
// (leafShape). Rules must not trust a −1 of a leaf shape on a labeled
// axis (isDynamicEntry).
func (a *Analysis) leafInts(n *graph.Node, i int) ([]int64, bool) {
	if (n.Op() != "Reshape" && n.Op() != "Expand") || i != 1 {
		return nil, false
	}
	c := a.g.Producer(n.Input(i))
	if c == nil || c.Op() != "Concat" || c.Domain() != "" || (c.IntAttr("axis", 0) != 0 && c.IntAttr("axis", 0) != -1) {
		return nil, false
	}
	var vals []int64
	var parts []leafPart
	for ci, in := range c.Proto.Input {
		if t, ok := a.g.Constant(in); ok {
			v, err := graph.Int64s(t)
			if err != nil || len(t.Dims) != 1 {
				return nil, false
			}
			for o, x := range v {
				vals = append(vals, x)
				parts = append(parts, leafPart{input: ci, offset: o})
			}
			continue
		}
		ts, ok := a.inferred.Of(in)
		if !ok || !ts.Ranked || len(ts.Dims) != 1 {
			return nil, false
		}
		k, ok := ts.Dims[0].Value()
		if !ok {
			return nil, false
		}
		for range k {
			vals = append(vals, -1)
			parts = append(parts, leafPart{input: -1})
		}
	}
	ref := inputRef{n.Proto, i}
	if a.computed == nil {
		a.computed = map[inputRef][]int64{}
	}
	if a.leaves == nil {
		a.leaves = map[inputRef]leafShape{}
	}
	a.computed[ref] = vals
	a.leaves[ref] = leafShape{concat: c, parts: parts}
	return vals, true
}

// leafShape records where each entry of a computed shape comes from: a
// constant input of its Concat (input, offset) or a computed one (−1).
type leafShape struct {
	concat *graph.Node
	parts  []leafPart
}

type leafPart struct{ input, offset int }

// isDynamicEntry reports whether entry k of input i of n is computed at
// run time (a leaf shape's computed part).
func (a *Analysis) isDynamicEntry(n *graph.Node, i, k int) bool {
	l, ok := a.leaves[inputRef{n.Proto, i}]
	return ok && k < len(l.parts) && l.parts[k].input < 0
}

// rewriteLeaves applies an edit of a leaf shape's entries to the
// constant parts of its Concat (copied when shared).
func (ap *applier) rewriteLeaves(n *graph.Node, i int, f func([]int64) error) error {
	ref := inputRef{n.Proto, i}
	l := ap.a.leaves[ref]
	old := ap.a.computed[ref]
	vals := append([]int64{}, old...)
	if err := f(vals); err != nil {
		return err
	}
	for k, v := range vals {
		if v == old[k] {
			continue
		}
		p := l.parts[k]
		if p.input < 0 {
			return fmt.Errorf("prune: node %q: shape entry %d is computed at run time", n.Name(), k)
		}
		if err := ap.rewriteInts(l.concat, p.input, func(c []int64) error { c[p.offset] = v; return nil }); err != nil {
			return err
		}
	}
	copy(old, vals)
	return nil
}

// shapeSinks follows a Shape output forward through folded integer ops
// and returns the inputs where its values end; why names the first
// reader that is not such an input.
func (a *Analysis) shapeSinks(v string) (sinks []sinkRef, why string) {
	if a.inferred == nil {
		return nil, "shape values not folded"
	}
	seen := map[string]bool{v: true}
	queue := []string{v}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if val := a.g.Value(cur); val != nil && val.IsOutput {
			return nil, "graph output " + cur
		}
		for _, c := range a.g.Consumers(cur) {
			for k, in := range c.Proto.Input {
				if in != cur {
					continue
				}
				switch {
				case c.Op() == "Reshape" && k == 1, c.Op() == "Expand" && k == 1, c.Op() == "Slice" && (k == 1 || k == 2):
					sinks = append(sinks, sinkRef{c, k})
				case c.Op() == "Shape" && c.Domain() == "":
					// The length of a shape vector (exporters build
					// ConstantOfShape(Shape(shape)) to test for −1 entries)
					// does not depend on the sizes in it.
				case intOps[c.Op()] && c.Domain() == "":
					for _, out := range c.Proto.Output {
						if _, ok := a.inferred.IntValue(out); !ok {
							return nil, fmt.Sprintf("%s (%s)", c.Name(), c.Op())
						}
						if !seen[out] {
							seen[out] = true
							queue = append(queue, out)
						}
					}
				default:
					return nil, fmt.Sprintf("%s (%s)", c.Name(), c.Op())
				}
			}
		}
	}
	return sinks, ""
}

// settleExposures freezes the exposed channels whose sinks cannot be
// replaced by constants, and schedules the replacement of the others.
func (a *Analysis) settleExposures() {
	done := map[inputRef]bool{}
	for _, e := range a.exposures {
		ok := true
		for _, s := range e.sinks {
			_, good := a.computedInts(s.node, s.input)
			if _, leaf := a.leaves[inputRef{s.node.Proto, s.input}]; leaf {
				good = false // its computed part would read the pruned size
			}
			if !good {
				ok = false
				for _, l := range e.labels {
					a.freeze(l, fmt.Sprintf("%s: read by %s, whose size is computed at run time in a way pare cannot rewrite", e.reason, s.node.Name()))
				}
				break
			}
		}
		if !ok {
			continue
		}
		for _, s := range e.sinks {
			ref := inputRef{s.node.Proto, s.input}
			if !done[ref] {
				done[ref] = true
				a.edits = append(a.edits, materialise{node: s.node, input: s.input})
			}
		}
	}
}

// materialise replaces a computed integer input by its constant value.
type materialise struct {
	node  *graph.Node
	input int
}

func (e materialise) apply(ap *applier) error {
	if _, ok := ap.a.g.Constant(e.node.Input(e.input)); ok {
		return nil // already replaced by another edit
	}
	if _, ok := ap.a.leaves[inputRef{e.node.Proto, e.input}]; ok {
		return nil // its literal parts are rewritten in place
	}
	return ap.rewriteInts(e.node, e.input, func([]int64) error { return nil })
}

// materialiseInts makes input i of n a fresh int64 constant holding the
// recorded value of its computation, edited by f.
func (ap *applier) materialiseInts(n *graph.Node, i int, f func([]int64) error) error {
	tmpl, ok := ap.a.computed[inputRef{n.Proto, i}]
	if !ok {
		return fmt.Errorf("prune: node %q: input %d is neither a constant nor a folded shape", n.Name(), i)
	}
	vals := append([]int64{}, tmpl...)
	if err := f(vals); err != nil {
		return err
	}
	name := ap.uniqueName(n.Input(i) + "_pruned")
	ap.a.g.Proto.Initializer = append(ap.a.g.Proto.Initializer, graph.Int64Tensor(name, []int64{int64(len(vals))}, vals))
	n.Proto.Input[i] = name
	if ap.private == nil {
		ap.private = map[string]bool{}
	}
	ap.private[name] = true
	return ap.a.g.Reindex()
}
