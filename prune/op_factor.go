package prune

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pare-dev/pare/graph"
)

// Factorised dims: Reshape between [.., H·D] and [.., H, D] (attention
// heads), and reshapes that fold heads into a symbolic batch dim
// ([S, B, H·D] → [S, B·H, D], nn.MultiheadAttention's layout).
//
// Input and output dims are refined into a common sequence of atoms (a
// static size, or a symbol such as "batch"): every input dim and every
// output dim is a run of atoms, and the row-major layouts agree atom by
// atom. A labeled input axis is a function of the static atoms after its
// last symbolic atom (an axis B·H carries one period of H labels: position
// p is labeled like p mod H). Its labels move to every output axis that
// holds those atoms:
//
//   - all of them in one output axis: identity, block expansion
//     ([H, D] → H·D, head h owns positions [h·D, (h+1)·D)) or repetition;
//   - spread over several output axes (a split): one carrier axis takes
//     the labels and positions sharing its coordinate are coupled. For a
//     split that feeds attention the carrier is the head axis (the atom
//     before the innermost one), so that whole heads are one channel; with
//     Options.HeadDim it is head_dim (the innermost atom), so that the
//     same head_dim positions go in every head. Other splits keep the
//     largest factor, as the block matcher in op_reshape.go does.
//
// A labeled atom that would sit before a symbolic atom of its output axis,
// two labeled input axes meeting in one output axis, or dims that do not
// refine, freeze.

// fdim is a size c·sym; sym is "" for a static size.
type fdim struct {
	c   int64
	sym string
}

func (d fdim) one() bool { return d.c == 1 && d.sym == "" }

func toFdims(ds []graph.Dim) ([]fdim, bool) {
	out := make([]fdim, len(ds))
	for i, d := range ds {
		c, _ := d.Value()
		switch {
		case d.IsKnown() && c > 0:
			out[i] = fdim{c, ""}
		case d.IsSymbolic() && c > 0:
			out[i] = fdim{c, d.Symbol()}
		default:
			return nil, false
		}
	}
	return out, true
}

// refine returns the common atoms of two factorisations of one tensor and
// the atom span [from, to) of every dim of each.
func refine(a, b []fdim) (atoms []fdim, as, bs [][2]int, ok bool) {
	as, bs = make([][2]int, len(a)), make([][2]int, len(b))
	ia, ib := -1, -1
	ra, rb := fdim{1, ""}, fdim{1, ""}
	for {
		for ra.one() && ia < len(a) {
			if ia >= 0 {
				as[ia][1] = len(atoms)
			}
			ia++
			if ia < len(a) {
				as[ia][0] = len(atoms)
				ra = a[ia]
			}
		}
		for rb.one() && ib < len(b) {
			if ib >= 0 {
				bs[ib][1] = len(atoms)
			}
			ib++
			if ib < len(b) {
				bs[ib][0] = len(atoms)
				rb = b[ib]
			}
		}
		if ia == len(a) && ib == len(b) {
			return atoms, as, bs, true
		}
		if ia == len(a) || ib == len(b) || ra.c <= 0 || rb.c <= 0 {
			return nil, nil, nil, false
		}
		var at fdim
		switch {
		case ra.sym == "" && rb.sym == "":
			switch {
			case ra.c == rb.c:
				at, ra, rb = ra, fdim{1, ""}, fdim{1, ""}
			case rb.c%ra.c == 0:
				at, rb.c, ra = ra, rb.c/ra.c, fdim{1, ""}
			case ra.c%rb.c == 0:
				at, ra.c, rb = rb, ra.c/rb.c, fdim{1, ""}
			default:
				return nil, nil, nil, false
			}
		case ra.sym != "" && rb.sym != "":
			// Equal symbol products, or one a factor of the other
			// (batch·seq against batch then seq).
			switch {
			case ra.sym == rb.sym:
				at = fdim{1, ra.sym}
				ra.sym, rb.sym = "", ""
			case symFactor(ra.sym, rb.sym) != "-":
				at = fdim{1, rb.sym}
				ra.sym, rb.sym = symFactor(ra.sym, rb.sym), ""
			case symFactor(rb.sym, ra.sym) != "-":
				at = fdim{1, ra.sym}
				rb.sym, ra.sym = symFactor(rb.sym, ra.sym), ""
			default:
				return nil, nil, nil, false
			}
		case ra.sym == "":
			if rb.c%ra.c != 0 {
				return nil, nil, nil, false
			}
			at, rb.c, ra = ra, rb.c/ra.c, fdim{1, ""}
		default:
			if ra.c%rb.c != 0 {
				return nil, nil, nil, false
			}
			at, ra.c, rb = rb, ra.c/rb.c, fdim{1, ""}
		}
		atoms = append(atoms, at)
	}
}

// symFactor returns the symbol product p without the factors of q, "-"
// when q is not a factor of p ("batch*seq" without "batch" is "seq").
func symFactor(p, q string) string {
	rest := strings.Split(p, "*")
	for _, f := range strings.Split(q, "*") {
		i := slices.Index(rest, f)
		if i < 0 {
			return "-"
		}
		rest = slices.Delete(rest, i, i+1)
	}
	if len(rest) == 0 {
		return "-" // equal products are handled apart
	}
	return strings.Join(rest, "*")
}

// staticTail returns the start of the run of static atoms that ends span.
func staticTail(atoms []fdim, span [2]int) int {
	k := span[1]
	for k > span[0] && atoms[k-1].sym == "" {
		k--
	}
	return k
}

// reshapeFactored maps labels of x onto y by atoms. entries is the shape
// (constant or folded) whose literal entries for labeled static output
// axes are rewritten.
func (a *Analysis) reshapeFactored(n *graph.Node, x, y string, xd, yd []fdim, entries []int64) {
	freezeAll := func(why string) {
		a.freezeValue(x, n.Name()+": "+why)
	}
	ys := make([]int64, len(yd))
	for j, d := range yd {
		ys[j] = d.c
		if d.sym != "" {
			ys[j] = -1
		}
	}
	a.setShape(y, ys)
	if a.lab(x) == nil {
		return
	}
	atoms, as, bs, ok := refine(xd, yd)
	if !ok {
		freezeAll("Reshape dims do not factor into each other")
		return
	}
	if _, isConst := a.g.Constant(n.Input(1)); !isConst {
		// The computed shape may read sizes that pruning changes.
		a.edits = append(a.edits, materialise{node: n, input: 1})
	}
	atomAxis := make([]int, len(atoms)) // atom → output axis
	for j, sp := range bs {
		for k := sp[0]; k < sp[1]; k++ {
			atomAxis[k] = j
		}
	}
	type contrib struct {
		in   int
		keys []int // atoms of the input's labeled part that are in this output axis
	}
	outs := map[int][]contrib{}
	type plan struct {
		t0, t1  int // labeled atoms [t0, t1)
		carrier int // output axis taking the labels, -1: all in one axis
	}
	plans := map[int]plan{}
	for _, i := range sortedAxes(a.lab(x)) {
		l := a.lab(x)[i]
		t0, t1 := staticTail(atoms, as[i]), as[i][1]
		p := int64(1)
		for k := t0; k < t1; k++ {
			p *= atoms[k].c
		}
		if t0 == t1 || p != int64(len(l)) {
			a.freeze(l, n.Name()+": channel labels do not match the factored dims")
			continue
		}
		var axes []int
		bad := false
		for k := t0; k < t1; k++ {
			j := atomAxis[k]
			if len(axes) == 0 || axes[len(axes)-1] != j {
				axes = append(axes, j)
			}
			if staticTail(atoms, bs[j]) > k {
				bad = true
			}
		}
		if bad {
			a.freeze(l, n.Name()+": channel folded outside a symbolic dim")
			continue
		}
		if len(axes) == 1 && a.singleHeadSplit(y, yd, axes[0]) {
			// [B, S, D] → [B, S, 1, D] for attention: one head (multi-query
			// attention's key/value head), nothing to remove whole.
			a.freeze(l, n.Name()+": a single attention head (multi-query key/value) is kept")
			continue
		}
		carrier := -1
		if len(axes) > 1 {
			carrier = a.splitCarrier(y, atoms, t0, t1, atomAxis, axes)
		}
		plans[i] = plan{t0, t1, carrier}
		for _, j := range axes {
			if carrier >= 0 && j != carrier {
				continue
			}
			var keys []int
			for k := t0; k < t1; k++ {
				if atomAxis[k] == j {
					keys = append(keys, k)
				}
			}
			outs[j] = append(outs[j], contrib{i, keys})
		}
	}
	for j, cs := range outs {
		if len(cs) > 1 {
			for _, c := range cs {
				a.freeze(a.lab(x)[c.in], n.Name()+": merges two channel axes")
			}
			delete(outs, j)
		}
	}
	axes := make([]int, 0, len(outs))
	for j := range outs {
		axes = append(axes, j)
	}
	slices.Sort(axes)
	for _, j := range axes {
		c := outs[j][0]
		l := a.lab(x)[c.in]
		pl := plans[c.in]
		// Class of each coordinate of the kept-key atoms.
		table := map[string]int32{}
		coords := make([]int64, pl.t1-pl.t0)
		for p := range l {
			decode(int64(p), atoms[pl.t0:pl.t1], coords)
			key := keyOf(coords, c.keys, pl.t0)
			if e, ok := table[key]; ok {
				if e != l[p] {
					a.union([]int32{e}, l[p:p+1], n.Name()+": channel split across axes")
				}
			} else {
				table[key] = l[p]
			}
		}
		// Output labels over the static tail of axis j.
		u0, u1 := staticTail(atoms, bs[j]), bs[j][1]
		per := int64(1)
		for k := u0; k < u1; k++ {
			per *= atoms[k].c
		}
		if per > 1<<26 {
			a.freeze(l, n.Name()+": factored dims too large")
			continue
		}
		res := make([]int32, per)
		oc := make([]int64, u1-u0)
		kc := make([]int64, pl.t1-pl.t0)
		for q := range res {
			decode(int64(q), atoms[u0:u1], oc)
			for _, k := range c.keys {
				kc[k-pl.t0] = oc[k-u0]
			}
			res[q] = table[keyOf(kc, c.keys, pl.t0)]
		}
		a.setLab(y, j, res)
		if a.isDynamicEntry(n, 1, j) {
			a.freeze(l, n.Name()+": shape entry of a channel axis is computed at run time")
			continue
		}
		if ys[j] > 0 && j < len(entries) {
			switch {
			case entries[j] > 0:
				a.edits = append(a.edits, constEntry{node: n, input: 1, entry: j, dim: DimRef{y, j}, size: entries[j]})
			case entries[j] == 0 && !(j < len(as) && as[j] == bs[j] && len(a.lab(x)[j]) == len(res)):
				a.freeze(l, n.Name()+": shape entry copies a different dim")
			}
		}
	}
}

// singleHeadSplit reports whether output axis j of y is head_dim of a
// single-head layout feeding attention (a static size-1 axis before it).
func (a *Analysis) singleHeadSplit(y string, yd []fdim, j int) bool {
	if a.opts.HeadDim || j != len(yd)-1 || j < 1 || !yd[j-1].one() {
		return false
	}
	return a.feedsAttention(y)
}

// decode writes the row-major coordinates of p over atoms.
func decode(p int64, atoms []fdim, out []int64) {
	for k := len(atoms) - 1; k >= 0; k-- {
		out[k] = p % atoms[k].c
		p /= atoms[k].c
	}
}

func keyOf(coords []int64, keys []int, base int) string {
	b := make([]byte, 0, 8*len(keys))
	for _, k := range keys {
		b = fmt.Appendf(b, "%d,", coords[k-base])
	}
	return string(b)
}

// splitCarrier picks the output axis that carries a split channel axis:
// the head axis (atom before the innermost) or head_dim (innermost) when
// the split feeds attention, else the largest part.
func (a *Analysis) splitCarrier(y string, atoms []fdim, t0, t1 int, atomAxis, axes []int) int {
	if a.feedsAttention(y) {
		if a.opts.HeadDim || t1-t0 < 2 {
			return atomAxis[t1-1]
		}
		return atomAxis[t1-2]
	}
	best, bestSize := axes[0], int64(0)
	for _, j := range axes {
		s := int64(1)
		for k := t0; k < t1; k++ {
			if atomAxis[k] == j {
				s *= atoms[k].c
			}
		}
		if s >= bestSize {
			best, bestSize = j, s
		}
	}
	return best
}

// layoutOps move data without computing across the channel; attention
// inputs reach their MatMul through them. Add, Sub, Neg and Concat are
// rotary embeddings between the head split and Q·Kᵀ (x·cos +
// rotate_half(x)·sin, rotate_half a Slice/Neg/Concat over head_dim).
var layoutOps = map[string]bool{
	"Transpose": true, "Reshape": true, "Slice": true, "Split": true, "Gather": true, "Squeeze": true,
	"Unsqueeze": true, "Mul": true, "Div": true, "Cast": true, "Identity": true, "Expand": true,
	"Add": true, "Sub": true, "Neg": true, "Concat": true,
}

// feedsAttention reports whether v reaches, through layout ops, a MatMul
// or two-operand Einsum whose operands are both activations.
func (a *Analysis) feedsAttention(v string) bool {
	seen := map[string]bool{v: true}
	queue := []string{v}
	for steps := 0; len(queue) > 0 && steps < 64; steps++ {
		cur := queue[0]
		queue = queue[1:]
		for _, c := range a.g.Consumers(cur) {
			if c.Domain() != "" {
				continue
			}
			if (c.Op() == "MatMul" || c.Op() == "Einsum") && len(c.Proto.Input) == 2 &&
				!a.isParam(c.Input(0)) && !a.isParam(c.Input(1)) {
				return true
			}
			if !layoutOps[c.Op()] {
				continue
			}
			for _, out := range c.Proto.Output {
				if !seen[out] {
					seen[out] = true
					queue = append(queue, out)
				}
			}
		}
	}
	return false
}

// factorDims returns the dims of v as sizes (symbolic ones from shape
// inference), false when one is unknown.
func (a *Analysis) factorDims(v string) ([]fdim, bool) {
	if a.inferred != nil {
		if ts, ok := a.inferred.Of(v); ok && ts.Ranked {
			if d, ok := toFdims(ts.Dims); ok {
				return d, true
			}
		}
	}
	s := a.shape(v)
	if s == nil {
		return nil, false
	}
	out := make([]fdim, len(s))
	for i, d := range s {
		if d <= 0 {
			return nil, false
		}
		out[i] = fdim{d, ""}
	}
	return out, true
}

// positionalOps address positions of an axis (offsets, sizes, pads);
// they cannot follow labels that stand for one period of an axis of
// unknown size (heads folded into the batch).
var positionalOps = map[string]bool{
	"Concat": true, "Split": true, "Slice": true, "Expand": true, "Pad": true, "Resize": true,
	"Upsample": true, "Tile": true, "Gather": true, "GatherElements": true, "ScatterND": true,
	"ScatterElements": true, "DepthToSpace": true, "SpaceToDepth": true, "Flatten": true,
}

// freezePeriodic freezes, before a positional op, every labeled input
// axis whose size is not static.
func (a *Analysis) freezePeriodic(n *graph.Node) {
	if !positionalOps[n.Op()] {
		return
	}
	for _, in := range n.Proto.Input {
		s := a.shape(in)
		for ax, l := range a.lab(in) {
			if ax >= len(s) || s[ax] < 0 || s[ax] != int64(len(l)) {
				a.freeze(l, n.Name()+": "+n.Op()+" on an axis of unknown size")
			}
		}
	}
}
