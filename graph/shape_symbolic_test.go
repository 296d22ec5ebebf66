package graph_test

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
)

// Sizes computed at run time keep their symbols: a Range to the sequence
// length, a position buffer sliced to it, one more position concatenated
// and sliced back, a named size broadcast against an unknown one, and
// GatherND's rows.
func TestInferShapesSymbolic(t *testing.T) {
	i64 := func(b *build.Builder, name string, v ...int64) string {
		return b.InitInts(name, []int64{int64(len(v))}, v)
	}
	seqOf := func(b *build.Builder) string { // Shape(x)[1:2] of x[d0, d1]
		s := b.Node("Shape", []string{b.Input("x", f32, -1, -1)})
		return b.Node("Slice", []string{s, i64(b, "s0", 1), i64(b, "s1", 2)})
	}
	runShapeCases(t, []shapeCase{
		{name: "range to a size", build: func(b *build.Builder) string {
			n := b.Node("Squeeze", []string{seqOf(b)})
			return b.Node("Range", []string{b.InitTensor(int64Scalar(0)), n, b.InitTensor(int64Scalar(1))})
		}, want: "int64[d1]"},
		{name: "buffer sliced to a size", build: func(b *build.Builder) string {
			buf := b.Init("buf", []int64{1, 512}, make([]float32, 512))
			return b.Node("Slice", []string{buf, i64(b, "z", 0), seqOf(b), i64(b, "ax", 1)})
		}, want: "float[1,d1]"},
		{name: "one more position and back", build: func(b *build.Builder) string {
			x := b.Input("y", f32, 1, -1)
			first := b.Node("Slice", []string{x, i64(b, "a0", 0), i64(b, "a1", 1), i64(b, "a2", 1)})
			cat := b.Node("Concat", []string{first, x}, build.Int("axis", -1)) // [1, d0+1]
			return b.Node("Slice", []string{cat, i64(b, "b0", 1), i64(b, "b1", 1<<62), i64(b, "b2", -1)})
		}, want: "float[1,d1]"},
		{name: "affine dim printed", build: func(b *build.Builder) string {
			x := b.Input("y", f32, 1, -1)
			return b.Node("Concat", []string{x, x, x, b.Init("one", []int64{1, 1}, []float32{0})}, build.Int("axis", 1))
		}, want: "float[1,3*d1+1]"},
		{name: "symbol against unknown", build: func(b *build.Builder) string {
			x := b.Input("y", f32, -1, 4)
			u := b.Node("NonZero", []string{b.Input("z", f32, 3)}) // int64[1, ?]
			cu := b.Node("Cast", []string{u}, build.Int("to", 1))
			return b.Node("Add", []string{x, b.Node("Transpose", []string{cu})})
		}, want: "float[d0,4]"},
		{name: "gathernd", build: func(b *build.Builder) string {
			data := b.Input("data", f32, 2, 3, 5)
			idx := b.InitInts("idx", []int64{4, 2}, make([]int64, 8))
			return b.Node("GatherND", []string{data, idx})
		}, want: "float[4,5]"},
	})
}
