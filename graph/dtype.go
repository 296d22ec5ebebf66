package graph

import (
	"fmt"

	"github.com/pare-dev/pare/onnx"
)

// DataType is an ONNX tensor element type.
type DataType = onnx.TensorProto_DataType

// Bits returns the storage size of one element of dt in bits, or 0 for
// types without a fixed size (STRING, UNDEFINED, unknown values).
func Bits(dt DataType) int {
	switch dt {
	case onnx.TensorProto_BOOL, onnx.TensorProto_INT8, onnx.TensorProto_UINT8,
		onnx.TensorProto_FLOAT8E4M3FN, onnx.TensorProto_FLOAT8E4M3FNUZ,
		onnx.TensorProto_FLOAT8E5M2, onnx.TensorProto_FLOAT8E5M2FNUZ,
		onnx.TensorProto_FLOAT8E8M0:
		return 8
	case onnx.TensorProto_INT16, onnx.TensorProto_UINT16, onnx.TensorProto_FLOAT16,
		onnx.TensorProto_BFLOAT16:
		return 16
	case onnx.TensorProto_FLOAT, onnx.TensorProto_INT32, onnx.TensorProto_UINT32:
		return 32
	case onnx.TensorProto_DOUBLE, onnx.TensorProto_INT64, onnx.TensorProto_UINT64,
		onnx.TensorProto_COMPLEX64:
		return 64
	case onnx.TensorProto_COMPLEX128:
		return 128
	case onnx.TensorProto_INT4, onnx.TensorProto_UINT4, onnx.TensorProto_FLOAT4E2M1:
		return 4
	case onnx.TensorProto_INT2, onnx.TensorProto_UINT2:
		return 2
	}
	return 0
}

// IsFloat reports whether dt is a floating-point type.
func IsFloat(dt DataType) bool {
	switch dt {
	case onnx.TensorProto_FLOAT, onnx.TensorProto_DOUBLE, onnx.TensorProto_FLOAT16,
		onnx.TensorProto_BFLOAT16, onnx.TensorProto_FLOAT8E4M3FN, onnx.TensorProto_FLOAT8E4M3FNUZ,
		onnx.TensorProto_FLOAT8E5M2, onnx.TensorProto_FLOAT8E5M2FNUZ, onnx.TensorProto_FLOAT8E8M0,
		onnx.TensorProto_FLOAT4E2M1:
		return true
	}
	return false
}

// NumElements returns the product of dims, or an error when a dim is
// negative or the product overflows int64.
func NumElements(dims []int64) (int64, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in %v", d, dims)
		}
		if d != 0 && n > (1<<62)/d {
			return 0, fmt.Errorf("dimensions %v overflow", dims)
		}
		n *= d
	}
	return n, nil
}

// ByteSize returns the number of bytes n elements of dt occupy in
// raw_data (sub-byte types are packed, rounded up to whole bytes).
func ByteSize(dt DataType, n int64) (int64, error) {
	bits := int64(Bits(dt))
	if bits == 0 {
		return 0, fmt.Errorf("element type %v has no fixed size", dt)
	}
	if n > (1<<62)/bits {
		return 0, fmt.Errorf("%d elements of %v overflow", n, dt)
	}
	return (n*bits + 7) / 8, nil
}
