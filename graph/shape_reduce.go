package graph

import (
	"github.com/pare-dev/pare/onnx"
)

// reduceAxesInputSince is the opset from which a reduction reads its
// axes from input 1 instead of an attribute.
func reduceAxesInputSince(op string) int64 {
	if op == "ReduceSum" {
		return 13
	}
	return 18
}

// inferReduce: the reduced axes become 1 (keepdims) or disappear; no
// axes means all, unless noop_with_empty_axes.
func inferReduce(c *nodeCtx) error {
	x := c.in(0)
	keep := c.n.IntAttr("keepdims", 1) == 1
	axes, _, known := c.axesArg(1, reduceAxesInputSince(c.n.Op()))
	if !x.Ranked || !known {
		t := TensorShape{Elem: x.Elem}
		if x.Ranked && keep {
			t.Dims, t.Ranked = unknownDims(len(x.Dims)), true
		}
		c.out(0, t)
		return nil
	}
	if len(axes) == 0 && c.n.IntAttr("noop_with_empty_axes", 0) == 1 {
		c.out(0, x)
		return nil
	}
	reduced := make([]bool, len(x.Dims))
	for _, a := range axes {
		i, err := normAxis(a, len(x.Dims))
		if err != nil {
			return err
		}
		reduced[i] = true
	}
	var dims []Dim
	for i, d := range x.Dims {
		switch {
		case len(axes) > 0 && !reduced[i]:
			dims = append(dims, d)
		case keep:
			dims = append(dims, DimOf(1))
		}
	}
	c.out(0, ShapeOf(x.Elem, dims...))
	return nil
}

// inferArg: ArgMax/ArgMin reduce one axis to int64 indices.
func inferArg(c *nodeCtx) error {
	x := c.in(0)
	if !x.Ranked {
		c.out(0, TensorShape{Elem: onnx.TensorProto_INT64})
		return nil
	}
	axis, err := normAxis(c.n.IntAttr("axis", 0), len(x.Dims))
	if err != nil {
		return err
	}
	var dims []Dim
	for i, d := range x.Dims {
		switch {
		case i != axis:
			dims = append(dims, d)
		case c.n.IntAttr("keepdims", 1) == 1:
			dims = append(dims, DimOf(1))
		}
	}
	c.out(0, ShapeOf(onnx.TensorProto_INT64, dims...))
	return nil
}

// inferTopK: the axis becomes K (input 1 since opset 10, else the k
// attribute); values and int64 indices.
func inferTopK(c *nodeCtx) error {
	x := c.in(0)
	if !x.Ranked {
		c.out(0, TensorShape{Elem: x.Elem})
		c.out(1, TensorShape{Elem: onnx.TensorProto_INT64})
		return nil
	}
	axis, err := normAxis(c.n.IntAttr("axis", -1), len(x.Dims))
	if err != nil {
		return err
	}
	k := Dim{}
	if c.opset < 10 {
		k = DimOf(c.n.IntAttr("k", 0))
	} else if v, ok := c.value(1); ok && len(v.v) == 1 {
		k = v.v[0]
	}
	if kv, ok := k.Value(); ok {
		if n, ok := x.Dims[axis].Value(); ok && kv > n {
			return mismatch("k=%d larger than axis of size %d", kv, n)
		}
	}
	t := withDim(x, axis, k)
	c.out(0, t)
	t.Elem = onnx.TensorProto_INT64
	c.out(1, t)
	return nil
}
