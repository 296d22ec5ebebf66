package graph_test

import (
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

func TestCount(t *testing.T) {
	cases := []struct {
		name      string
		build     func(b *build.Builder) string
		params    int64
		macs      int64
		uncounted int
	}{
		{"conv with bias", func(b *build.Builder) string {
			x := b.Input("x", f32, -1, 3, 8, 8)
			return b.Node("Conv", []string{x, b.Init("w", []int64{4, 3, 3, 3}, zeros(108)), b.Init("b", []int64{4}, zeros(4))},
				build.Ints("pads", 1, 1, 1, 1))
		}, 108 + 4, 4 * 8 * 8 * 3 * 3 * 3, 0},
		{"grouped conv", func(b *build.Builder) string {
			x := b.Input("x", f32, 1, 8, 8, 8)
			return b.Node("Conv", []string{x, b.Init("w", []int64{8, 2, 3, 3}, zeros(144))}, build.Int("group", 4))
		}, 144, 8 * 6 * 6 * 2 * 3 * 3, 0},
		{"conv transpose", func(b *build.Builder) string {
			x := b.Input("x", f32, 1, 4, 5, 5)
			return b.Node("ConvTranspose", []string{x, b.Init("w", []int64{4, 2, 3, 3}, zeros(72))}, build.Ints("strides", 2, 2))
		}, 72, 4 * 5 * 5 * 2 * 3 * 3, 0},
		{"gemm transB batch as one", func(b *build.Builder) string {
			x := b.Input("x", f32, -1, 16)
			return b.Node("Gemm", []string{x, b.Init("w", []int64{10, 16}, zeros(160)), b.Init("c", []int64{10}, zeros(10))},
				build.Int("transB", 1))
		}, 170, 10 * 16, 0},
		{"attention matmul between activations", func(b *build.Builder) string {
			q := b.Input("q", f32, -1, 4, 32, 16)
			k := b.Input("k", f32, -1, 4, 16, 32)
			return b.Node("MatMul", []string{q, k})
		}, 0, 4 * 32 * 32 * 16, 0},
		{"shared weight counted once", func(b *build.Builder) string {
			x := b.Input("x", f32, 2, 8)
			w := b.Init("w", []int64{8, 8}, zeros(64))
			y := b.Node("MatMul", []string{x, w})
			return b.Node("MatMul", []string{y, w})
		}, 64, 2 * (2 * 8 * 8), 0},
		{"constant nodes: weights count, scalars do not", func(b *build.Builder) string {
			x := b.Input("x", f32, 1, 4)
			w := b.Node("Constant", nil, build.Tensor("value", graph.FloatTensor("cw", []int64{4, 2}, zeros(8))))
			y := b.Node("MatMul", []string{x, w})
			two := b.Node("Constant", nil, build.Float("value_float", 2))
			y = b.Node("Div", []string{y, two})
			return b.Node("Mul", []string{y, b.Init("scale", nil, []float32{3})})
		}, 8 + 1, 1 * 2 * 4, 0},
		{"quantized weight: elements count, scales and zero points do not", func(b *build.Builder) string {
			x := b.Input("x", f32, -1, 16)
			w := b.InitTensor(newTensor("w", onnx.TensorProto_INT8, []int64{16, 8}))
			zp := b.InitTensor(newTensor("zp", onnx.TensorProto_INT8, []int64{8}))
			dq := b.Node("DequantizeLinear", []string{w, b.Init("s", []int64{8}, zeros(8)), zp}, build.Int("axis", 1))
			return b.Node("MatMul", []string{x, dq})
		}, 128, 8 * 16, 0},
		{"matmul nbits counts K·N", func(b *build.Builder) string {
			b.Import("com.microsoft", 1)
			x := b.Input("x", f32, -1, 7, 64)
			w := b.InitTensor(newTensor("w", onnx.TensorProto_UINT8, []int64{10, 2, 16}))
			out := b.Node("MatMulNBits", []string{x, w, b.Init("s", []int64{20}, zeros(20))},
				build.Int("K", 64), build.Int("N", 10), build.Int("bits", 4), build.Int("block_size", 32))
			b.Last().Domain = strp("com.microsoft")
			return out
		}, 640, 7 * 10 * 64, 0},
		{"resize scales are not parameters", func(b *build.Builder) string {
			x := b.Input("x", f32, 1, 2, 4, 4)
			return b.Node("Resize", []string{x, "", b.Init("s", []int64{4}, []float32{1, 1, 2, 2})})
		}, 0, 0, 0},
		{"lstm", func(b *build.Builder) string {
			x := b.Input("x", f32, 12, -1, 8)
			w := b.Init("w", []int64{2, 64, 8}, zeros(2*64*8))
			r := b.Init("r", []int64{2, 64, 16}, zeros(2*64*16))
			return b.NodeN("LSTM", []string{x, w, r}, 3, build.Int("hidden_size", 16),
				build.String("direction", "bidirectional"))[0]
		}, 2*64*8 + 2*64*16, 12 * 2 * 64 * (8 + 16), 0},
		{"unknown shape leaves a node uncounted", func(b *build.Builder) string {
			x := b.Input("x", f32, 2, 8)
			y := b.Node("FancyOp", []string{x})
			return b.Node("MatMul", []string{y, b.Init("w", []int64{8, 3}, zeros(24))})
		}, 24, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := build.New(17)
			declareOutput(b, c.build(b))
			m, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			got, err := graph.Count(m)
			if err != nil {
				t.Fatal(err)
			}
			if got.Params != c.params || got.MACs != c.macs || len(got.Uncounted) != c.uncounted {
				t.Errorf("params %d, MACs %d, uncounted %v; want %d, %d, %d",
					got.Params, got.MACs, got.Uncounted, c.params, c.macs, c.uncounted)
			}
			if len(got.Nodes) != len(m.Graph.Nodes) {
				t.Errorf("%d node counts for %d nodes", len(got.Nodes), len(m.Graph.Nodes))
			}
		})
	}
}

func TestCountPerNodeSharedWeight(t *testing.T) {
	b := build.New(17)
	x := b.Input("x", f32, 2, 8)
	w := b.Init("w", []int64{8, 8}, zeros(64))
	y := b.Node("MatMul", []string{x, w})
	declareOutput(b, b.Node("MatMul", []string{y, w}))
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := graph.Count(m)
	if err != nil {
		t.Fatal(err)
	}
	per := []int64{c.Nodes[0].Params, c.Nodes[1].Params}
	if !slices.Equal(per, []int64{64, 64}) || c.ParamTensors != 1 {
		t.Errorf("per-node params %v, tensors %d; want [64 64], 1", per, c.ParamTensors)
	}
}
