package graph

import (
	"math"

	"github.com/pare-dev/pare/onnx"
)

// foldRule computes the content of a node's first output from known
// input contents, or returns nil. Shape rules have already run, so the
// output's shape is known to the fold.
type foldRule func(c *nodeCtx) *cval

func foldRuleFor(domain, op string) foldRule {
	if domain != "" {
		return nil
	}
	return foldRules[op]
}

var foldRules map[string]foldRule

func init() {
	foldRules = map[string]foldRule{
		"Constant": foldConstant, "Shape": foldShape, "Size": foldSize,
		"Identity": foldSame, "Cast": foldCast, "CastLike": foldCast,
		"Floor": foldSame, "Ceil": foldSame, "Round": foldSame,
		"Reshape": foldSame, "Flatten": foldSame, "Squeeze": foldSame, "Unsqueeze": foldSame,
		"Gather": foldGather, "Concat": foldConcat, "Slice": foldSlice,
		"Transpose": foldTranspose, "Expand": foldExpand,
		"ConstantOfShape": foldConstantOfShape, "Range": foldRange,
		"Add": foldBinary(valAdd), "Sub": foldBinary(valSub), "Mul": foldBinary(valMul),
		"Div": foldDiv, "Mod": foldMod,
		"Max": foldBinary(valMax), "Min": foldBinary(valMin),
		"Equal":   foldBinary(valEqual),
		"Less":    foldBinary(intsOnly(func(a, b int64) int64 { return b2i(a < b) })),
		"Greater": foldBinary(intsOnly(func(a, b int64) int64 { return b2i(a > b) })),
		"LessOrEqual": foldBinary(intsOnly(func(a, b int64) int64 {
			return b2i(a <= b)
		})),
		"GreaterOrEqual": foldBinary(intsOnly(func(a, b int64) int64 {
			return b2i(a >= b)
		})),
		"And":        foldBinary(intsOnly(func(a, b int64) int64 { return b2i(a != 0 && b != 0) })),
		"Or":         foldBinary(intsOnly(func(a, b int64) int64 { return b2i(a != 0 || b != 0) })),
		"Not":        foldUnary(func(a int64) int64 { return b2i(a == 0) }),
		"Neg":        foldUnary(func(a int64) int64 { return -a }),
		"Abs":        foldUnary(func(a int64) int64 { return max(a, -a) }),
		"Where":      foldWhere,
		"ReduceProd": foldReduce(valMul, 1), "ReduceSum": foldReduce(valAdd, 0),
		"ReduceMax": foldReduce(intsOnly(maxInt), math.MinInt64),
		"ReduceMin": foldReduce(intsOnly(minInt), math.MaxInt64),
	}
}

func maxInt(a, b int64) int64 { return max(a, b) }

// valMin and valMax compare integers, and sizes whose difference is a
// constant ("seq" and "seq+1").
func valMin(a, b Dim) Dim {
	if d, ok := diffConst(a, b); ok {
		if d <= 0 {
			return a
		}
		return b
	}
	return Dim{}
}

func valMax(a, b Dim) Dim {
	if d, ok := diffConst(a, b); ok {
		if d >= 0 {
			return a
		}
		return b
	}
	return Dim{}
}
func minInt(a, b int64) int64 { return min(a, b) }

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// outDims returns the static dims inferred for output 0.
func (c *nodeCtx) outDims() ([]int64, bool) {
	return c.s.shapes[c.n.Output(0)].Ints()
}

func foldConstant(c *nodeCtx) *cval {
	t, err := ConstantNodeTensor(c.n.Proto)
	if err != nil {
		return nil
	}
	return constFromTensor(t)
}

func foldShape(c *nodeCtx) *cval {
	t := c.in(0)
	if !t.Ranked {
		return nil
	}
	lo, hi := shapeRange(c, len(t.Dims))
	return newCval([]int64{int64(hi - lo)}, append([]Dim(nil), t.Dims[lo:hi]...))
}

func foldSize(c *nodeCtx) *cval {
	t := c.in(0)
	if !t.Ranked {
		return nil
	}
	return newCval(nil, []Dim{prodDims(t.Dims)})
}

// foldSame keeps the input's elements under the output's shape (Identity,
// Reshape and friends, and rounding of values that are integers).
func foldSame(c *nodeCtx) *cval {
	v, ok := c.value(0)
	dims, okd := c.outDims()
	if !ok || !okd {
		return nil
	}
	if n, err := NumElements(dims); err != nil || n != int64(len(v.v)) {
		return nil
	}
	return newCval(dims, v.v)
}

func foldCast(c *nodeCtx) *cval {
	v, ok := c.value(0)
	if !ok {
		return nil
	}
	if c.s.shapes[c.n.Output(0)].Elem != onnx.TensorProto_BOOL {
		return v
	}
	out := make([]Dim, len(v.v))
	for i, d := range v.v {
		switch x, known := d.Value(); {
		case known:
			out[i] = DimOf(b2i(x != 0))
		case d.IsSymbolic():
			out[i] = DimOf(1)
		}
	}
	return newCval(v.dims, out)
}

func foldGather(c *nodeCtx) *cval {
	data, ok := c.value(0)
	idx, oki := c.ints(1)
	iv, _ := c.value(1)
	if !ok || !oki || len(data.dims) == 0 {
		return nil
	}
	axis, err := normAxis(c.n.IntAttr("axis", 0), len(data.dims))
	if err != nil {
		return nil
	}
	n := data.dims[axis]
	for i, x := range idx {
		if x < 0 {
			idx[i] = x + n
		}
		if idx[i] < 0 || idx[i] >= n {
			return nil
		}
	}
	dims := append(append(append([]int64{}, data.dims[:axis]...), iv.dims...), data.dims[axis+1:]...)
	st := strides(data.dims)
	ist := strides(iv.dims)
	q := len(iv.dims)
	return remap(data, dims, func(o []int64) int64 {
		k := int64(0)
		for i := range q {
			k += o[axis+i] * ist[i]
		}
		j := idx[k] * st[axis]
		for i := range axis {
			j += o[i] * st[i]
		}
		for i := axis + 1; i < len(data.dims); i++ {
			j += o[i+q-1] * st[i]
		}
		return j
	})
}

func foldConcat(c *nodeCtx) *cval {
	dims, ok := c.outDims()
	if !ok || len(dims) == 0 {
		return nil
	}
	if n, err := NumElements(dims); err != nil || n > maxConstElems {
		return nil
	}
	axis, err := normAxis(c.n.IntAttr("axis", 0), len(dims))
	if err != nil {
		return nil
	}
	var parts []*cval
	for i := range c.n.Proto.Input {
		v, ok := c.value(i)
		if !ok || len(v.dims) != len(dims) {
			return nil
		}
		parts = append(parts, v)
	}
	outer := int64(1)
	for _, d := range dims[:axis] {
		outer *= d
	}
	if outer == 0 {
		return newCval(dims, nil)
	}
	var out []Dim
	for o := range outer {
		for _, p := range parts {
			if int64(len(p.v))%outer != 0 {
				return nil
			}
			block := int64(len(p.v)) / outer
			out = append(out, p.v[o*block:(o+1)*block]...)
		}
	}
	if int64(len(out)) > maxConstElems {
		return nil
	}
	return newCval(dims, out)
}

func foldSlice(c *nodeCtx) *cval {
	v, ok := c.value(0)
	if !ok {
		return nil
	}
	starts, steps, okp := sliceParams(c, v.dims)
	dims, okd := c.outDims()
	if !okp || !okd {
		return nil
	}
	st := strides(v.dims)
	return remap(v, dims, func(o []int64) int64 {
		j := int64(0)
		for i := range o {
			j += (starts[i] + o[i]*steps[i]) * st[i]
		}
		return j
	})
}

func foldTranspose(c *nodeCtx) *cval {
	v, ok := c.value(0)
	if !ok {
		return nil
	}
	perm, err := transposePerm(c, len(v.dims))
	if err != nil {
		return nil
	}
	dims := make([]int64, len(perm))
	for i, p := range perm {
		dims[i] = v.dims[p]
	}
	st := strides(v.dims)
	return remap(v, dims, func(o []int64) int64 {
		j := int64(0)
		for i, p := range perm {
			j += o[i] * st[p]
		}
		return j
	})
}

func foldExpand(c *nodeCtx) *cval {
	v, ok := c.value(0)
	dims, okd := c.outDims()
	if !ok || !okd {
		return nil
	}
	return remap(v, dims, func(o []int64) int64 { return broadcastIndex(o, v.dims) })
}

func foldConstantOfShape(c *nodeCtx) *cval {
	dims, ok := c.ints(0)
	if !ok {
		return nil
	}
	fill := DimOf(0)
	if a := c.n.Attr("value"); a != nil && a.T != nil {
		t := constFromTensor(a.T)
		if t == nil || len(t.v) != 1 {
			return nil
		}
		fill = t.v[0]
	}
	n, err := NumElements(dims)
	if err != nil || n > maxConstElems {
		return nil
	}
	out := make([]Dim, n)
	for i := range out {
		out[i] = fill
	}
	return newCval(dims, out)
}

func foldRange(c *nodeCtx) *cval {
	start, ok1 := c.ints(0)
	limit, ok2 := c.ints(1)
	delta, ok3 := c.ints(2)
	dims, ok4 := c.outDims()
	if !ok1 || !ok2 || !ok3 || !ok4 || len(start) != 1 || len(limit) != 1 || len(delta) != 1 || len(dims) != 1 {
		return nil
	}
	if dims[0] > maxConstElems {
		return nil
	}
	vals := make([]int64, dims[0])
	for i := range vals {
		vals[i] = start[0] + int64(i)*delta[0]
	}
	return intsCval(dims, vals)
}

func foldBinary(f func(a, b Dim) Dim) foldRule {
	return func(c *nodeCtx) *cval {
		a, ok1 := c.value(0)
		b, ok2 := c.value(1)
		if !ok1 || !ok2 {
			return nil
		}
		return elementwise(func(xs []Dim) Dim { return f(xs[0], xs[1]) }, a, b)
	}
}

func foldUnary(f func(a int64) int64) foldRule {
	return func(c *nodeCtx) *cval {
		a, ok := c.value(0)
		if !ok {
			return nil
		}
		return elementwise(func(xs []Dim) Dim {
			if x, ok := xs[0].Value(); ok {
				return DimOf(f(x))
			}
			return Dim{}
		}, a)
	}
}

func foldWhere(c *nodeCtx) *cval {
	cond, ok1 := c.value(0)
	a, ok2 := c.value(1)
	b, ok3 := c.value(2)
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	return elementwise(func(xs []Dim) Dim {
		x, ok := xs[0].Value()
		switch {
		case !ok:
			return Dim{}
		case x != 0:
			return xs[1]
		}
		return xs[2]
	}, cond, a, b)
}

// foldDiv divides integers truncating toward zero (ONNX integer Div) and
// floats only when exact.
func foldDiv(c *nodeCtx) *cval {
	isInt := isIntType(c.in(0).Elem)
	return foldBinary(func(a, b Dim) Dim {
		x, okx := a.Value()
		y, oky := b.Value()
		switch {
		case okx && oky && y != 0 && (isInt || x%y == 0):
			return DimOf(x / y)
		case b.IsKnown() && y > 0 || b.IsSymbolic():
			if q, ok := divDim(a, b); ok {
				return q
			}
		}
		return Dim{}
	})(c)
}

func foldMod(c *nodeCtx) *cval {
	fmod := c.n.IntAttr("fmod", 0) == 1
	return foldBinary(intsOnly(func(a, b int64) int64 {
		if b == 0 {
			return 0
		}
		r := a % b
		if !fmod && r != 0 && (r < 0) != (b < 0) {
			r += b // Python-style: the sign of the divisor
		}
		return r
	}))(c)
}

// foldReduce folds reductions of a whole tensor to one element.
func foldReduce(f func(a, b Dim) Dim, init int64) foldRule {
	return func(c *nodeCtx) *cval {
		v, ok := c.value(0)
		dims, okd := c.outDims()
		if !ok || !okd {
			return nil
		}
		if n, _ := NumElements(dims); n != 1 {
			return nil
		}
		acc := DimOf(init)
		for _, d := range v.v {
			acc = f(acc, d)
		}
		return newCval(dims, []Dim{acc})
	}
}

// intsOnly lifts an integer operation to Dims: unknown unless both are
// known integers.
func intsOnly(f func(a, b int64) int64) func(a, b Dim) Dim {
	return func(a, b Dim) Dim {
		x, ok1 := a.Value()
		y, ok2 := b.Value()
		if !ok1 || !ok2 {
			return Dim{}
		}
		return DimOf(f(x, y))
	}
}

func valAdd(a, b Dim) Dim {
	x, ok1 := a.Value()
	y, ok2 := b.Value()
	if ok1 && ok2 {
		return DimOf(x + y)
	}
	return addDims(a, b, 1)
}

func valSub(a, b Dim) Dim {
	x, ok1 := a.Value()
	y, ok2 := b.Value()
	if ok1 && ok2 {
		return DimOf(x - y)
	}
	return addDims(a, b, -1)
}

func valMul(a, b Dim) Dim {
	x, ok1 := a.Value()
	y, ok2 := b.Value()
	if ok1 && ok2 {
		return DimOf(x * y)
	}
	if (ok1 && x < 0) || (ok2 && y < 0) {
		return Dim{}
	}
	return mulDim(a, b)
}

// valEqual compares values; symbolic sizes are positive, so they differ
// from every integer below 1.
func valEqual(a, b Dim) Dim {
	x, ok1 := a.Value()
	y, ok2 := b.Value()
	switch {
	case ok1 && ok2:
		return DimOf(b2i(x == y))
	case a.IsSymbolic() && b == a:
		return DimOf(1)
	case a.IsSymbolic() && ok2 && y < 1, b.IsSymbolic() && ok1 && x < 1:
		return DimOf(0)
	}
	return Dim{}
}
