package graph

import (
	"slices"
)

// unknownDims returns n unknown dims.
func unknownDims(n int) []Dim { return make([]Dim, n) }

// inputLen returns the length of a 1-D input whose contents are unknown
// (a shape or axes tensor), when its own shape is known.
func (c *nodeCtx) inputLen(i int) (int, bool) {
	t := c.in(i)
	if !t.Ranked || len(t.Dims) != 1 {
		return 0, false
	}
	n, ok := t.Dims[0].Value()
	return int(n), ok
}

// inferReshape resolves 0 (copy, unless allowzero) and one −1 in the
// target shape; its contents may come from Shape computations.
func inferReshape(c *nodeCtx) error {
	x := c.in(0)
	out := TensorShape{Elem: x.Elem}
	target, ok := c.value(1)
	if !ok {
		if n, ok := c.inputLen(1); ok {
			out.Dims, out.Ranked = unknownDims(n), true
		}
		c.out(0, out)
		return nil
	}
	allowZero := c.n.IntAttr("allowzero", 0) == 1
	dims := make([]Dim, len(target.v))
	infer := -1
	for i, d := range target.v {
		v, known := d.Value()
		switch {
		case known && v == 0 && !allowZero:
			if x.Ranked && i < len(x.Dims) {
				dims[i] = x.Dims[i]
			} else if x.Ranked {
				return mismatch("shape copies dim %d of a rank-%d input", i, len(x.Dims))
			}
		case known && v == -1:
			if infer >= 0 {
				return mismatch("shape has several -1")
			}
			infer = i
		case known && v < 0:
			return mismatch("shape has %d", v)
		default:
			dims[i] = d
		}
	}
	if x.Ranked {
		total := prodDims(x.Dims)
		if infer >= 0 {
			rest := prodDims(slices.Delete(slices.Clone(dims), infer, infer+1))
			if q, ok := divDim(total, rest); ok {
				dims[infer] = q
			} else if total.IsKnown() && rest.IsKnown() {
				return mismatch("cannot reshape %v elements into %v", total, TensorShape{Dims: dims, Ranked: true})
			}
		} else if p := prodDims(dims); total.IsKnown() && p.IsKnown() && p != total {
			return mismatch("cannot reshape %v elements into %v elements", total, p)
		}
	}
	out.Dims, out.Ranked = dims, true
	c.out(0, out)
	return nil
}

func inferFlatten(c *nodeCtx) error {
	x := c.in(0)
	if !x.Ranked {
		c.out(0, ShapeOf(x.Elem, Dim{}, Dim{}))
		return nil
	}
	axis := c.n.IntAttr("axis", 1)
	if axis < 0 {
		axis += int64(len(x.Dims))
	}
	if axis < 0 || axis > int64(len(x.Dims)) {
		return mismatch("axis %d out of range for rank %d", axis, len(x.Dims))
	}
	c.out(0, ShapeOf(x.Elem, prodDims(x.Dims[:axis]), prodDims(x.Dims[axis:])))
	return nil
}

// axesArg reads an axes list from the attribute (before opset
// attrUntil) or from input i.
func (c *nodeCtx) axesArg(i int, inputSince int64) (axes []int64, given, known bool) {
	if c.opset < inputSince {
		a := c.n.Attr("axes")
		return c.n.IntsAttr("axes", nil), a != nil, true
	}
	if !c.has(i) {
		return nil, false, true
	}
	v, ok := c.ints(i)
	return v, true, ok
}

func inferSqueeze(c *nodeCtx) error {
	x := c.in(0)
	axes, given, known := c.axesArg(1, 13)
	if !x.Ranked || !known {
		c.out(0, TensorShape{Elem: x.Elem})
		return nil
	}
	drop := make([]bool, len(x.Dims))
	if !given {
		for i, d := range x.Dims {
			if !d.IsKnown() {
				c.out(0, TensorShape{Elem: x.Elem})
				return nil
			}
			drop[i] = d == DimOf(1)
		}
	}
	for _, a := range axes {
		i, err := normAxis(a, len(x.Dims))
		if err != nil {
			return err
		}
		if d := x.Dims[i]; d.IsKnown() && d != DimOf(1) {
			return mismatch("squeezing axis %d of size %v", i, d)
		}
		drop[i] = true
	}
	var dims []Dim
	for i, d := range x.Dims {
		if !drop[i] {
			dims = append(dims, d)
		}
	}
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}

func inferUnsqueeze(c *nodeCtx) error {
	x := c.in(0)
	axes, _, known := c.axesArg(1, 13)
	if !x.Ranked || !known {
		c.out(0, TensorShape{Elem: x.Elem})
		return nil
	}
	rank := len(x.Dims) + len(axes)
	ones := make([]bool, rank)
	for _, a := range axes {
		i, err := normAxis(a, rank)
		if err != nil {
			return err
		}
		if ones[i] {
			return mismatch("axis %d repeated", i)
		}
		ones[i] = true
	}
	dims := make([]Dim, 0, rank)
	next := 0
	for i := range rank {
		if ones[i] {
			dims = append(dims, DimOf(1))
		} else {
			dims = append(dims, x.Dims[next])
			next++
		}
	}
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}

func transposePerm(c *nodeCtx, rank int) ([]int, error) {
	perm := c.n.IntsAttr("perm", nil)
	out := make([]int, rank)
	if perm == nil {
		for i := range out {
			out[i] = rank - 1 - i
		}
		return out, nil
	}
	if len(perm) != rank {
		return nil, mismatch("perm %v for rank %d", perm, rank)
	}
	seen := make([]bool, rank)
	for i, p := range perm {
		a, err := normAxis(p, rank)
		if err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, mismatch("perm %v repeats an axis", perm)
		}
		seen[a], out[i] = true, a
	}
	return out, nil
}

func inferTranspose(c *nodeCtx) error {
	x := c.in(0)
	if !x.Ranked {
		if perm := c.n.IntsAttr("perm", nil); perm != nil {
			x.Dims, x.Ranked = unknownDims(len(perm)), true
		}
		c.out(0, x)
		return nil
	}
	perm, err := transposePerm(c, len(x.Dims))
	if err != nil {
		return err
	}
	dims := make([]Dim, len(perm))
	for i, p := range perm {
		dims[i] = x.Dims[p]
	}
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}

func inferExpand(c *nodeCtx) error {
	x := c.in(0)
	var target TensorShape
	if v, ok := c.value(1); ok {
		target = ShapeOf(0, v.v...)
	} else if n, ok := c.inputLen(1); ok {
		target = ShapeOf(0, unknownDims(n)...)
	}
	t, err := broadcastShapes(x, target)
	if err != nil {
		return err
	}
	t.Elem = x.Elem
	c.out(0, t)
	return nil
}

func inferConcat(c *nodeCtx) error {
	ins := c.inputShapes(0)
	if len(ins) == 0 {
		return nil
	}
	var out TensorShape
	for _, t := range ins {
		if t.Ranked {
			out = ShapeOf(ins[0].Elem, unknownDims(len(t.Dims))...)
			break
		}
	}
	if !out.Ranked {
		c.out(0, TensorShape{Elem: ins[0].Elem})
		return nil
	}
	axis, err := normAxis(c.n.IntAttr("axis", 0), len(out.Dims))
	if err != nil {
		return err
	}
	sum := DimOf(0)
	for k, t := range ins {
		if !t.Ranked {
			sum = Dim{}
			continue
		}
		if len(t.Dims) != len(out.Dims) {
			return mismatch("concatenating ranks %d and %d", len(out.Dims), len(t.Dims))
		}
		sum = valAdd(sum, t.Dims[axis])
		for i, d := range t.Dims {
			if i == axis {
				continue
			}
			if k > 0 && d.IsKnown() && out.Dims[i].IsKnown() && d != out.Dims[i] {
				return mismatch("axis %d has sizes %v and %v", i, out.Dims[i], d)
			}
			if out.Dims[i].IsUnknown() || (d.IsKnown() && !out.Dims[i].IsKnown()) {
				out.Dims[i] = d
			}
		}
	}
	out.Dims[axis] = sum
	c.out(0, out)
	return nil
}

func inferSplit(c *nodeCtx) error {
	x := c.in(0)
	nOut := len(c.n.Proto.Output)
	unknown := func() error {
		for i := range nOut {
			t := TensorShape{Elem: x.Elem}
			if x.Ranked {
				t.Dims, t.Ranked = unknownDims(len(x.Dims)), true
			}
			c.out(i, t)
		}
		return nil
	}
	if !x.Ranked {
		return unknown()
	}
	axis, err := normAxis(c.n.IntAttr("axis", 0), len(x.Dims))
	if err != nil {
		return err
	}
	var sizes []int64
	switch {
	case c.opset < 13 && c.n.Attr("split") != nil:
		sizes = c.n.IntsAttr("split", nil)
	case c.opset >= 13 && c.has(1):
		v, ok := c.ints(1)
		if !ok {
			return unknown()
		}
		sizes = v
	}
	d := x.Dims[axis]
	if sizes == nil {
		n, ok := d.Value()
		if !ok {
			if q, ok := divDim(d, DimOf(int64(nOut))); ok {
				for i := range nOut {
					c.out(i, withDim(x, axis, q))
				}
				return nil
			}
			return unknown()
		}
		parts := c.n.IntAttr("num_outputs", int64(nOut))
		if parts <= 0 || parts != int64(nOut) {
			return mismatch("num_outputs %d for %d outputs", parts, nOut)
		}
		each := (n + parts - 1) / parts
		if c.opset < 18 && n%parts != 0 {
			return mismatch("axis of size %d does not split into %d equal parts", n, parts)
		}
		for i := range parts {
			sizes = append(sizes, max(0, min(each, n-i*each)))
		}
	}
	if len(sizes) != nOut {
		return mismatch("%d split sizes for %d outputs", len(sizes), nOut)
	}
	var sum int64
	for _, s := range sizes {
		sum += s
	}
	if n, ok := d.Value(); ok && n != sum {
		return mismatch("split sizes sum to %d, axis has %d", sum, n)
	}
	for i, s := range sizes {
		c.out(i, withDim(x, axis, DimOf(s)))
	}
	return nil
}

// withDim returns t with dim i replaced.
func withDim(t TensorShape, i int, d Dim) TensorShape {
	dims := slices.Clone(t.Dims)
	dims[i] = d
	return ShapeOf(t.Elem, dims...)
}

// sliceAxis clamps a slice of an axis of size n as ONNX does and returns
// the first index and the number of elements.
func sliceAxis(n, start, end, step int64) (first, count int64) {
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if step > 0 {
		start = min(max(start, 0), n)
		end = min(max(end, 0), n)
		if end > start {
			count = (end - start + step - 1) / step
		}
	} else {
		start = min(max(start, -1), n-1)
		end = min(max(end, -1), n-1)
		if start > end {
			count = (start - end - step - 1) / -step
		}
	}
	return start, count
}

// sliceArgs returns starts, ends, axes and steps (attributes before
// opset 10, inputs after); known is false when some are not constant.
func sliceArgs(c *nodeCtx, rank int) (starts, ends []int64, axes []int, steps []int64, known bool, err error) {
	var rawAxes []int64
	if c.opset < 10 {
		starts, ends = c.n.IntsAttr("starts", nil), c.n.IntsAttr("ends", nil)
		rawAxes = c.n.IntsAttr("axes", nil)
	} else {
		var ok1, ok2 bool
		starts, ok1 = c.ints(1)
		ends, ok2 = c.ints(2)
		if !ok1 || !ok2 {
			return nil, nil, nil, nil, false, nil
		}
		if c.has(3) {
			if rawAxes, known = c.ints(3); !known {
				return nil, nil, nil, nil, false, nil
			}
		}
		if c.has(4) {
			if steps, known = c.ints(4); !known {
				return nil, nil, nil, nil, false, nil
			}
		}
	}
	if rawAxes == nil {
		for i := range starts {
			rawAxes = append(rawAxes, int64(i))
		}
	}
	if steps == nil {
		steps = make([]int64, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	if len(ends) != len(starts) || len(rawAxes) != len(starts) || len(steps) != len(starts) {
		return nil, nil, nil, nil, false, mismatch("slice arguments of different lengths")
	}
	for _, a := range rawAxes {
		i, err := normAxis(a, rank)
		if err != nil {
			return nil, nil, nil, nil, false, err
		}
		axes = append(axes, i)
	}
	for _, s := range steps {
		if s == 0 {
			return nil, nil, nil, nil, false, mismatch("slice step 0")
		}
	}
	return starts, ends, axes, steps, true, nil
}

// sliceParams gives, for every axis of a static input, the first index
// and the step (for folding constants).
func sliceParams(c *nodeCtx, dims []int64) (first, step []int64, ok bool) {
	starts, ends, axes, steps, known, err := sliceArgs(c, len(dims))
	if err != nil || !known {
		return nil, nil, false
	}
	first = make([]int64, len(dims))
	step = make([]int64, len(dims))
	for i := range step {
		step[i] = 1
	}
	for k, a := range axes {
		first[a], _ = sliceAxis(dims[a], starts[k], ends[k], steps[k])
		step[a] = steps[k]
	}
	return first, step, true
}

// bigEnd marks an end that means "to the end" (exporters use INT64_MAX,
// INT32_MAX or large sentinels).
const bigEnd = 1 << 30

func inferSlice(c *nodeCtx) error {
	x := c.in(0)
	if !x.Ranked {
		c.out(0, x)
		return nil
	}
	starts, ends, axes, steps, known, err := sliceArgs(c, len(x.Dims))
	if err != nil {
		return err
	}
	dims := slices.Clone(x.Dims)
	if !known {
		c.out(0, ShapeOf(x.Elem, symbolicSlice(c, x.Dims)...))
		return nil
	}
	for k, a := range axes {
		n, ok := x.Dims[a].Value()
		switch {
		case ok:
			_, count := sliceAxis(n, starts[k], ends[k], steps[k])
			dims[a] = DimOf(count)
		case starts[k] == 0 && ends[k] >= bigEnd && steps[k] == 1:
			// the whole axis
		case steps[k] == 1:
			dims[a] = sliceCount(x.Dims[a], DimOf(starts[k]), DimOf(ends[k]))
		default:
			dims[a] = Dim{}
		}
	}
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}

// symbolicSlice gives the output dims of a Slice whose bounds are sizes
// computed from Shape (a position buffer sliced to [:, :seq]); axes and
// steps must be constant, steps 1.
func symbolicSlice(c *nodeCtx, in []Dim) []Dim {
	out := unknownDims(len(in))
	if c.opset < 10 {
		return out
	}
	st, ok1 := c.value(1)
	en, ok2 := c.value(2)
	if !ok1 || !ok2 || len(st.v) != len(en.v) {
		return out
	}
	axes := make([]int64, len(st.v))
	for i := range axes {
		axes[i] = int64(i)
	}
	if c.has(3) {
		v, ok := c.ints(3)
		if !ok || len(v) != len(axes) {
			return out
		}
		axes = v
	}
	if c.has(4) {
		v, ok := c.ints(4)
		if !ok || len(v) != len(axes) {
			return out
		}
		for _, s := range v {
			if s != 1 {
				return out
			}
		}
	}
	copy(out, in)
	for k, ax := range axes {
		a, err := normAxis(ax, len(in))
		if err != nil {
			return unknownDims(len(in))
		}
		out[a] = sliceCount(in[a], st.v[k], en.v[k])
	}
	return out
}

// sliceCount is the length of [start, end) with step 1 on an axis of n
// positions, bounds given as sizes; negative constants count from the
// end, INT_MAX-like ends mean the end. Unknown when it cannot be told.
func sliceCount(n, start, end Dim) Dim {
	if v, ok := start.Value(); ok && v < 0 {
		if n.IsKnown() || n.IsSymbolic() {
			if e, ok := end.Value(); ok && e >= bigEnd {
				return DimOf(-v) // the last −v positions
			}
		}
		start = valAdd(n, start)
	}
	if v, ok := end.Value(); ok {
		switch {
		case v >= bigEnd:
			end = n
		case v < 0:
			end = valAdd(n, end)
		}
	}
	if v, ok := start.Value(); ok && v == 0 && end == n {
		return n
	}
	e, ok := minDim(end, n)
	if !ok {
		// A symbolic end against a static axis (a position buffer of
		// 512 sliced to seq) or a static end against a symbolic axis
		// (the first row of [1, seq]) is taken to lie within the axis,
		// as exporters emit it.
		if _, _, _, known := end.affine(); !known || n.IsUnknown() {
			return Dim{}
		}
		e = end
	}
	d := valSub(e, start)
	if v, ok := d.Value(); ok && v < 0 {
		return DimOf(0)
	}
	return d
}

func inferGather(c *nodeCtx) error {
	x, idx := c.in(0), c.in(1)
	if !x.Ranked || !idx.Ranked {
		c.out(0, TensorShape{Elem: x.Elem})
		return nil
	}
	axis, err := normAxis(c.n.IntAttr("axis", 0), len(x.Dims))
	if err != nil {
		return err
	}
	if vals, ok := c.ints(1); ok {
		if n, known := x.Dims[axis].Value(); known {
			for _, v := range vals {
				if v < -n || v >= n {
					return mismatch("index %d out of range for axis of size %d", v, n)
				}
			}
		}
	}
	dims := append(append(slices.Clone(x.Dims[:axis]), idx.Dims...), x.Dims[axis+1:]...)
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}

// inferGatherND: indices[:-1] (after batch_dims leading axes shared with
// data), then the data axes the last index axis does not address.
func inferGatherND(c *nodeCtx) error {
	x, idx := c.in(0), c.in(1)
	b := int(c.n.IntAttr("batch_dims", 0))
	if !x.Ranked || !idx.Ranked || len(idx.Dims) == 0 {
		c.out(0, TensorShape{Elem: x.Elem})
		return nil
	}
	k, ok := idx.Dims[len(idx.Dims)-1].Value()
	if !ok || b < 0 || b+int(k) > len(x.Dims) || b >= len(idx.Dims) {
		c.out(0, TensorShape{Elem: x.Elem})
		return nil
	}
	dims := append(slices.Clone(idx.Dims[:len(idx.Dims)-1]), x.Dims[b+int(k):]...)
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}

func inferTile(c *nodeCtx) error {
	x := c.in(0)
	if !x.Ranked {
		c.out(0, x)
		return nil
	}
	reps, ok := c.ints(1)
	if !ok {
		c.out(0, ShapeOf(x.Elem, unknownDims(len(x.Dims))...))
		return nil
	}
	if len(reps) != len(x.Dims) {
		return mismatch("%d repeats for rank %d", len(reps), len(x.Dims))
	}
	dims := make([]Dim, len(reps))
	for i, r := range reps {
		if r < 0 {
			return mismatch("negative repeat %d", r)
		}
		dims[i] = mulDim(x.Dims[i], DimOf(r))
	}
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}

func inferPad(c *nodeCtx) error {
	x := c.in(0)
	if !x.Ranked {
		c.out(0, x)
		return nil
	}
	r := len(x.Dims)
	var pads []int64
	ok := true
	if c.opset < 11 {
		pads = c.n.IntsAttr("pads", nil)
	} else {
		pads, ok = c.ints(1)
	}
	if !ok {
		c.out(0, ShapeOf(x.Elem, unknownDims(r)...))
		return nil
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if c.opset >= 18 && c.has(3) {
		raw, ok := c.ints(3)
		if !ok {
			c.out(0, ShapeOf(x.Elem, unknownDims(r)...))
			return nil
		}
		axes = axes[:0]
		for _, a := range raw {
			i, err := normAxis(a, r)
			if err != nil {
				return err
			}
			axes = append(axes, i)
		}
	}
	if len(pads) != 2*len(axes) {
		return mismatch("%d pads for %d axes", len(pads), len(axes))
	}
	dims := slices.Clone(x.Dims)
	for k, a := range axes {
		add := pads[k] + pads[k+len(axes)]
		if n, ok := dims[a].Value(); ok {
			if n+add < 0 {
				return mismatch("pads %v crop axis %d of size %d below zero", pads, a, n)
			}
			dims[a] = DimOf(n + add)
		} else if add != 0 {
			dims[a] = Dim{}
		}
	}
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}

func inferDepthToSpace(c *nodeCtx) error { return blockRearrange(c, false) }
func inferSpaceToDepth(c *nodeCtx) error { return blockRearrange(c, true) }

// blockRearrange: DepthToSpace [N, C, H, W] → [N, C/b², H·b, W·b];
// SpaceToDepth the inverse.
func blockRearrange(c *nodeCtx, toDepth bool) error {
	x := c.in(0)
	if !x.Ranked {
		c.out(0, x)
		return nil
	}
	if len(x.Dims) != 4 {
		return mismatch("input rank %d, want 4", len(x.Dims))
	}
	b := c.n.IntAttr("blocksize", 0)
	if b <= 0 {
		return mismatch("blocksize %d", b)
	}
	bd, b2 := DimOf(b), DimOf(b*b)
	div := func(a, by Dim) (Dim, error) {
		if q, ok := divDim(a, by); ok {
			return q, nil
		}
		if a.IsKnown() {
			return Dim{}, mismatch("size %v is not a multiple of %v", a, by)
		}
		return Dim{}, nil
	}
	dims := []Dim{x.Dims[0], {}, {}, {}}
	var err error
	if toDepth {
		dims[1] = mulDim(x.Dims[1], b2)
		if dims[2], err = div(x.Dims[2], bd); err != nil {
			return err
		}
		if dims[3], err = div(x.Dims[3], bd); err != nil {
			return err
		}
	} else {
		if dims[1], err = div(x.Dims[1], b2); err != nil {
			return err
		}
		dims[2], dims[3] = mulDim(x.Dims[2], bd), mulDim(x.Dims[3], bd)
	}
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}

// inferResize covers Resize (scales or sizes inputs, optional axes) and
// Upsample (scales attribute or input): size = floor(in · scale).
func inferResize(c *nodeCtx) error {
	x := c.in(0)
	if !x.Ranked {
		c.out(0, x)
		return nil
	}
	r := len(x.Dims)
	out := ShapeOf(x.Elem, unknownDims(r)...)
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if raw := c.n.IntsAttr("axes", nil); raw != nil {
		axes = axes[:0]
		for _, a := range raw {
			i, err := normAxis(a, r)
			if err != nil {
				return err
			}
			axes = append(axes, i)
		}
		out.Dims = slices.Clone(x.Dims)
		for _, a := range axes {
			out.Dims[a] = Dim{}
		}
	}
	scalesAt, sizesAt := 2, 3
	switch {
	case c.n.Op() == "Upsample" || c.opset < 11:
		scalesAt, sizesAt = 1, -1
	}
	var scales []float32
	if c.n.Op() == "Upsample" && c.opset < 9 {
		scales = c.n.FloatsAttr("scales", nil)
	} else if c.has(scalesAt) {
		scales, _ = c.floats(scalesAt)
	}
	if sizesAt > 0 && c.has(sizesAt) {
		if v, ok := c.value(sizesAt); ok {
			if len(v.v) != len(axes) {
				return mismatch("%d sizes for %d axes", len(v.v), len(axes))
			}
			for k, a := range axes {
				out.Dims[a] = v.v[k]
			}
		}
		c.out(0, out)
		return nil
	}
	if len(scales) == 0 {
		c.out(0, out)
		return nil
	}
	if len(scales) != len(axes) {
		return mismatch("%d scales for %d axes", len(scales), len(axes))
	}
	for k, a := range axes {
		s := float64(scales[k])
		d := x.Dims[a]
		if n, ok := d.Value(); ok {
			out.Dims[a] = DimOf(int64(float64(n) * s))
		} else if d.IsSymbolic() && s >= 1 && s == float64(int64(s)) {
			out.Dims[a] = mulDim(d, DimOf(int64(s)))
		}
	}
	c.out(0, out)
	return nil
}
