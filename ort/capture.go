package ort

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pare-dev/pare/onnx"
)

// CaptureModel returns a copy of m whose graph also outputs the named
// values (node outputs, graph inputs or initializers), after its own
// outputs and in the order given; names already among the outputs and
// repeated names are added once. m is not changed. The copy shares m's
// tensors (a model's weights are not copied to be run).
//
// A captured value keeps its declared type when the graph's value_info,
// inputs or initializers give one; otherwise its type is left unset.
// onnxruntime accepts graph outputs without a type and infers it (tested
// down to rank-0 values), so Session.Outputs reports the inferred element
// type and rank. A name that no node produces makes session creation fail
// with onnxruntime's message naming it.
func CaptureModel(m *onnx.ModelProto, names []string) *onnx.ModelProto {
	c := shallowCopy(m).(*onnx.ModelProto)
	if c.Graph == nil {
		c.Graph = &onnx.GraphProto{}
	} else {
		c.Graph = shallowCopy(c.Graph).(*onnx.GraphProto)
	}
	g := c.Graph
	g.Output = append([]*onnx.ValueInfoProto(nil), g.Output...)
	seen := map[string]bool{}
	for _, o := range g.Output {
		seen[o.GetName()] = true
	}
	typed := map[string]*onnx.TypeProto{}
	for _, v := range g.ValueInfo {
		typed[v.GetName()] = v.GetType()
	}
	for _, v := range g.Input {
		typed[v.GetName()] = v.GetType()
	}
	for _, t := range g.Initializer {
		if _, ok := typed[t.GetName()]; !ok {
			typed[t.GetName()] = &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
				ElemType: proto.Int32(t.GetDataType()),
				Shape:    shapeOf(t.GetDims()),
			}}}
		}
	}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		vi := &onnx.ValueInfoProto{Name: proto.String(name)}
		if tp := typed[name]; tp != nil {
			vi.Type = proto.Clone(tp).(*onnx.TypeProto)
		}
		g.Output = append(g.Output, vi)
	}
	return c
}

func shapeOf(dims []int64) *onnx.TensorShapeProto {
	s := &onnx.TensorShapeProto{}
	for _, d := range dims {
		s.Dim = append(s.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return s
}

// shallowCopy returns a new message whose fields share m's values.
func shallowCopy(m proto.Message) proto.Message {
	src := m.ProtoReflect()
	dst := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	dst.SetUnknown(src.GetUnknown())
	return dst.Interface()
}
