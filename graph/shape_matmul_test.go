package graph_test

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// binary builds op(x, y) over two declared inputs.
func binary(op string, xDims, yDims []int64, attrs ...*onnx.AttributeProto) func(b *build.Builder) string {
	return func(b *build.Builder) string {
		return b.Node(op, []string{b.Input("x", f32, xDims...), b.Input("y", f32, yDims...)}, attrs...)
	}
}

func TestInferShapesMatMul(t *testing.T) {
	d := func(v ...int64) []int64 { return v }
	runShapeCases(t, []shapeCase{
		{name: "gemm", build: binary("Gemm", d(-1, 64), d(64, 10)), want: "float[d0,10]"},
		{name: "gemm transB", build: binary("Gemm", d(-1, 64), d(10, 64), build.Int("transB", 1)), want: "float[d0,10]"},
		{name: "gemm transA", build: binary("Gemm", d(64, 5), d(64, 10), build.Int("transA", 1)), want: "float[5,10]"},
		{name: "gemm mismatch", build: binary("Gemm", d(2, 64), d(63, 10)), wantErr: true},
		{name: "matmul 2d", build: binary("MatMul", d(3, 4), d(4, 5)), want: "float[3,5]"},
		{name: "matmul batch broadcast", build: binary("MatMul", d(-1, 1, 32, 16), d(4, 16, 8)), want: "float[d0,4,32,8]"},
		{name: "attention scores", build: binary("MatMul", d(-1, 4, 32, 16), d(-1, 4, 16, 32)), want: "float[d0,4,32,32]"},
		{name: "matmul 1d left", build: binary("MatMul", d(4), d(2, 4, 5)), want: "float[2,5]"},
		{name: "matmul 1d right", build: binary("MatMul", d(2, 3, 4), d(4)), want: "float[2,3]"},
		{name: "matmul 1d both", build: binary("MatMul", d(4), d(4)), want: "float[]"},
		{name: "matmul mismatch", build: binary("MatMul", d(3, 4), d(5, 6)), wantErr: true},
		{name: "matmul batch mismatch", build: binary("MatMul", d(2, 3, 4), d(3, 4, 6)), wantErr: true},
		{name: "matmul integer", build: func(b *build.Builder) string {
			x := b.Input("x", onnx.TensorProto_UINT8, -1, 8)
			w := b.InitTensor(newTensor("w", onnx.TensorProto_INT8, []int64{8, 3}))
			return b.Node("MatMulInteger", []string{x, w})
		}, want: "int32[d0,3]"},
		{name: "matmul nbits", build: func(b *build.Builder) string {
			b.Import("com.microsoft", 1)
			x := b.Input("x", f32, -1, 7, 64)
			w := b.InitTensor(newTensor("w", onnx.TensorProto_UINT8, []int64{10, 2, 16}))
			s := b.Init("s", []int64{20}, zeros(20))
			out := b.Node("MatMulNBits", []string{x, w, s}, build.Int("K", 64), build.Int("N", 10),
				build.Int("bits", 4), build.Int("block_size", 32))
			b.Last().Domain = strp("com.microsoft")
			return out
		}, want: "float[d0,7,10]"},
		{name: "einsum explicit", build: binary("Einsum", d(-1, 4, 32, 16), d(-1, 4, 8, 16),
			build.String("equation", "bhqd,bhkd->bhqk")), want: "float[d0,4,32,8]"},
		{name: "einsum implicit", build: binary("Einsum", d(3, 4), d(4, 5), build.String("equation", "ij,jk")),
			want: "float[3,5]"},
		{name: "einsum ellipsis", build: binary("Einsum", d(2, 3, 4), d(4, 6), build.String("equation", "...k,kn->...n")),
			want: "float[2,3,6]"},
		{name: "einsum mismatch", build: binary("Einsum", d(3, 4), d(5, 6), build.String("equation", "ij,jk->ik")),
			wantErr: true},
	})
}
