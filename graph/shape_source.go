package graph

import (
	"math"

	"github.com/pare-dev/pare/onnx"
)

func inferConstant(c *nodeCtx) error {
	t, err := ConstantNodeTensor(c.n.Proto)
	if err != nil {
		if a := c.n.Attr("sparse_value"); a != nil && a.SparseTensor != nil {
			st := a.SparseTensor
			c.out(0, StaticShape(DataTypeOf(st.GetValues()), st.Dims...))
		}
		return nil // string constants and the like stay unknown
	}
	c.out(0, StaticShape(DataTypeOf(t), t.Dims...))
	return nil
}

// shapeRange returns the [start, end) window of Shape (opset 15), clamped.
func shapeRange(c *nodeCtx, rank int) (lo, hi int) {
	clamp := func(v int64) int {
		if v < 0 {
			v += int64(rank)
		}
		return int(min(max(v, 0), int64(rank)))
	}
	lo = clamp(c.n.IntAttr("start", 0))
	hi = clamp(c.n.IntAttr("end", math.MaxInt32))
	return lo, max(lo, hi)
}

func inferShapeOp(c *nodeCtx) error {
	x := c.in(0)
	t := ShapeOf(onnx.TensorProto_INT64, Dim{})
	if x.Ranked {
		lo, hi := shapeRange(c, len(x.Dims))
		t.Dims[0] = DimOf(int64(hi - lo))
	}
	c.out(0, t)
	return nil
}

func inferSize(c *nodeCtx) error {
	c.out(0, ShapeOf(onnx.TensorProto_INT64))
	return nil
}

func inferConstantOfShape(c *nodeCtx) error {
	elem := onnx.TensorProto_FLOAT
	if a := c.n.Attr("value"); a != nil && a.T != nil {
		elem = DataTypeOf(a.T)
	}
	t := TensorShape{Elem: elem}
	if v, ok := c.value(0); ok {
		t.Dims, t.Ranked = v.v, true
	} else if n, ok := c.inputLen(0); ok {
		t.Dims, t.Ranked = unknownDims(n), true
	}
	c.out(0, t)
	return nil
}

// inferRange: one dim of ceil((limit − start) / delta), when the three
// scalars are known integers or constant floats.
func inferRange(c *nodeCtx) error {
	t := ShapeOf(c.in(0).Elem, Dim{})
	if start, ok := c.scalar(0); ok {
		limit, ok1 := c.scalar(1)
		delta, ok2 := c.scalar(2)
		if ok1 && ok2 {
			if delta == 0 {
				return mismatch("Range with delta 0")
			}
			t.Dims[0] = DimOf(int64(max(0, math.Ceil((limit-start)/delta))))
		}
	}
	if t.Dims[0].IsUnknown() {
		t.Dims[0] = symbolicRange(c)
	}
	c.out(0, t)
	return nil
}

// symbolicRange is limit − start for a step of 1 when the bounds are
// sizes ("Range(0, seq)" of position ids); unknown otherwise.
func symbolicRange(c *nodeCtx) Dim {
	start, ok1 := c.value(0)
	limit, ok2 := c.value(1)
	delta, ok3 := c.ints(2)
	if !ok1 || !ok2 || !ok3 || len(start.v) != 1 || len(limit.v) != 1 || len(delta) != 1 || delta[0] != 1 {
		return Dim{}
	}
	return valSub(limit.v[0], start.v[0])
}

// scalar returns a one-element input's value, integer or float.
func (c *nodeCtx) scalar(i int) (float64, bool) {
	if v, ok := c.ints(i); ok && len(v) == 1 {
		return float64(v[0]), true
	}
	if f, ok := c.floats(i); ok && len(f) == 1 {
		return float64(f[0]), true
	}
	return 0, false
}

func inferNonZero(c *nodeCtx) error {
	x := c.in(0)
	t := ShapeOf(onnx.TensorProto_INT64, Dim{}, Dim{})
	if x.Ranked {
		t.Dims[0] = DimOf(int64(len(x.Dims)))
	}
	c.out(0, t)
	return nil
}
