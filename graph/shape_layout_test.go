package graph_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// withInts builds op(x, ints) with a constant int64 second input.
func withInts(op string, xDims []int64, vals []int64, attrs ...*onnx.AttributeProto) func(b *build.Builder) string {
	return func(b *build.Builder) string {
		x := b.Input("x", f32, xDims...)
		return b.Node(op, []string{x, b.InitInts("c", []int64{int64(len(vals))}, vals)}, attrs...)
	}
}

// dynamicReshape reshapes x [batch, seq, 64] to [batch, seq, 4, 16] with
// a target computed from Shape, as exporters write it.
func dynamicReshape(b *build.Builder) string {
	x := b.Input("x", f32, -1, -1, 64)
	shape := b.Node("Shape", []string{x})
	var parts []string
	for i := range int64(2) {
		g := b.Node("Gather", []string{shape, b.Node("Constant", nil, build.Tensor("value",
			int64Scalar(i)))}, build.Int("axis", 0))
		parts = append(parts, b.Node("Unsqueeze", []string{g, b.InitInts("ax"+string(rune('0'+i)), []int64{1}, []int64{0})}))
	}
	parts = append(parts, b.InitInts("rest", []int64{2}, []int64{4, -1}))
	target := b.Node("Concat", parts, build.Int("axis", 0))
	return b.Node("Reshape", []string{x, target})
}

func TestInferShapesLayout(t *testing.T) {
	d := func(v ...int64) []int64 { return v }
	runShapeCases(t, []shapeCase{
		{name: "reshape 0 and -1", build: withInts("Reshape", d(-1, 16, 64), d(0, 0, 4, -1)), want: "float[d0,16,4,16]"},
		{name: "reshape symbolic -1", build: withInts("Reshape", d(-1, 16, 64), d(-1, 64)), want: "float[16*d0,64]"},
		{name: "reshape back", build: func(b *build.Builder) string {
			y := withInts("Reshape", d(-1, 16, 64), d(-1, 64))(b)
			return b.Node("Reshape", []string{y, b.InitInts("s2", []int64{3}, []int64{-1, 16, 64})})
		}, want: "float[d0,16,64]"},
		{name: "reshape allowzero", build: withInts("Reshape", d(0, 4), d(0, 8), build.Int("allowzero", 1)), opset: 14,
			want: "float[0,8]"},
		{name: "reshape bad count", build: withInts("Reshape", d(2, 3), d(4, -1)), wantErr: true},
		{name: "reshape from Shape", build: dynamicReshape, want: "float[d0,d1,4,16]"},
		{name: "flatten", build: unary("Flatten", d(-1, 3, 4, 5)), want: "float[d0,60]"},
		{name: "flatten axis 2", build: unary("Flatten", d(-1, 3, 4, 5), build.Int("axis", 2)), want: "float[3*d0,20]"},
		{name: "flatten axis 0", build: unary("Flatten", d(2, 3), build.Int("axis", 0)), want: "float[1,6]"},
		{name: "squeeze attr", opset: 11, build: unary("Squeeze", d(-1, 1, 4, 1), build.Ints("axes", 1, -1)),
			want: "float[d0,4]"},
		{name: "squeeze input", build: withInts("Squeeze", d(-1, 1, 4, 1), d(1)), want: "float[d0,4,1]"},
		{name: "squeeze all ones", build: unary("Squeeze", d(1, 4, 1)), want: "float[4]"},
		{name: "squeeze non-one", build: withInts("Squeeze", d(2, 4), d(0)), wantErr: true},
		{name: "unsqueeze attr", opset: 12, build: unary("Unsqueeze", d(-1, 4), build.Ints("axes", 0, 3)),
			want: "float[1,d0,4,1]"},
		{name: "unsqueeze input", build: withInts("Unsqueeze", d(-1, 4), d(-1)), want: "float[d0,4,1]"},
		{name: "transpose", build: unary("Transpose", d(-1, 16, 4, 8), build.Ints("perm", 0, 2, 1, 3)),
			want: "float[d0,4,16,8]"},
		{name: "transpose default", build: unary("Transpose", d(2, 3, 5)), want: "float[5,3,2]"},
		{name: "expand", build: withInts("Expand", d(3, 1), d(2, 1, 6)), want: "float[2,3,6]"},
		{name: "concat", build: binary("Concat", d(-1, 3, 8), d(-1, 5, 8), build.Int("axis", 1)), want: "float[d0,8,8]"},
		{name: "concat symbolic axis", build: binary("Concat", d(-1, 8), d(-1, 8), build.Int("axis", 0)),
			want: "float[2*d0,8]"},
		{name: "concat mismatch", build: binary("Concat", d(2, 3), d(2, 4), build.Int("axis", 0)), wantErr: true},
		{name: "split attr", opset: 11, build: func(b *build.Builder) string {
			return b.NodeN("Split", []string{b.Input("x", f32, -1, 10)}, 2, build.Int("axis", 1), build.Ints("split", 3, 7))[1]
		}, want: "float[d0,7]"},
		{name: "split input", build: func(b *build.Builder) string {
			x := b.Input("x", f32, 10, -1)
			return b.NodeN("Split", []string{x, b.InitInts("s", []int64{3}, []int64{2, 3, 5})}, 3)[2]
		}, want: "float[5,d1]"},
		{name: "split equal", build: func(b *build.Builder) string {
			return b.NodeN("Split", []string{b.Input("x", f32, 2, 12)}, 3, build.Int("axis", -1))[0]
		}, want: "float[2,4]"},
		{name: "split num_outputs uneven", opset: 18, build: func(b *build.Builder) string {
			return b.NodeN("Split", []string{b.Input("x", f32, 10)}, 3, build.Int("num_outputs", 3))[2]
		}, want: "float[2]"},
		{name: "split bad sum", build: func(b *build.Builder) string {
			x := b.Input("x", f32, 10)
			return b.NodeN("Split", []string{x, b.InitInts("s", []int64{2}, []int64{2, 3})}, 2)[0]
		}, wantErr: true},
		{name: "slice", build: sliceCase(d(-1, 20, 30), d(2, -10), d(10, 1000), d(1, 2), nil), want: "float[d0,8,10]"},
		{name: "slice negative step", build: sliceCase(d(10), d(-1), d(-1000), nil, d(-3)), want: "float[4]"},
		{name: "slice empty", build: sliceCase(d(10), d(8), d(2), nil, nil), want: "float[0]"},
		{name: "slice whole symbolic axis", build: sliceCase(d(-1, 4), d(0), d(9223372036854775807), d(0), nil),
			want: "float[d0,4]"},
		{name: "slice attrs", opset: 9, build: unary("Slice", d(5, 6), build.Ints("starts", 1), build.Ints("ends", -1),
			build.Ints("axes", 1)), want: "float[5,4]"},
		{name: "gather scalar index", build: func(b *build.Builder) string {
			x := b.Input("x", f32, -1, 65, 64)
			return b.Node("Gather", []string{x, b.InitTensor(int64Scalar(0))}, build.Int("axis", 1))
		}, want: "float[d0,64]"},
		{name: "gather embedding", build: func(b *build.Builder) string {
			w := b.Init("w", []int64{100, 8}, zeros(800))
			return b.Node("Gather", []string{w, b.Input("ids", onnx.TensorProto_INT64, -1, 32)})
		}, want: "float[d0,32,8]"},
		{name: "gather out of range", build: withInts("Gather", d(4, 3), d(4)), wantErr: true},
		{name: "tile", build: withInts("Tile", d(-1, 3), d(1, 4)), want: "float[d0,12]"},
		{name: "pad", build: withInts("Pad", d(-1, 3, 8, 8), d(0, 0, 1, 2, 0, 0, 3, 4)), want: "float[d0,3,12,14]"},
		{name: "pad attr", opset: 10, build: unary("Pad", d(2, 3), build.Ints("pads", 1, 0, 1, 0)), want: "float[4,3]"},
		{name: "pad axes", opset: 18, build: func(b *build.Builder) string {
			x := b.Input("x", f32, 1, 3, 8, 8)
			pads := b.InitInts("p", []int64{2}, []int64{1, 1})
			return b.Node("Pad", []string{x, pads, "", b.InitInts("a", []int64{1}, []int64{-1})})
		}, want: "float[1,3,8,10]"},
		{name: "depth to space", build: unary("DepthToSpace", d(-1, 16, 4, 5), build.Int("blocksize", 2)),
			want: "float[d0,4,8,10]"},
		{name: "space to depth", build: unary("SpaceToDepth", d(1, 3, 8, 6), build.Int("blocksize", 2)),
			want: "float[1,12,4,3]"},
		{name: "space to depth indivisible", build: unary("SpaceToDepth", d(1, 3, 7, 6), build.Int("blocksize", 2)),
			wantErr: true},
		{name: "resize scales", build: func(b *build.Builder) string {
			x := b.Input("x", f32, -1, 8, 5, 7)
			return b.Node("Resize", []string{x, "", b.Init("s", []int64{4}, []float32{1, 1, 2, 1.5})})
		}, want: "float[d0,8,10,10]"},
		{name: "resize sizes", build: func(b *build.Builder) string {
			x := b.Input("x", f32, 1, 8, 5, 7)
			return b.Node("Resize", []string{x, "", "", b.InitInts("s", []int64{4}, []int64{1, 8, 20, 21})})
		}, want: "float[1,8,20,21]"},
		{name: "resize opset 10", opset: 10, build: func(b *build.Builder) string {
			x := b.Input("x", f32, 1, 2, 3, 3)
			return b.Node("Resize", []string{x, b.Init("s", []int64{4}, []float32{1, 1, 3, 3})})
		}, want: "float[1,2,9,9]"},
		{name: "upsample attr", opset: 8, build: unary("Upsample", d(1, 2, 3, 3), floatsAttr("scales", 1, 1, 2, 2)),
			want: "float[1,2,6,6]"},
	})
}

func sliceCase(x, starts, ends, axes, steps []int64) func(b *build.Builder) string {
	return func(b *build.Builder) string {
		in := []string{b.Input("x", f32, x...), b.InitInts("st", []int64{int64(len(starts))}, starts),
			b.InitInts("en", []int64{int64(len(ends))}, ends)}
		if axes != nil || steps != nil {
			a := ""
			if axes != nil {
				a = b.InitInts("ax", []int64{int64(len(axes))}, axes)
			}
			in = append(in, a)
		}
		if steps != nil {
			in = append(in, b.InitInts("sp", []int64{int64(len(steps))}, steps))
		}
		return b.Node("Slice", in)
	}
}

var scalarCount atomic.Int64

// int64Scalar returns an INT64 scalar tensor with a unique name.
func int64Scalar(v int64) *onnx.TensorProto {
	t := newTensor(fmt.Sprintf("scalar%d", scalarCount.Add(1)), i64, nil)
	t.RawData = []byte{byte(v), 0, 0, 0, 0, 0, 0, 0}
	return t
}
