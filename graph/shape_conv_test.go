package graph_test

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
)

func TestInferShapesConvAndPool(t *testing.T) {
	conv := func(xDims []int64, wDims []int64, attrs ...any) func(b *build.Builder) string {
		return func(b *build.Builder) string {
			x := b.Input("x", f32, xDims...)
			n := int64(1)
			for _, d := range wDims {
				n *= d
			}
			w := b.Init("w", wDims, zeros(int(n)))
			op := "Conv"
			var as = attrList(attrs)
			if len(attrs) > 0 {
				if s, ok := attrs[0].(string); ok {
					op = s
				}
			}
			return b.Node(op, []string{x, w}, as...)
		}
	}
	pool := func(op string, xDims []int64, attrs ...any) func(b *build.Builder) string {
		return func(b *build.Builder) string {
			return b.Node(op, []string{b.Input("x", f32, xDims...)}, attrList(attrs)...)
		}
	}
	runShapeCases(t, []shapeCase{
		{name: "conv pads strides", build: conv([]int64{-1, 3, 32, 32}, []int64{16, 3, 3, 3},
			build.Ints("pads", 1, 1, 1, 1), build.Ints("strides", 2, 2)), want: "float[d0,16,16,16]"},
		{name: "conv no pads", build: conv([]int64{1, 3, 32, 30}, []int64{8, 3, 5, 3}), want: "float[1,8,28,28]"},
		{name: "conv dilations", build: conv([]int64{1, 3, 32, 32}, []int64{8, 3, 3, 3},
			build.Ints("dilations", 2, 2)), want: "float[1,8,28,28]"},
		{name: "grouped conv", build: conv([]int64{2, 8, 10, 10}, []int64{16, 2, 1, 1},
			build.Int("group", 4)), want: "float[2,16,10,10]"},
		{name: "same upper", build: conv([]int64{1, 3, 15, 15}, []int64{4, 3, 3, 3},
			build.String("auto_pad", "SAME_UPPER"), build.Ints("strides", 2, 2)), want: "float[1,4,8,8]"},
		{name: "valid", build: conv([]int64{1, 3, 15, 15}, []int64{4, 3, 3, 3},
			build.String("auto_pad", "VALID"), build.Ints("strides", 2, 2)), want: "float[1,4,7,7]"},
		{name: "symbolic spatial 1x1", build: conv([]int64{1, 3, -1, -1}, []int64{4, 3, 1, 1}), want: "float[1,4,d2,d3]"},
		{name: "symbolic spatial 3x3 padded", build: conv([]int64{1, 3, -1, 8}, []int64{4, 3, 3, 3},
			build.Ints("pads", 1, 1, 1, 1)), want: "float[1,4,d2,8]"},
		{name: "conv1d", build: conv([]int64{1, 4, 100}, []int64{6, 4, 5}, build.Ints("strides", 5)), want: "float[1,6,20]"},
		{name: "channels mismatch", build: conv([]int64{1, 4, 8, 8}, []int64{6, 3, 3, 3}), wantErr: true},
		{name: "kernel too large", build: conv([]int64{1, 3, 2, 2}, []int64{6, 3, 3, 3}), wantErr: true},
		{name: "conv transpose stride 2", build: conv([]int64{-1, 8, 7, 7}, []int64{8, 4, 3, 3}, "ConvTranspose",
			build.Ints("strides", 2, 2), build.Ints("pads", 1, 1, 1, 1), build.Ints("output_padding", 1, 1)),
			want: "float[d0,4,14,14]"},
		{name: "conv transpose group", build: conv([]int64{1, 8, 4, 4}, []int64{8, 2, 2, 2}, "ConvTranspose",
			build.Int("group", 2), build.Ints("strides", 2, 2)), want: "float[1,4,8,8]"},
		{name: "conv transpose output_shape", build: conv([]int64{1, 8, 4, 4}, []int64{8, 3, 3, 3}, "ConvTranspose",
			build.Ints("strides", 2, 2), build.Ints("output_shape", 9, 8)), want: "float[1,3,9,8]"},
		{name: "conv transpose same", build: conv([]int64{1, 8, 5, 5}, []int64{8, 3, 3, 3}, "ConvTranspose",
			build.Ints("strides", 2, 2), build.String("auto_pad", "SAME_UPPER")), want: "float[1,3,10,10]"},
		{name: "maxpool", build: pool("MaxPool", []int64{-1, 16, 32, 32}, build.Ints("kernel_shape", 3, 3),
			build.Ints("strides", 2, 2), build.Ints("pads", 1, 1, 1, 1)), want: "float[d0,16,16,16]"},
		{name: "maxpool floor", build: pool("MaxPool", []int64{1, 4, 6, 6}, build.Ints("kernel_shape", 3, 3),
			build.Ints("strides", 2, 2)), want: "float[1,4,2,2]"},
		{name: "maxpool ceil", build: pool("MaxPool", []int64{1, 4, 6, 6}, build.Ints("kernel_shape", 3, 3),
			build.Ints("strides", 2, 2), build.Int("ceil_mode", 1)), want: "float[1,4,3,3]"},
		{name: "ceil window starting in padding is dropped", build: pool("MaxPool", []int64{1, 4, 3, 3},
			build.Ints("kernel_shape", 1, 1), build.Ints("strides", 2, 2), build.Ints("pads", 1, 1, 1, 1),
			build.Int("ceil_mode", 1)), want: "float[1,4,2,2]"},
		{name: "avgpool", build: pool("AveragePool", []int64{1, 4, 7, 7}, build.Ints("kernel_shape", 7, 7)),
			want: "float[1,4,1,1]"},
		{name: "global average pool", build: pool("GlobalAveragePool", []int64{-1, 32, 7, 5}), want: "float[d0,32,1,1]"},
		{name: "global max pool 1d", build: pool("GlobalMaxPool", []int64{2, 32, 9}), want: "float[2,32,1]"},
	})
}
