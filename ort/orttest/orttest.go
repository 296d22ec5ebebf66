// Package orttest builds small ONNX models from Go literals for the tests
// of ort, check and the CLI. It depends only on the generated onnx
// package, so those tests do not wait on the graph package.
package orttest

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/onnx"
)

// Element types, as ONNX TensorProto.DataType numbers.
const (
	Float   = int32(onnx.TensorProto_FLOAT)
	Float16 = int32(onnx.TensorProto_FLOAT16)
	Double  = int32(onnx.TensorProto_DOUBLE)
	Int32   = int32(onnx.TensorProto_INT32)
	Int64   = int32(onnx.TensorProto_INT64)
	Bool    = int32(onnx.TensorProto_BOOL)
)

// Dim is a dim for Value: an int64 for a fixed size, a string for a
// symbolic one.
type Dim any

// Value declares a tensor value of elem type with the given dims.
func Value(name string, elem int32, dims ...Dim) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case string:
			shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		case int:
			shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case int64:
			shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
	}
	return &onnx.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
			ElemType: proto.Int32(elem), Shape: shape,
		}}},
	}
}

// Node builds a node; its name is its first output.
func Node(op string, in []string, out []string, attrs ...*onnx.AttributeProto) *onnx.NodeProto {
	return &onnx.NodeProto{OpType: proto.String(op), Name: proto.String(out[0]), Input: in, Output: out, Attribute: attrs}
}

// IntAttr builds an integer attribute.
func IntAttr(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: proto.String(name), Type: onnx.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// Floats builds a float32 initializer stored in raw_data.
func Floats(name string, dims []int64, vals []float32) *onnx.TensorProto {
	raw := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	return &onnx.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(Float), RawData: raw}
}

// Model wraps a graph at opset 17, IR version 8.
func Model(nodes []*onnx.NodeProto, inits []*onnx.TensorProto, inputs, outputs []*onnx.ValueInfoProto) *onnx.ModelProto {
	return &onnx.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("orttest"),
		OpsetImport:  []*onnx.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph: &onnx.GraphProto{
			Name: proto.String("g"), Node: nodes, Initializer: inits, Input: inputs, Output: outputs,
		},
	}
}

// Bytes serialises m, failing the test on error.
func Bytes(t testing.TB, m *onnx.ModelProto) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Write saves m as name in dir and returns its path.
func Write(t testing.TB, dir, name string, m *onnx.ModelProto) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, Bytes(t, m), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// MLP is a two-layer classifier: x[N,4] → MatMul W1[4,8] → Add b1 → Relu
// ("hidden") → MatMul W2[8,3] → Add b2 → "logits"[N,3]. Weights are fixed
// non-trivial numbers so outputs are not degenerate.
func MLP() *onnx.ModelProto {
	w1 := make([]float32, 4*8)
	for i := range w1 {
		w1[i] = float32(math.Sin(float64(i)*0.7)) * 0.8
	}
	b1 := make([]float32, 8)
	for i := range b1 {
		b1[i] = 0.05 * float32(i%3)
	}
	w2 := make([]float32, 8*3)
	for i := range w2 {
		w2[i] = float32(math.Cos(float64(i)*1.3)) * 0.6
	}
	b2 := []float32{0.1, -0.1, 0.05}
	return Model(
		[]*onnx.NodeProto{
			Node("MatMul", []string{"x", "W1"}, []string{"mm1"}),
			Node("Add", []string{"mm1", "b1"}, []string{"pre"}),
			Node("Relu", []string{"pre"}, []string{"hidden"}),
			Node("MatMul", []string{"hidden", "W2"}, []string{"mm2"}),
			Node("Add", []string{"mm2", "b2"}, []string{"logits"}),
		},
		[]*onnx.TensorProto{
			Floats("W1", []int64{4, 8}, w1), Floats("b1", []int64{8}, b1),
			Floats("W2", []int64{8, 3}, w2), Floats("b2", []int64{3}, b2),
		},
		[]*onnx.ValueInfoProto{Value("x", Float, "N", 4)},
		[]*onnx.ValueInfoProto{Value("logits", Float, "N", 3)},
	)
}

// Perturb returns a copy of m with every float of the named raw_data
// initializer scaled by (1+rel).
func Perturb(m *onnx.ModelProto, init string, rel float32) *onnx.ModelProto {
	c := proto.Clone(m).(*onnx.ModelProto)
	for _, t := range c.Graph.Initializer {
		if t.GetName() != init {
			continue
		}
		for i := 0; i+4 <= len(t.RawData); i += 4 {
			v := math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[i:]))
			binary.LittleEndian.PutUint32(t.RawData[i:], math.Float32bits(v*(1+rel)))
		}
	}
	return c
}
