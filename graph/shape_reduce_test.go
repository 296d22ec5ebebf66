package graph_test

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

func TestInferShapesReduceAndSources(t *testing.T) {
	d := func(v ...int64) []int64 { return v }
	runShapeCases(t, []shapeCase{
		{name: "reducemean attr", build: unary("ReduceMean", d(-1, 16, 64), build.Ints("axes", -1)), want: "float[d0,16,1]"},
		{name: "reducemean no keepdims", build: unary("ReduceMean", d(-1, 16, 64), build.Ints("axes", 1),
			build.Int("keepdims", 0)), want: "float[d0,64]"},
		{name: "reducemean all", build: unary("ReduceMax", d(2, 3), build.Int("keepdims", 0)), want: "float[]"},
		{name: "reducesum input", build: withInts("ReduceSum", d(2, 3, 4), d(0, 2)), want: "float[1,3,1]"},
		{name: "reducemean input opset 18", opset: 18, build: withInts("ReduceMean", d(2, 3, 4), d(1),
			build.Int("keepdims", 0)), want: "float[2,4]"},
		{name: "reduce noop", opset: 18, build: unary("ReduceSum", d(2, 3), build.Int("noop_with_empty_axes", 1)),
			want: "float[2,3]"},
		{name: "argmax", build: unary("ArgMax", d(-1, 10), build.Int("axis", 1), build.Int("keepdims", 0)),
			want: "int64[d0]"},
		{name: "topk", build: func(b *build.Builder) string {
			x := b.Input("x", f32, -1, 10)
			return b.NodeN("TopK", []string{x, b.InitInts("k", []int64{1}, []int64{3})}, 2)[1]
		}, want: "int64[d0,3]"},
		{name: "shape", build: unary("Shape", d(-1, 3, 4)), want: "int64[3]"},
		{name: "shape start end", opset: 15, build: unary("Shape", d(-1, 3, 4, 5), build.Int("start", 1),
			build.Int("end", -1)), want: "int64[2]"},
		{name: "size", build: unary("Size", d(-1, 3)), want: "int64[]"},
		{name: "constant", build: func(b *build.Builder) string {
			return b.Node("Constant", nil, build.Tensor("value", newTensor("c", onnx.TensorProto_FLOAT16, []int64{2, 5})))
		}, want: "float16[2,5]"},
		{name: "constant of shape from Shape", build: func(b *build.Builder) string {
			s := b.Node("Shape", []string{b.Input("x", f32, -1, 7)})
			return b.Node("ConstantOfShape", []string{s},
				build.Tensor("value", newTensor("v", onnx.TensorProto_INT64, []int64{1})))
		}, want: "int64[d0,7]"},
		{name: "range", build: func(b *build.Builder) string {
			return b.Node("Range", []string{b.InitTensor(int64Scalar(2)), b.InitTensor(int64Scalar(11)),
				b.InitTensor(int64Scalar(3))})
		}, want: "int64[3]"},
		{name: "range float", build: func(b *build.Builder) string {
			return b.Node("Range", []string{b.Init("s", nil, []float32{0}), b.Init("l", nil, []float32{1}),
				b.Init("d", nil, []float32{0.25})})
		}, want: "float[4]"},
		{name: "range from Shape", build: func(b *build.Builder) string {
			s := b.Node("Shape", []string{b.Input("x", f32, 3, 9)})
			n := b.Node("Gather", []string{s, b.InitTensor(int64Scalar(1))})
			return b.Node("Range", []string{b.InitTensor(int64Scalar(0)), n, b.InitTensor(int64Scalar(1))})
		}, want: "int64[9]"},
		{name: "nonzero", build: unary("NonZero", d(4, 5)), want: "int64[2,?]"},
		{name: "lstm bidirectional", build: func(b *build.Builder) string {
			x := b.Input("x", f32, 12, -1, 8)
			w := b.Init("w", []int64{2, 64, 8}, zeros(2*64*8))
			r := b.Init("r", []int64{2, 64, 16}, zeros(2*64*16))
			return b.NodeN("LSTM", []string{x, w, r}, 3, build.Int("hidden_size", 16),
				build.String("direction", "bidirectional"))[0]
		}, want: "float[12,2,d1,16]"},
		{name: "gru layout 1 state", opset: 14, build: func(b *build.Builder) string {
			x := b.Input("x", f32, -1, 12, 8)
			w := b.Init("w", []int64{1, 48, 8}, zeros(48*8))
			r := b.Init("r", []int64{1, 48, 16}, zeros(48*16))
			return b.NodeN("GRU", []string{x, w, r}, 2, build.Int("layout", 1))[1]
		}, want: "float[d0,1,16]"},
		{name: "lstm bad weight", build: func(b *build.Builder) string {
			x := b.Input("x", f32, 12, 1, 8)
			w := b.Init("w", []int64{1, 60, 8}, zeros(60*8))
			return b.NodeN("LSTM", []string{x, w, b.Init("r", []int64{1, 64, 16}, zeros(64*16))}, 1,
				build.Int("hidden_size", 16))[0]
		}, wantErr: true},
	})
}
