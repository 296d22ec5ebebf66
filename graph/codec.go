package graph

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// DecodeFloat32 converts the first n elements of raw (type dt) into
// float32 values.
func DecodeFloat32(dt DataType, raw []byte, n int64) ([]float32, error) {
	size, err := ByteSize(dt, n)
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) < size {
		return nil, fmt.Errorf("%d bytes hold fewer than %d elements of %v", len(raw), n, dt)
	}
	out := make([]float32, n)
	switch dt {
	case onnx.TensorProto_FLOAT:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case onnx.TensorProto_DOUBLE:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	case onnx.TensorProto_FLOAT16:
		for i := range out {
			out[i] = tensor.Float16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case onnx.TensorProto_BFLOAT16:
		for i := range out {
			out[i] = tensor.BFloat16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case onnx.TensorProto_FLOAT4E2M1:
		decodeFloat4(raw, out)
	default:
		if decode := float8Decoder(dt); decode != nil {
			for i := range out {
				out[i] = decode(raw[i])
			}
			return out, nil
		}
		ints, err := DecodeInt64(dt, raw, n)
		if err != nil {
			return nil, err
		}
		for i, v := range ints {
			out[i] = float32(v)
		}
	}
	return out, nil
}

// DecodeInt64 converts the first n elements of raw (an integer or boolean
// type dt) into int64 values.
func DecodeInt64(dt DataType, raw []byte, n int64) ([]int64, error) {
	size, err := ByteSize(dt, n)
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) < size {
		return nil, fmt.Errorf("%d bytes hold fewer than %d elements of %v", len(raw), n, dt)
	}
	out := make([]int64, n)
	le := binary.LittleEndian
	switch dt {
	case onnx.TensorProto_INT8:
		for i := range out {
			out[i] = int64(int8(raw[i]))
		}
	case onnx.TensorProto_UINT8, onnx.TensorProto_BOOL:
		for i := range out {
			out[i] = int64(raw[i])
		}
	case onnx.TensorProto_INT16:
		for i := range out {
			out[i] = int64(int16(le.Uint16(raw[2*i:])))
		}
	case onnx.TensorProto_UINT16:
		for i := range out {
			out[i] = int64(le.Uint16(raw[2*i:]))
		}
	case onnx.TensorProto_INT32:
		for i := range out {
			out[i] = int64(int32(le.Uint32(raw[4*i:])))
		}
	case onnx.TensorProto_UINT32:
		for i := range out {
			out[i] = int64(le.Uint32(raw[4*i:]))
		}
	case onnx.TensorProto_INT64, onnx.TensorProto_UINT64:
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
	case onnx.TensorProto_INT4, onnx.TensorProto_UINT4:
		signed := dt == onnx.TensorProto_INT4
		for i := range out {
			out[i] = int64(Nibble(raw, i, signed))
		}
	default:
		return nil, fmt.Errorf("cannot decode %v as integers", dt)
	}
	return out, nil
}

// EncodeFloat32 converts vals to raw bytes of float type dt (FLOAT,
// DOUBLE, FLOAT16 or BFLOAT16).
func EncodeFloat32(dt DataType, vals []float32) ([]byte, error) {
	switch dt {
	case onnx.TensorProto_FLOAT:
		out := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return out, nil
	case onnx.TensorProto_DOUBLE:
		out := make([]byte, 8*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(float64(v)))
		}
		return out, nil
	case onnx.TensorProto_FLOAT16:
		out := make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(out[2*i:], tensor.Float32ToFloat16(v))
		}
		return out, nil
	case onnx.TensorProto_BFLOAT16:
		out := make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(out[2*i:], tensor.Float32ToBFloat16(v))
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot encode float32 values as %v", dt)
}

// EncodeInt64 converts vals to raw bytes of integer type dt, packing
// INT4/UINT4 two to a byte. Values out of dt's range are an error.
func EncodeInt64(dt DataType, vals []int64) ([]byte, error) {
	lo, hi, ok := intRange(dt)
	if !ok {
		return nil, fmt.Errorf("cannot encode integers as %v", dt)
	}
	for _, v := range vals {
		if (dt != onnx.TensorProto_UINT64 && (v < lo || v > hi)) || (dt == onnx.TensorProto_UINT64 && v < 0) {
			return nil, fmt.Errorf("value %d out of range for %v", v, dt)
		}
	}
	size, err := ByteSize(dt, int64(len(vals)))
	if err != nil {
		return nil, err
	}
	out := make([]byte, size)
	le := binary.LittleEndian
	switch Bits(dt) {
	case 4:
		for i, v := range vals {
			SetNibble(out, i, int8(v))
		}
	case 8:
		for i, v := range vals {
			out[i] = byte(v)
		}
	case 16:
		for i, v := range vals {
			le.PutUint16(out[2*i:], uint16(v))
		}
	case 32:
		for i, v := range vals {
			le.PutUint32(out[4*i:], uint32(v))
		}
	case 64:
		for i, v := range vals {
			le.PutUint64(out[8*i:], uint64(v))
		}
	}
	return out, nil
}

func intRange(dt DataType) (lo, hi int64, ok bool) {
	switch dt {
	case onnx.TensorProto_BOOL:
		return 0, 1, true
	case onnx.TensorProto_INT4:
		return -8, 7, true
	case onnx.TensorProto_UINT4:
		return 0, 15, true
	case onnx.TensorProto_INT8:
		return math.MinInt8, math.MaxInt8, true
	case onnx.TensorProto_UINT8:
		return 0, math.MaxUint8, true
	case onnx.TensorProto_INT16:
		return math.MinInt16, math.MaxInt16, true
	case onnx.TensorProto_UINT16:
		return 0, math.MaxUint16, true
	case onnx.TensorProto_INT32:
		return math.MinInt32, math.MaxInt32, true
	case onnx.TensorProto_UINT32:
		return 0, math.MaxUint32, true
	case onnx.TensorProto_INT64, onnx.TensorProto_UINT64:
		return math.MinInt64, math.MaxInt64, true
	}
	return 0, 0, false
}

// Nibble returns element i of a packed 4-bit array: element 2k is the low
// nibble of byte k, element 2k+1 the high one (the ONNX and MatMulNBits
// layout). signed selects two's-complement INT4.
func Nibble(packed []byte, i int, signed bool) int8 {
	b := packed[i/2]
	if i%2 == 1 {
		b >>= 4
	}
	b &= 0x0f
	if signed && b >= 8 {
		return int8(b) - 16
	}
	return int8(b)
}

// SetNibble stores v (its low four bits) as element i of a packed 4-bit
// array.
func SetNibble(packed []byte, i int, v int8) {
	shift := uint(4 * (i % 2))
	packed[i/2] = packed[i/2]&^(0x0f<<shift) | (byte(v)&0x0f)<<shift
}
