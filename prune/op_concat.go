package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// Concat, Split, Slice and Gather. On the channel axis these are offset
// maps: Concat lays its inputs' labels end to end (inputs without labels
// contribute fixed positions), Split and Slice cut ranges out. Split
// sizes and Slice starts/ends are rewritten to the kept positions before
// each bound. Other axes pass through (Concat couples them across
// inputs). Gather on a labeled axis freezes.

func init() {
	register(ruleFunc(analyzeConcat), "Concat")
	register(ruleFunc(analyzeSplit), "Split")
	register(ruleFunc(analyzeSlice), "Slice")
	register(ruleFunc(analyzeGather), "Gather")
}

func fixedLabels(n int64) []int32 {
	l := make([]int32, n)
	for i := range l {
		l[i] = -1
	}
	return l
}

func analyzeConcat(a *Analysis, n *graph.Node) error {
	y := n.Output(0)
	var rank = -1
	labeled := false
	for _, in := range n.Proto.Input {
		s := a.shape(in)
		if s == nil || (rank >= 0 && len(s) != rank) {
			a.freezeInputs(n, n.Name()+": input of unknown rank")
			return nil
		}
		rank = len(s)
		labeled = labeled || a.lab(in) != nil
	}
	if rank < 0 {
		return nil
	}
	axis := normAxis(n.IntAttr("axis", 0), rank)
	if axis < 0 {
		return fmt.Errorf("%w: axis out of range", graph.ErrInvalidModel)
	}
	// Only channels on the concat axis itself need every input's size
	// there (a KV cache appends along a sequence of unknown length).
	onAxis := false
	for _, in := range n.Proto.Input {
		onAxis = onAxis || a.lab(in)[axis] != nil
	}
	out := append([]int64{}, a.shape(n.Input(0))...)
	out[axis] = 0
	var cat []int32
	for _, in := range n.Proto.Input {
		s := a.shape(in)
		if out[axis] >= 0 && s[axis] >= 0 {
			out[axis] += s[axis]
		} else {
			out[axis] = -1
		}
		if onAxis {
			switch l := a.lab(in)[axis]; {
			case l != nil:
				cat = append(cat, l...)
			case s[axis] >= 0:
				cat = append(cat, fixedLabels(s[axis])...)
			default:
				a.freezeInputs(n, n.Name()+": input of unknown size on the concat axis")
				return nil
			}
		}
	}
	a.setShape(y, out)
	if !labeled {
		return nil
	}
	a.setLab(y, axis, cat)
	// A graph input appended to along another axis is a KV cache only
	// when the result is returned as the present state.
	present := a.g.Value(y) != nil && a.g.Value(y).IsOutput
	for ax := 0; ax < rank; ax++ {
		if ax == axis {
			continue
		}
		var l []int32
		for _, in := range n.Proto.Input {
			if x := a.lab(in)[ax]; x != nil {
				if l == nil {
					l = x
				} else {
					a.union(l, x, n.Name())
				}
			}
		}
		if l == nil {
			continue
		}
		fixed := false
		for _, in := range n.Proto.Input {
			if a.lab(in)[ax] == nil && !a.constSource(in, ax, l, n) && !(present && a.cacheInput(in, ax, l, n)) {
				fixed = true
			}
		}
		if fixed {
			why := n.Name() + ": concatenated with a fixed tensor"
			if in := a.fixedGraphInput(n, ax); in != "" && a.opts.KeepInterface {
				why = n.Name() + ": concatenated with graph input " + in + " (--keep-interface)"
			}
			a.freeze(l, why)
			continue
		}
		a.setLab(y, ax, l)
	}
	return nil
}

func analyzeSplit(a *Analysis, n *graph.Node) error {
	x := n.Input(0)
	xs := a.shape(x)
	if xs == nil {
		a.freezeInputs(n, n.Name()+": unknown rank")
		return nil
	}
	axis := normAxis(n.IntAttr("axis", 0), len(xs))
	if axis < 0 {
		return fmt.Errorf("%w: axis out of range", graph.ErrInvalidModel)
	}
	k := len(n.Proto.Output)
	var sizes []int64
	asInput := a.Model.OpsetVersion("") >= 13
	if asInput && n.Input(1) != "" {
		t, ok := a.g.Constant(n.Input(1))
		if !ok {
			a.freezeInputs(n, n.Name()+": split sizes are not constant")
			return nil
		}
		sizes, _ = graph.Int64s(t)
	} else if s := n.IntsAttr("split", nil); !asInput && len(s) > 0 {
		sizes = s
	} else if xs[axis] >= 0 && xs[axis]%int64(k) == 0 {
		for range k {
			sizes = append(sizes, xs[axis]/int64(k))
		}
	}
	if len(sizes) != k {
		a.freezeInputs(n, n.Name()+": split sizes unknown")
		return nil
	}
	var off int64
	outs := make([]DimRef, k)
	for i, y := range n.Proto.Output {
		s := append([]int64{}, xs...)
		s[axis] = sizes[i]
		a.setShape(y, s)
		outs[i] = DimRef{y, axis}
		for ax, l := range a.lab(x) {
			if ax != axis {
				a.setLab(y, ax, l)
			} else if off+sizes[i] <= int64(len(l)) {
				a.setLab(y, ax, l[off:off+sizes[i]])
			}
		}
		off += sizes[i]
	}
	if a.lab(x)[axis] != nil {
		a.edits = append(a.edits, splitSizes{node: n, outs: outs, sizes: sizes, asInput: asInput})
	}
	return nil
}

func analyzeSlice(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	if xs == nil {
		a.freezeInputs(n, n.Name()+": unknown rank")
		return nil
	}
	r := len(xs)
	if a.Model.OpsetVersion("") < 10 {
		a.freezeInputs(n, n.Name()+": attribute-form Slice")
		return nil
	}
	ints := func(i int) ([]int64, bool) {
		if n.Input(i) == "" {
			return nil, true
		}
		// constants, or folded shape computations (replaced by
		// constants when a bound is rewritten)
		return a.computedInts(n, i)
	}
	starts, okS := ints(1)
	ends, okE := ints(2)
	axes, okA := ints(3)
	steps, okT := ints(4)
	if !okA {
		a.freezeInputs(n, n.Name()+": Slice axes are not constant")
		return nil
	}
	if axes == nil {
		for i := range r {
			axes = append(axes, int64(i))
		}
	}
	if okS && okE && (len(starts) != len(axes) || len(ends) != len(axes)) {
		return fmt.Errorf("%w: Slice starts/ends/axes lengths differ", graph.ErrInvalidModel)
	}
	out := append([]int64{}, xs...)
	sliced := map[int]int{}
	for i, ax := range axes {
		sliced[normAxis(ax, r)] = i
	}
	for ax := range r {
		i, isSliced := sliced[ax]
		l := a.lab(x)[ax]
		if !isSliced {
			a.setLab(y, ax, l)
			continue
		}
		if !okS || !okE || !okT || (steps != nil && steps[i] != 1) || xs[ax] < 0 {
			out[ax] = -1
			a.freeze(l, n.Name()+": Slice with unknown bounds or a step on the channel axis")
			continue
		}
		s, e := clampBound(starts[i], xs[ax]), clampBound(ends[i], xs[ax])
		e = max(e, s)
		out[ax] = e - s
		if l != nil {
			a.setLab(y, ax, l[s:e])
			a.edits = append(a.edits, sliceBounds{node: n, entry: i, start: s, end: e, dim: DimRef{x, ax}})
		}
	}
	a.setShape(y, out)
	return nil
}

// clampBound normalises a Slice bound for step 1.
func clampBound(b, size int64) int64 {
	if b < 0 {
		b += size
	}
	return min(max(b, 0), size)
}

func analyzeGather(a *Analysis, n *graph.Node) error {
	x, idx, y := n.Input(0), n.Input(1), n.Output(0)
	xs, is := a.shape(x), a.shape(idx)
	if a.lab(idx) != nil {
		a.freezeValue(idx, n.Name()+": used as indices")
	}
	if xs == nil || is == nil {
		a.freezeInputs(n, n.Name()+": unknown rank")
		return nil
	}
	axis := normAxis(n.IntAttr("axis", 0), len(xs))
	if axis < 0 {
		return fmt.Errorf("%w: axis out of range", graph.ErrInvalidModel)
	}
	out := append(append(append([]int64{}, xs[:axis]...), is...), xs[axis+1:]...)
	a.setShape(y, out)
	if axis == 0 && len(xs) == 2 && a.lab(x) == nil && a.isParam(x) && a.isFloatConst(x) {
		// A lookup table (token embedding): its columns are fresh
		// channels of the output's last axis.
		cols := a.newElems(int(xs[1]), n.Name())
		if a.addParam(x, 1, cols, KindWeightOut, n) {
			a.setLab(y, len(is), cols)
		}
		return nil
	}
	for ax, l := range a.lab(x) {
		switch {
		case ax < axis:
			a.setLab(y, ax, l)
		case ax == axis:
			a.freeze(l, n.Name()+": Gather on the channel axis")
		default:
			a.setLab(y, ax-1+len(is), l)
		}
	}
	return nil
}
