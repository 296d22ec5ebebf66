package ort

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/pare-dev/pare/tensor"
)

// ValueInfo describes a model input or output as onnxruntime sees it.
type ValueInfo struct {
	Name string
	// DType is the element type; tensor.Invalid for non-tensor values and
	// for element types tensor.Dense cannot hold (string, float8, int4).
	DType tensor.DType
	// Dims are the declared dims, -1 where a dim is symbolic or unknown.
	// Empty for a scalar (onnxruntime reports no dims for a value whose
	// rank is unknown, too).
	Dims []int64
	// Tensor is false for sequences, maps and other non-tensor values.
	Tensor bool
	// ElemType is onnxruntime's element type name, kept for messages
	// about types tensor.Dense cannot hold.
	ElemType string
}

// Static reports whether every dim is known.
func (v ValueInfo) Static() bool {
	for _, d := range v.Dims {
		if d < 0 {
			return false
		}
	}
	return true
}

// String formats the info as "name: float32[-1 3]".
func (v ValueInfo) String() string {
	if !v.Tensor {
		return v.Name + ": non-tensor"
	}
	if v.DType == tensor.Invalid {
		return fmt.Sprintf("%s: %s%s", v.Name, v.ElemType, tensor.FormatShape(v.Dims))
	}
	return v.Name + ": " + v.DType.String() + tensor.FormatShape(v.Dims)
}

func infoFrom(in []ort.InputOutputInfo) []ValueInfo {
	out := make([]ValueInfo, len(in))
	for i, v := range in {
		out[i] = ValueInfo{
			Name:     v.Name,
			Tensor:   v.OrtValueType == ort.ONNXTypeTensor,
			Dims:     append([]int64{}, v.Dimensions...),
			DType:    dtypeFromORT(v.DataType),
			ElemType: v.DataType.String(),
		}
		if !out[i].Tensor {
			out[i].DType = tensor.Invalid
			out[i].Dims = nil
		}
	}
	return out
}

// dtypeFromORT maps onnxruntime's element type; both use ONNX numbering.
func dtypeFromORT(t ort.TensorElementDataType) tensor.DType {
	d := tensor.DType(t)
	if !d.Valid() {
		return tensor.Invalid
	}
	return d
}

func names(infos []ValueInfo) []string {
	out := make([]string, len(infos))
	for i, v := range infos {
		out[i] = v.Name
	}
	return out
}
