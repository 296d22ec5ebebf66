package graph_test

import (
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// attrList keeps the attribute arguments of a mixed list.
func attrList(args []any) []*onnx.AttributeProto {
	var out []*onnx.AttributeProto
	for _, a := range args {
		if p, ok := a.(*onnx.AttributeProto); ok {
			out = append(out, p)
		}
	}
	return out
}

func strp(s string) *string { return &s }

// newTensor returns a zero-filled initializer of any fixed-size type.
func newTensor(name string, dt graph.DataType, dims []int64) *onnx.TensorProto {
	n, _ := graph.NumElements(dims)
	size, _ := graph.ByteSize(dt, n)
	return graph.NewTensor(name, dt, dims, make([]byte, size))
}

// floatsAttr returns a FLOATS attribute.
func floatsAttr(name string, v ...float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: &name, Type: onnx.AttributeProto_FLOATS.Enum(), Floats: v}
}
