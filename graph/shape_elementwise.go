package graph

import (
	"github.com/pare-dev/pare/onnx"
)

const boolType = onnx.TensorProto_BOOL

// inferSame gives output 0 the shape and type of input 0 (activations,
// normalisations, Identity, Softmax, Scatter*, ...).
func inferSame(c *nodeCtx) error {
	c.out(0, c.in(0))
	return nil
}

// inferSameAs gives output 0 the shape of input i and the type of input 0.
func inferSameAs(i int) shapeRule {
	return func(c *nodeCtx) error {
		t := c.in(i)
		t.Elem = c.in(0).Elem
		c.out(0, t)
		return nil
	}
}

// inferUnaryAs gives output 0 the shape of input 0 and element type dt.
func inferUnaryAs(dt DataType) shapeRule {
	return func(c *nodeCtx) error {
		t := c.in(0)
		t.Elem = dt
		c.out(0, t)
		return nil
	}
}

// broadcastShapes applies numpy broadcasting to ranked shapes; the result
// is unranked when any operand is.
func broadcastShapes(ts ...TensorShape) (TensorShape, error) {
	rank := 0
	for _, t := range ts {
		if !t.Ranked {
			return TensorShape{}, nil
		}
		rank = max(rank, len(t.Dims))
	}
	dims := make([]Dim, rank)
	for i := range dims {
		dims[i] = DimOf(1)
	}
	for _, t := range ts {
		off := rank - len(t.Dims)
		for i, d := range t.Dims {
			b, ok := broadcastDim(dims[off+i], d)
			if !ok {
				return TensorShape{}, mismatch("cannot broadcast %v with %v", dims[off+i], d)
			}
			dims[off+i] = b
		}
	}
	return TensorShape{Dims: dims, Ranked: true}, nil
}

// inputShapes returns every present input's shape.
func (c *nodeCtx) inputShapes(from int) []TensorShape {
	var ts []TensorShape
	for i := from; i < len(c.n.Proto.Input); i++ {
		if c.has(i) {
			ts = append(ts, c.in(i))
		}
	}
	return ts
}

// inferBroadcast covers the numpy-broadcasting arithmetic ops: the
// result takes the first input's type.
func inferBroadcast(c *nodeCtx) error {
	t, err := broadcastShapes(c.inputShapes(0)...)
	if err != nil {
		return err
	}
	t.Elem = c.in(0).Elem
	c.out(0, t)
	return nil
}

func inferCompare(c *nodeCtx) error {
	t, err := broadcastShapes(c.inputShapes(0)...)
	if err != nil {
		return err
	}
	t.Elem = boolType
	c.out(0, t)
	return nil
}

func inferWhere(c *nodeCtx) error {
	t, err := broadcastShapes(c.inputShapes(0)...)
	if err != nil {
		return err
	}
	t.Elem = c.in(1).Elem
	if t.Elem == onnx.TensorProto_UNDEFINED {
		t.Elem = c.in(2).Elem
	}
	c.out(0, t)
	return nil
}

func inferCast(c *nodeCtx) error {
	t := c.in(0)
	t.Elem = DataType(c.n.IntAttr("to", 0))
	c.out(0, t)
	return nil
}

func inferCastLike(c *nodeCtx) error {
	t := c.in(0)
	t.Elem = c.in(1).Elem
	c.out(0, t)
	return nil
}

func inferDropout(c *nodeCtx) error {
	t := c.in(0)
	c.out(0, t)
	t.Elem = boolType
	c.out(1, t)
	return nil
}

// inferLayerNorm also shapes the optional Mean and InvStdDev outputs:
// the input's shape with the normalised axes set to 1.
func inferLayerNorm(c *nodeCtx) error {
	t := c.in(0)
	c.out(0, t)
	if !t.Ranked || len(c.n.Proto.Output) < 2 {
		return nil
	}
	axis, err := normAxis(c.n.IntAttr("axis", -1), len(t.Dims))
	if err != nil {
		return err
	}
	stats := TensorShape{Elem: DataType(c.n.IntAttr("stash_type", int64(onnx.TensorProto_FLOAT))), Ranked: true}
	stats.Dims = append([]Dim(nil), t.Dims...)
	for i := axis; i < len(stats.Dims); i++ {
		stats.Dims[i] = DimOf(1)
	}
	c.out(1, stats)
	c.out(2, stats)
	return nil
}

// inferQuantize: the output type is output_dtype (opset 21), else the
// zero point's type, else uint8.
func inferQuantize(c *nodeCtx) error {
	t := c.in(0)
	t.Elem = DataType(c.n.IntAttr("output_dtype", 0))
	if t.Elem == onnx.TensorProto_UNDEFINED && c.has(2) {
		t.Elem = c.in(2).Elem
	}
	if t.Elem == onnx.TensorProto_UNDEFINED {
		t.Elem = onnx.TensorProto_UINT8
	}
	c.out(0, t)
	return nil
}

// inferDequantize: the output type is output_dtype (opset 23), else the
// scale's type.
func inferDequantize(c *nodeCtx) error {
	t := c.in(0)
	t.Elem = DataType(c.n.IntAttr("output_dtype", 0))
	if t.Elem == onnx.TensorProto_UNDEFINED {
		t.Elem = c.in(1).Elem
	}
	c.out(0, t)
	return nil
}

func inferDynamicQuantize(c *nodeCtx) error {
	t := c.in(0)
	t.Elem = onnx.TensorProto_UINT8
	c.out(0, t)
	c.out(1, ShapeOf(onnx.TensorProto_FLOAT))
	c.out(2, ShapeOf(onnx.TensorProto_UINT8))
	return nil
}
