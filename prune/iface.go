package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ioslice"
	"github.com/pare-dev/pare/onnx"
)

// The model's interface. Channels that reach a graph output freeze, as do
// channels facing a graph input, except for a decoder's KV cache: past
// keys and values come in as graph inputs and go out again, grown, as
// present outputs, with the heads (or head_dim) on an axis. Removing a
// KV head there must remove it from the cache too, or --kv-groups would
// change nothing on the decoders that need it most. So a graph input read
// only by the Concat that appends the new keys and returns the result as
// a graph output (or by an attention operator's past input) takes the
// labels of the tensor it meets, and a
// graph output whose labels all come from such caches is sliced with
// them. Apply rewrites the declared dims and records the kept positions
// in the model's metadata (package ioslice), from which onnxruntime
// sessions and checks feed the original's data. Options.KeepInterface
// freezes them instead.

// ioAxis is an axis of a graph input or output whose positions follow
// labels.
type ioAxis struct {
	value  string
	axis   int
	labels []int32
}

// cacheInput gives axis ax of the graph input v the labels l when v is
// a cache pare may slice: a graph input without a default, read only by
// node n, whose axis has len(l) positions. It reports whether it did.
func (a *Analysis) cacheInput(v string, ax int, l []int32, n *graph.Node) bool {
	val := a.g.Value(v)
	if a.opts.KeepInterface || val == nil || !val.IsInput || val.Initializer != nil || val.Sparse != nil {
		return false
	}
	for _, c := range a.g.Consumers(v) {
		if c != n {
			return false
		}
	}
	s := a.shape(v)
	if ax >= len(s) || s[ax] != int64(len(l)) || a.lab(v)[ax] != nil {
		return false
	}
	a.setLab(v, ax, l)
	a.cacheAxes = append(a.cacheAxes, ioAxis{v, ax, l})
	return true
}

// cacheOutput labels axis ax of an attention operator's present-state
// output with l: a graph output carrying only such labels is sliced.
func (a *Analysis) cacheOutput(v string, ax int, l []int32) {
	a.setLab(v, ax, l)
	a.cacheAxes = append(a.cacheAxes, ioAxis{v, ax, l})
}

// settleOutputs freezes the channels that reach a graph output, except
// for the axes made only of cache channels, which Apply slices.
func (a *Analysis) settleOutputs() {
	cache := map[int32]bool{}
	for _, c := range a.cacheAxes {
		for _, e := range c.labels {
			if e >= 0 {
				cache[a.uf.find(e)] = true
			}
		}
	}
	for _, out := range a.g.Outputs {
		for ax, l := range a.labels[out.Name] {
			if a.opts.KeepInterface || !a.allCache(l, cache) {
				a.freeze(l, "reaches graph output "+out.Name)
				continue
			}
			a.edits = append(a.edits, ioDim{ioAxis{out.Name, ax, l}})
		}
	}
	for _, c := range a.cacheAxes {
		if v := a.g.Value(c.value); v != nil && v.IsInput {
			a.edits = append(a.edits, ioDim{c})
		}
	}
}

// allCache reports whether l has labels and every one is of a cache
// class.
func (a *Analysis) allCache(l []int32, cache map[int32]bool) bool {
	labeled := false
	for _, e := range l {
		if e < 0 {
			continue
		}
		if !cache[a.uf.find(e)] {
			return false
		}
		labeled = true
	}
	return labeled
}

// ioDim rewrites the declared size of a graph input's or output's axis
// to its kept positions and records them (ioslice).
type ioDim struct{ ioAxis }

func (e ioDim) apply(ap *applier) error {
	kept := ap.kept(e.labels)
	n := countTrue(kept)
	if n == len(kept) {
		return nil
	}
	v := ap.a.g.Value(e.value)
	if v == nil || v.Info == nil {
		return fmt.Errorf("prune: graph input or output %q has no declaration", e.value)
	}
	if dims := v.Info.GetType().GetTensorType().GetShape().GetDim(); e.axis < len(dims) && dims[e.axis].GetDimParam() == "" {
		dims[e.axis].Value = &onnx.TensorShapeProto_Dimension_DimValue{DimValue: int64(n)}
	}
	var keep []int64
	for i, k := range kept {
		if k {
			keep = append(keep, int64(i))
		}
	}
	io, err := ap.interfaceMap()
	if err != nil {
		return err
	}
	io.Restrict(e.value, e.axis, int64(len(kept)), keep)
	return nil
}

// interfaceMap is the model's ioslice map, read once per Apply and
// written back after the edits.
func (ap *applier) interfaceMap() (ioslice.Map, error) {
	if ap.io == nil {
		m, err := ioslice.FromModel(ap.a.Model.Proto)
		if err != nil {
			return nil, err
		}
		ap.io = m
	}
	return ap.io, nil
}

// fixedGraphInput names an input of n without labels on axis ax that is
// a graph input, "" when there is none.
func (a *Analysis) fixedGraphInput(n *graph.Node, ax int) string {
	for _, in := range n.Proto.Input {
		if v := a.g.Value(in); v != nil && v.IsInput && v.Initializer == nil && a.lab(in)[ax] == nil {
			return in
		}
	}
	return ""
}
