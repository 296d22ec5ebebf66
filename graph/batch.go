package graph

import "github.com/pare-dev/pare/onnx"

// FixedBatch returns the static size of axis 0 declared by the graph
// inputs, or 0 when no input declares one (a symbolic batch). Data with
// more rows must be fed in chunks of this size: onnxruntime refuses
// anything else.
func FixedBatch(m *Model) int64 {
	for _, in := range m.Graph.Inputs {
		dims := in.Info.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) == 0 {
			continue
		}
		if v, ok := dims[0].GetValue().(*onnx.TensorShapeProto_Dimension_DimValue); ok && v.DimValue > 0 {
			return v.DimValue
		}
	}
	return 0
}

// FitBatch returns the number of rows to run at once when batch are
// wanted: the model's fixed batch when it has one, else batch (at least
// 1).
func FitBatch(m *Model, batch int) int {
	if f := int(FixedBatch(m)); f > 0 {
		return f
	}
	return max(batch, 1)
}
