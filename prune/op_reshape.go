package prune

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
)

// Axis-moving ops. Transpose permutes labeled axes; Squeeze and Unsqueeze
// shift them. Flatten and Reshape are matched block by block: input and
// output dims are grouped into runs with equal products.
//
//   - one input axis to one output axis: labels copied;
//   - several input axes merged into one (Flatten [N,C,H,W] → [N,C·H·W]):
//     block expansion, channel c labels positions [c·H·W, (c+1)·H·W);
//   - one input axis split into several ([N,C,H,W] → [N,g,C/g,H,W], the
//     first half of a channel shuffle, or [.., H·D] → [.., H, D]): the
//     largest factor carries the labels and the positions that share its
//     coordinate are coupled;
//   - anything else touching a labeled axis freezes.
//
// A literal shape entry for a labeled output axis is rewritten to the
// kept size; 0 (copy) and -1 (infer) entries need nothing. Reshape with a
// computed shape freezes its input's channels. Expand passes channels
// when its shape has 1 there, else rewrites a literal entry.

func init() {
	register(ruleFunc(analyzeTranspose), "Transpose")
	register(ruleFunc(analyzeSqueeze), "Squeeze")
	register(ruleFunc(analyzeUnsqueeze), "Unsqueeze")
	register(ruleFunc(analyzeFlatten), "Flatten")
	register(ruleFunc(analyzeReshape), "Reshape")
	register(ruleFunc(analyzeExpand), "Expand")
}

func analyzeTranspose(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	if xs == nil {
		a.freezeInputs(n, n.Name()+": unknown rank")
		return nil
	}
	perm := n.IntsAttr("perm", nil)
	if perm == nil {
		for i := len(xs) - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != len(xs) {
		return fmt.Errorf("%w: perm %v for rank %d", graph.ErrInvalidModel, perm, len(xs))
	}
	out := make([]int64, len(xs))
	for j, p := range perm {
		if p < 0 || int(p) >= len(xs) {
			return fmt.Errorf("%w: perm %v", graph.ErrInvalidModel, perm)
		}
		out[j] = xs[p]
		a.setLab(y, j, a.lab(x)[int(p)])
	}
	a.setShape(y, out)
	return nil
}

// axesOf reads the axes attribute (older opsets) or input 1.
func (a *Analysis) axesOf(n *graph.Node, since int64) ([]int64, bool) {
	if a.Model.OpsetVersion("") < since {
		return n.IntsAttr("axes", nil), true
	}
	if n.Input(1) == "" {
		return nil, true
	}
	t, ok := a.g.Constant(n.Input(1))
	if !ok {
		return nil, false
	}
	v, err := graph.Int64s(t)
	return v, err == nil
}

func analyzeSqueeze(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	axes, ok := a.axesOf(n, 13)
	if xs == nil || !ok {
		a.freezeInputs(n, n.Name()+": unknown axes or rank")
		return nil
	}
	drop := map[int]bool{}
	for _, ax := range axes {
		drop[normAxis(ax, len(xs))] = true
	}
	if len(axes) == 0 {
		for i, d := range xs {
			if d == 1 {
				drop[i] = true
			} else if d < 0 {
				a.freezeInputs(n, n.Name()+": squeeze of unknown dims")
				return nil
			}
		}
	}
	var out []int64
	for i, d := range xs {
		if drop[i] {
			a.freeze(a.lab(x)[i], n.Name()+": squeezes the channel axis")
			continue
		}
		a.setLab(y, len(out), a.lab(x)[i])
		out = append(out, d)
	}
	a.setShape(y, out)
	return nil
}

func analyzeUnsqueeze(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	axes, ok := a.axesOf(n, 13)
	if xs == nil || !ok {
		a.freezeInputs(n, n.Name()+": unknown axes or rank")
		return nil
	}
	r := len(xs) + len(axes)
	ins := map[int]bool{}
	for _, ax := range axes {
		ins[normAxis(ax, r)] = true
	}
	out := make([]int64, 0, r)
	src := 0
	for j := 0; j < r; j++ {
		if ins[j] {
			out = append(out, 1)
			continue
		}
		if src >= len(xs) {
			return fmt.Errorf("%w: Unsqueeze axes %v", graph.ErrInvalidModel, axes)
		}
		a.setLab(y, j, a.lab(x)[src])
		out = append(out, xs[src])
		src++
	}
	a.setShape(y, out)
	return nil
}

func analyzeFlatten(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	if xs == nil {
		a.freezeInputs(n, n.Name()+": unknown rank")
		return nil
	}
	axis := normAxis(n.IntAttr("axis", 1), len(xs)+1)
	if axis < 0 {
		return fmt.Errorf("%w: Flatten axis", graph.ErrInvalidModel)
	}
	a.setShape(y, []int64{prod(xs[:axis]), prod(xs[axis:])})
	// Flatten is a Reshape with two output blocks.
	a.mapBlock(n, x, y, xs, seq(0, axis), 0, -1)
	a.mapBlock(n, x, y, xs, seq(axis, len(xs)), 1, -1)
	return nil
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// mapBlock maps labels of the input axes ins (merged, in order) onto the
// single output axis out; shapeEntry ≥ 0 is the Reshape shape entry to
// rewrite.
func (a *Analysis) mapBlock(n *graph.Node, x, y string, xs []int64, ins []int, out int, shapeEntry int) {
	lab := -1
	for _, i := range ins {
		if a.lab(x)[i] == nil {
			continue
		}
		if lab >= 0 {
			a.freezeValue(x, n.Name()+": merges two channel axes")
			return
		}
		lab = i
	}
	if lab < 0 {
		return
	}
	if len(ins) == 1 {
		a.setLab(y, out, a.lab(x)[lab])
		a.rewriteShapeEntry(n, y, out, shapeEntry)
		return
	}
	dims := make([]int64, len(ins))
	for k, i := range ins {
		dims[k] = xs[i]
	}
	total := prod(dims)
	if total < 0 || total > 1<<26 {
		a.freeze(a.lab(x)[lab], n.Name()+": merged dims are not static")
		return
	}
	// stride of the labeled axis within the merged block
	stride := int64(1)
	for k := len(ins) - 1; ins[k] != lab; k-- {
		stride *= dims[k]
	}
	l := a.lab(x)[lab]
	size := int64(len(l))
	res := make([]int32, total)
	for p := range res {
		res[p] = l[(int64(p)/stride)%size]
	}
	a.setLab(y, out, res)
	a.rewriteShapeEntry(n, y, out, shapeEntry)
}

func (a *Analysis) rewriteShapeEntry(n *graph.Node, y string, axis, entry int) {
	if entry < 0 {
		return
	}
	t, _ := a.g.Constant(n.Input(1))
	v, _ := graph.Int64s(t)
	if entry < len(v) && v[entry] > 0 {
		a.edits = append(a.edits, constEntry{node: n, input: 1, entry: entry, dim: DimRef{y, axis}, size: v[entry]})
	}
}

func analyzeReshape(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	_, isConst := a.g.Constant(n.Input(1))
	sh, ok := a.computedInts(n, 1)
	if !ok {
		a.freezeValue(x, n.Name()+": Reshape to a shape computed at run time in a way pare cannot rewrite")
		return nil
	}
	var out []int64
	var err error
	aligned := false
	var ib, ob [][]int
	if xs != nil {
		if out, err = reshapeDims(xs, sh, n.IntAttr("allowzero", 0) == 1); err == nil {
			ib, ob, aligned = alignReshape(xs, out)
		}
	}
	if !isConst || !aligned || (a.lab(x) != nil && a.feedsAttention(y)) {
		// Symbolic dims folded with channels, or attention heads.
		xd, okx := a.factorDims(x)
		yd, oky := a.factorDims(y)
		if !okx || !oky {
			if out != nil && err == nil {
				a.setShape(y, out)
			}
			a.freezeValue(x, n.Name()+": Reshape of unknown shape")
			return nil
		}
		a.reshapeFactored(n, x, y, xd, yd, sh)
		return nil
	}
	a.setShape(y, out)
	for b := range ib {
		ins, outs := ib[b], ob[b]
		switch {
		case len(outs) == 1:
			a.mapBlock(n, x, y, xs, ins, outs[0], outs[0])
		case len(ins) == 1 && a.lab(x)[ins[0]] != nil:
			a.splitAxis(n, x, y, ins[0], out, outs)
		case len(ins) == 0:
		default:
			for _, i := range ins {
				a.freeze(a.lab(x)[i], n.Name()+": Reshape regroups the channel axis")
			}
		}
	}
	return nil
}

// splitAxis spreads input axis in over output axes outs; the largest
// factor carries the labels.
func (a *Analysis) splitAxis(n *graph.Node, x, y string, in int, out []int64, outs []int) {
	l := a.lab(x)[in]
	carrier := outs[0]
	for _, o := range outs {
		if out[o] >= out[carrier] {
			carrier = o
		}
	}
	dims := make([]int64, len(outs))
	ci := 0
	for k, o := range outs {
		dims[k] = out[o]
		if o == carrier {
			ci = k
		}
	}
	stride := int64(1)
	for k := len(outs) - 1; k > ci; k-- {
		stride *= dims[k]
	}
	size := dims[ci]
	res := make([]int32, size)
	for i := range res {
		res[i] = -2
	}
	for p := range l {
		c := (int64(p) / stride) % size
		if res[c] == -2 {
			res[c] = l[p]
		} else {
			a.union(res[c:c+1], l[p:p+1], n.Name()+": channel split across axes")
		}
	}
	a.setLab(y, carrier, res)
	a.rewriteShapeEntry(n, y, carrier, carrier)
}

// reshapeDims resolves a Reshape shape against the input shape; a -1
// output dim stays unknown only when the input has unknown dims.
func reshapeDims(xs, sh []int64, allowZero bool) ([]int64, error) {
	out := make([]int64, len(sh))
	infer := -1
	for i, d := range sh {
		switch {
		case d == 0 && !allowZero:
			if i >= len(xs) {
				return nil, fmt.Errorf("shape copies missing dim %d", i)
			}
			out[i] = xs[i]
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("two -1 entries")
			}
			infer = i
		case d < 0:
			return nil, fmt.Errorf("bad shape entry %d", d)
		default:
			out[i] = d
		}
	}
	if infer >= 0 {
		out[infer] = -1
		// Cancel unknown dims copied by 0 against themselves.
		known := int64(1)
		unknownIn := 0
		for i, d := range xs {
			if d < 0 {
				if i < len(sh) && sh[i] == 0 && !allowZero {
					continue
				}
				unknownIn++
				continue
			}
			known *= d
		}
		knownOut := int64(1)
		for i, d := range out {
			if i == infer || (d < 0 && i < len(xs) && sh[i] == 0) {
				continue
			}
			knownOut *= d
		}
		if unknownIn == 0 {
			if knownOut == 0 || known%knownOut != 0 {
				return nil, fmt.Errorf("cannot infer -1")
			}
			out[infer] = known / knownOut
		}
	}
	return out, nil
}

// alignReshape groups input and output axes into blocks of equal
// product. Unknown dims must face each other one to one (the batch). Size-1
// dims not needed to close a block form their own empty-sided blocks.
func alignReshape(xs, out []int64) (ib, ob [][]int, ok bool) {
	i, j := 0, 0
	for i < len(xs) || j < len(out) {
		switch {
		case i < len(xs) && xs[i] == 1:
			ib, ob = append(ib, []int{i}), append(ob, nil)
			i++
			continue
		case j < len(out) && out[j] == 1:
			ib, ob = append(ib, nil), append(ob, []int{j})
			j++
			continue
		case i >= len(xs) || j >= len(out):
			return nil, nil, false
		case xs[i] < 0 || out[j] < 0:
			if xs[i] >= 0 || out[j] >= 0 {
				return nil, nil, false
			}
			ib, ob = append(ib, []int{i}), append(ob, []int{j})
			i, j = i+1, j+1
			continue
		}
		bi, bj := []int{i}, []int{j}
		pi, pj := xs[i], out[j]
		i, j = i+1, j+1
		for pi != pj {
			if pi < pj {
				if i >= len(xs) || xs[i] < 0 {
					return nil, nil, false
				}
				pi *= xs[i]
				bi = append(bi, i)
				i++
			} else {
				if j >= len(out) || out[j] < 0 {
					return nil, nil, false
				}
				pj *= out[j]
				bj = append(bj, j)
				j++
			}
		}
		ib, ob = append(ib, bi), append(ob, bj)
	}
	return ib, ob, true
}

func analyzeExpand(a *Analysis, n *graph.Node) error {
	x, y := n.Input(0), n.Output(0)
	xs := a.shape(x)
	sh, ok := a.computedInts(n, 1)
	if !ok || xs == nil {
		a.freezeValue(x, n.Name()+": Expand to a shape computed at run time in a way pare cannot rewrite")
		return nil
	}
	if _, isConst := a.g.Constant(n.Input(1)); !isConst && a.lab(x) != nil {
		// The computed shape may read sizes that pruning changes.
		a.edits = append(a.edits, materialise{node: n, input: 1})
	}
	r := max(len(xs), len(sh))
	out := make([]int64, r)
	for j := range out {
		dx, ds := int64(1), int64(1)
		if k := j - (r - len(xs)); k >= 0 {
			dx = xs[k]
		}
		if k := j - (r - len(sh)); k >= 0 {
			ds = sh[k]
		}
		out[j] = max(dx, ds)
		if dx < 0 && ds == 1 {
			out[j] = -1
		}
	}
	a.setShape(y, out)
	for ax, l := range a.lab(x) {
		j := ax + (r - len(xs))
		k := j - (r - len(sh))
		switch {
		case k < 0 || sh[k] == 1:
		case sh[k] == int64(len(l)):
			a.edits = append(a.edits, constEntry{node: n, input: 1, entry: k, dim: DimRef{y, j}, size: sh[k]})
		default:
			a.freeze(l, n.Name()+": Expand broadcasts the channel axis")
			continue
		}
		if a.repeatsKV(n, xs, sh, r, ax) {
			continue
		}
		a.setLab(y, j, l)
	}
	a.repeatsSingleKV(n, xs, sh, r)
	return nil
}

// repeatsSingleKV: multi-query attention's repeat_kv, [B, 1, 1, S, D] →
// [B, 1, H, S, D]: the single key/value head has no channel to prune (its
// projection's labels sit on head_dim), and the repeat axis gets one
// channel per query head, as repeatsKV does for grouped-query attention.
func (a *Analysis) repeatsSingleKV(n *graph.Node, xs, sh []int64, r int) {
	y := n.Output(0)
	for ix := 1; ix < len(xs); ix++ {
		j := ix + (r - len(xs))
		k := j - (r - len(sh))
		if k < 0 || xs[ix] != 1 || xs[ix-1] != 1 || sh[k] <= 1 || a.lab(y)[j] != nil || a.lab(n.Input(0))[ix-1] != nil {
			continue
		}
		if k-1 < 0 || sh[k-1] != 1 || !a.feedsAttention(y) {
			continue
		}
		a.setLab(y, j, a.newElems(int(sh[k]), n.Name()))
		a.edits = append(a.edits, constEntry{node: n, input: 1, entry: k, dim: DimRef{y, j}, size: sh[k]})
		return
	}
}

// repeatsKV handles grouped-query attention's repeat_kv: an Expand that
// broadcasts the size-1 axis right after the labeled key/value head axis
// ([B, Hkv, 1, S, D] → [B, Hkv, rep, S, D], then merged into Hkv·rep query
// heads). With Options.KVGroups the KV head keeps its labels (a KV head
// and its rep query heads are one channel, marked kv-group) and false is
// returned. Otherwise the KV heads are kept whole and the repeat axis gets
// fresh labels, one per query head slot: query head j of every KV group
// is one channel, so every KV group loses the same number of query heads
// and the Expand's rep entry is rewritten to the kept count.
func (a *Analysis) repeatsKV(n *graph.Node, xs, sh []int64, r, ax int) bool {
	j := ax + (r - len(xs)) + 1 // the repeat axis of the output
	k := j - (r - len(sh))
	ix := ax + 1
	if ix >= len(xs) || k < 0 || k >= len(sh) || xs[ix] != 1 || sh[k] <= 1 || !a.feedsAttention(n.Output(0)) {
		return false
	}
	kv := a.lab(n.Input(0))[ax]
	for _, e := range kv {
		if e >= 0 {
			a.markRole(e, roleKVGroup)
		}
	}
	if a.opts.KVGroups {
		return false
	}
	a.freeze(kv, n.Name()+": key/value heads repeated for grouped-query attention are kept by --heads (--kv-groups removes whole KV groups)")
	slots := a.newElems(int(sh[k]), n.Name())
	a.setLab(n.Output(0), j, slots)
	a.edits = append(a.edits, constEntry{node: n, input: 1, entry: k, dim: DimRef{n.Output(0), j}, size: sh[k]})
	return true
}
