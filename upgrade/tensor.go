package upgrade

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/tensor"
)

// floatTensor makes a tensor of float element type dt (FLOAT, DOUBLE,
// FLOAT16 or BFLOAT16) holding vals.
func floatTensor(name string, dt graph.DataType, dims []int64, vals []float64) (*onnx.TensorProto, error) {
	var raw []byte
	switch dt {
	case onnx.TensorProto_FLOAT:
		raw = make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(v)))
		}
	case onnx.TensorProto_DOUBLE:
		raw = make([]byte, 8*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
		}
	case onnx.TensorProto_FLOAT16, onnx.TensorProto_BFLOAT16:
		raw = make([]byte, 2*len(vals))
		for i, v := range vals {
			h := tensor.Float32ToFloat16(float32(v))
			if dt == onnx.TensorProto_BFLOAT16 {
				h = tensor.Float32ToBFloat16(float32(v))
			}
			binary.LittleEndian.PutUint16(raw[2*i:], h)
		}
	default:
		return nil, fmt.Errorf("%w: element type %s", ErrUnsupported, dt)
	}
	return graph.NewTensor(name, dt, dims, raw), nil
}
