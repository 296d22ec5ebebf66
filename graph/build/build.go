// Package build constructs small ONNX models in Go, for tests and for
// the helper graphs pare inserts (rotations, quantization nodes).
package build

import (
	"fmt"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// Builder accumulates a graph. Names are unique by construction: each
// node output is called after the node.
type Builder struct {
	Model *onnx.ModelProto
	g     *onnx.GraphProto
	n     int
}

// New starts a model importing the default ONNX domain at opset.
func New(opset int64) *Builder {
	g := &onnx.GraphProto{Name: str("g")}
	return &Builder{
		Model: &onnx.ModelProto{
			IrVersion:    i64(8),
			ProducerName: str("pare-build"),
			OpsetImport:  []*onnx.OperatorSetIdProto{{Domain: str(""), Version: i64(opset)}},
			Graph:        g,
		},
		g: g,
	}
}

// Import adds an opset import for another domain.
func (b *Builder) Import(domain string, version int64) *Builder {
	b.Model.OpsetImport = append(b.Model.OpsetImport, &onnx.OperatorSetIdProto{Domain: str(domain), Version: i64(version)})
	return b
}

// Input declares a graph input; a dim of -1 is symbolic ("N").
func (b *Builder) Input(name string, dt graph.DataType, dims ...int64) string {
	b.g.Input = append(b.g.Input, ValueInfo(name, dt, dims...))
	return name
}

// Output declares a graph output.
func (b *Builder) Output(name string, dt graph.DataType, dims ...int64) {
	b.g.Output = append(b.g.Output, ValueInfo(name, dt, dims...))
}

// Init adds a float initializer.
func (b *Builder) Init(name string, dims []int64, vals []float32) string {
	b.g.Initializer = append(b.g.Initializer, graph.FloatTensor(name, dims, vals))
	return name
}

// InitInts adds an int64 initializer.
func (b *Builder) InitInts(name string, dims []int64, vals []int64) string {
	b.g.Initializer = append(b.g.Initializer, graph.Int64Tensor(name, dims, vals))
	return name
}

// InitTensor adds any initializer.
func (b *Builder) InitTensor(t *onnx.TensorProto) string {
	b.g.Initializer = append(b.g.Initializer, t)
	return t.GetName()
}

// Node appends a node with one output and returns the output's name.
func (b *Builder) Node(op string, inputs []string, attrs ...*onnx.AttributeProto) string {
	return b.NodeN(op, inputs, 1, attrs...)[0]
}

// NodeN appends a node with n outputs.
func (b *Builder) NodeN(op string, inputs []string, n int, attrs ...*onnx.AttributeProto) []string {
	b.n++
	name := fmt.Sprintf("%s_%d", op, b.n)
	outs := make([]string, n)
	for i := range outs {
		outs[i] = fmt.Sprintf("%s_out%d", name, i)
	}
	b.g.Node = append(b.g.Node, &onnx.NodeProto{
		Name: str(name), OpType: str(op), Input: inputs, Output: outs, Attribute: attrs,
	})
	return outs
}

// Last returns the most recently added node.
func (b *Builder) Last() *onnx.NodeProto { return b.g.Node[len(b.g.Node)-1] }

// Build indexes the model.
func (b *Builder) Build() (*graph.Model, error) { return graph.FromProto(b.Model) }

// ValueInfo returns a tensor value_info; a dim of -1 is symbolic.
func ValueInfo(name string, dt graph.DataType, dims ...int64) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for i, d := range dims {
		if d < 0 {
			shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{
				Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: fmt.Sprintf("d%d", i)}})
		} else {
			shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{
				Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
	}
	return &onnx.ValueInfoProto{Name: str(name), Type: &onnx.TypeProto{
		Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
			ElemType: i32(int32(dt)), Shape: shape}}}}
}

// Int returns an INT attribute.
func Int(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: str(name), Type: onnx.AttributeProto_INT.Enum(), I: i64(v)}
}

// Ints returns an INTS attribute.
func Ints(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: str(name), Type: onnx.AttributeProto_INTS.Enum(), Ints: v}
}

// Float returns a FLOAT attribute.
func Float(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: str(name), Type: onnx.AttributeProto_FLOAT.Enum(), F: &v}
}

// String returns a STRING attribute.
func String(name, v string) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: str(name), Type: onnx.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// Tensor returns a TENSOR attribute.
func Tensor(name string, t *onnx.TensorProto) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: str(name), Type: onnx.AttributeProto_TENSOR.Enum(), T: t}
}

func str(s string) *string { return &s }
func i64(v int64) *int64   { return &v }
func i32(v int32) *int32   { return &v }
