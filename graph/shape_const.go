package graph

import (
	"github.com/pare-dev/pare/onnx"
)

// maxConstElems bounds the tensors whose contents inference tracks: shape
// computations are small, and larger constants are weights.
const maxConstElems = 4096

// cval is the statically known content of a small tensor. Elements are
// Dims so that sizes computed from Shape stay symbolic ("batch"); an
// unknown element is an unknown Dim. Booleans are 0 and 1.
type cval struct {
	dims []int64
	v    []Dim
}

func newCval(dims []int64, v []Dim) *cval {
	return &cval{dims: append([]int64(nil), dims...), v: v}
}

func intsCval(dims []int64, vals []int64) *cval {
	v := make([]Dim, len(vals))
	for i, x := range vals {
		v[i] = DimOf(x)
	}
	return newCval(dims, v)
}

// ints returns the elements when all are known integers.
func (c *cval) ints() ([]int64, bool) {
	out := make([]int64, len(c.v))
	for i, d := range c.v {
		x, ok := d.Value()
		if !ok {
			return nil, false
		}
		out[i] = x
	}
	return out, true
}

// isIntType reports whether dt's values can be tracked exactly as int64.
func isIntType(dt DataType) bool {
	switch dt {
	case onnx.TensorProto_INT64, onnx.TensorProto_INT32, onnx.TensorProto_INT16, onnx.TensorProto_INT8,
		onnx.TensorProto_UINT8, onnx.TensorProto_UINT16, onnx.TensorProto_UINT32, onnx.TensorProto_UINT64,
		onnx.TensorProto_BOOL, onnx.TensorProto_INT4, onnx.TensorProto_UINT4:
		return true
	}
	return false
}

// constFromTensor returns the contents of a small integer tensor, or
// nil.
func constFromTensor(t *onnx.TensorProto) *cval {
	n, err := NumElements(t.Dims)
	if err != nil || n > maxConstElems || !isIntType(DataTypeOf(t)) || IsExternal(t) {
		return nil
	}
	vals, err := Int64s(t)
	if err != nil {
		return nil
	}
	return intsCval(t.Dims, vals)
}

// strides returns row-major strides for dims.
func strides(dims []int64) []int64 {
	s := make([]int64, len(dims))
	acc := int64(1)
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= dims[i]
	}
	return s
}

// remap builds a tensor of shape dims whose element at multi-index idx is
// src.v[from(idx)]; from returns -1 for an unknown element.
func remap(src *cval, dims []int64, from func(idx []int64) int64) *cval {
	n, err := NumElements(dims)
	if err != nil || n > maxConstElems {
		return nil
	}
	out := make([]Dim, n)
	idx := make([]int64, len(dims))
	for k := range out {
		rem := int64(k)
		for i := len(dims) - 1; i >= 0; i-- {
			idx[i] = rem % dims[i]
			rem /= dims[i]
		}
		j := from(idx)
		if j < 0 || j >= int64(len(src.v)) {
			return nil
		}
		out[k] = src.v[j]
	}
	return newCval(dims, out)
}

// broadcastIndex maps an output index to a flat index of an operand of
// shape dims under numpy broadcasting.
func broadcastIndex(idx []int64, dims []int64) int64 {
	off := len(idx) - len(dims)
	if off < 0 {
		return -1
	}
	st := strides(dims)
	j := int64(0)
	for i, d := range dims {
		if d != 1 {
			j += idx[off+i] * st[i]
		}
	}
	return j
}

// broadcastInts returns the numpy broadcast of static shapes.
func broadcastInts(shapes ...[]int64) ([]int64, bool) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int64, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			switch o := out[off+i]; {
			case o == d || d == 1:
			case o == 1:
				out[off+i] = d
			default:
				return nil, false
			}
		}
	}
	return out, true
}

// elementwise applies f element by element to broadcast operands.
func elementwise(f func(xs []Dim) Dim, ops ...*cval) *cval {
	shapes := make([][]int64, len(ops))
	for i, o := range ops {
		shapes[i] = o.dims
	}
	dims, ok := broadcastInts(shapes...)
	if !ok {
		return nil
	}
	n, err := NumElements(dims)
	if err != nil || n > maxConstElems {
		return nil
	}
	out := make([]Dim, n)
	idx := make([]int64, len(dims))
	xs := make([]Dim, len(ops))
	for k := range out {
		rem := int64(k)
		for i := len(dims) - 1; i >= 0; i-- {
			idx[i] = rem % dims[i]
			rem /= dims[i]
		}
		for i, o := range ops {
			j := broadcastIndex(idx, o.dims)
			if j < 0 || j >= int64(len(o.v)) {
				return nil
			}
			xs[i] = o.v[j]
		}
		out[k] = f(xs)
	}
	return newCval(dims, out)
}
