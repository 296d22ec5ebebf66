package graph_test

import (
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

func unary(op string, xDims []int64, attrs ...*onnx.AttributeProto) func(b *build.Builder) string {
	return func(b *build.Builder) string {
		return b.Node(op, []string{b.Input("x", f32, xDims...)}, attrs...)
	}
}

func TestInferShapesElementwise(t *testing.T) {
	d := func(v ...int64) []int64 { return v }
	var cases []shapeCase
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "PRelu"} {
		cases = append(cases, shapeCase{name: op, build: binary(op, d(-1, 3, 1), d(4)), want: "float[d0,3,4]"})
	}
	for _, op := range []string{"Equal", "Less", "Greater"} {
		cases = append(cases, shapeCase{name: op, build: binary(op, d(2, 1), d(1, 5)), want: "bool[2,5]"})
	}
	for _, op := range []string{"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Gelu", "Erf", "Tanh",
		"LeakyRelu", "Softplus", "Mish", "Sqrt", "Exp", "Neg", "Abs", "Reciprocal", "Softmax", "LogSoftmax",
		"Identity", "BatchNormalization", "InstanceNormalization", "GroupNormalization"} {
		cases = append(cases, shapeCase{name: op, build: unary(op, d(-1, 8, 5)), want: "float[d0,8,5]"})
	}
	cases = append(cases, []shapeCase{
		{name: "broadcast mismatch", build: binary("Add", d(2, 3), d(4)), wantErr: true},
		{name: "broadcast symbols", build: binary("Mul", d(-1, 4), d(-1, 1)), want: "float[d0,4]"},
		{name: "broadcast scalar", build: binary("Add", d(2, 3), d()), want: "float[2,3]"},
		{name: "where", build: func(b *build.Builder) string {
			c := b.Input("c", onnx.TensorProto_BOOL, 1, 1, 4, 4)
			return b.Node("Where", []string{c, b.Input("x", f32), b.Input("y", f32, -1, 2, 4, 4)})
		}, want: "float[d0,2,4,4]"},
		{name: "and", build: func(b *build.Builder) string {
			bt := onnx.TensorProto_BOOL
			return b.Node("And", []string{b.Input("x", bt, 3), b.Input("y", bt, 2, 1)})
		}, want: "bool[2,3]"},
		{name: "cast", build: unary("Cast", d(-1, 3), build.Int("to", int64(onnx.TensorProto_FLOAT16))),
			want: "float16[d0,3]"},
		{name: "dropout mask", build: func(b *build.Builder) string {
			return b.NodeN("Dropout", []string{b.Input("x", f32, 2, 3)}, 2)[1]
		}, want: "bool[2,3]"},
		{name: "layernorm mean", build: func(b *build.Builder) string {
			x := b.Input("x", f32, -1, 7, 16)
			s := b.Init("s", []int64{16}, zeros(16))
			return b.NodeN("LayerNormalization", []string{x, s}, 3, build.Int("axis", -1))[1]
		}, want: "float[d0,7,1]"},
		{name: "quantize", build: func(b *build.Builder) string {
			x := b.Input("x", f32, -1, 8)
			zp := b.InitTensor(newTensor("zp", onnx.TensorProto_INT8, nil))
			return b.Node("QuantizeLinear", []string{x, b.Init("s", nil, []float32{1}), zp})
		}, want: "int8[d0,8]"},
		{name: "quantize default uint8", build: func(b *build.Builder) string {
			return b.Node("QuantizeLinear", []string{b.Input("x", f32, 4), b.Init("s", nil, []float32{1})})
		}, want: "uint8[4]"},
		{name: "dequantize", build: func(b *build.Builder) string {
			w := b.InitTensor(newTensor("w", onnx.TensorProto_INT4, []int64{8, 3}))
			s := b.Init("s", []int64{3}, zeros(3))
			return b.Node("DequantizeLinear", []string{w, s}, build.Int("axis", 1))
		}, opset: 21, want: "float[8,3]"},
		{name: "dynamic quantize scale", build: func(b *build.Builder) string {
			return b.NodeN("DynamicQuantizeLinear", []string{b.Input("x", f32, -1, 8)}, 3)[1]
		}, want: "float[]"},
	}...)
	runShapeCases(t, cases)
}

func TestInferShapesMultipleOutputs(t *testing.T) {
	b := build.New(17)
	x := b.Input("x", f32, -1, 8)
	outs := b.NodeN("DynamicQuantizeLinear", []string{x}, 3)
	for _, o := range outs {
		declareOutput(b, o)
	}
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	s, err := graph.InferShapes(m)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"uint8[d0,8]", "float[]", "uint8[]"} {
		if got, _ := s.Of(outs[i]); got.String() != want {
			t.Errorf("output %d = %v, want %s", i, got, want)
		}
	}
}
