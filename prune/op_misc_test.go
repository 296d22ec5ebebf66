package prune

import (
	"testing"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

func TestReduceRule(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", f32, -1, 5, 6)
	h := b.Node("MatMul", []string{x, initW(b, "w1", 6, 4)})
	mu := b.Node("ReduceMean", []string{h}, build.Ints("axes", -1))
	d := b.Node("Sub", []string{h, mu})
	p := b.Node("Pow", []string{d, b.Init("two", nil, []float32{2})})
	v := b.Node("ReduceMean", []string{p}, build.Ints("axes", -1))
	sd := b.Node("Sqrt", []string{v})
	n := b.Node("Div", []string{d, sd})
	y := b.Node("MatMul", []string{n, initW(b, "w2", 4, 2)})
	s := b.Node("ReduceSum", []string{y, b.InitInts("axes2", []int64{1}, []int64{-1})})
	b.Output(s, f32, -1, 5, 1)
	_, a := analyzeBuilt(t, b)
	g := groupOfNode(t, a, "MatMul_1")
	wantPrunable(t, g)
	if g.Inexact == "" {
		t.Error("decomposed layer norm not recognised")
	}
	wantFrozen(t, groupOfNode(t, a, "MatMul_8"), "reduction over the channel axis")
}

func TestPassThroughRule(t *testing.T) {
	cases := []struct {
		op     string
		attrs  []*onnx.AttributeProto
		extra  func(b *build.Builder) []string
		frozen string
	}{
		{op: "Relu"},
		{op: "HardSigmoid"},
		{op: "Clip", extra: func(b *build.Builder) []string {
			return []string{b.Init("lo", nil, []float32{0}), b.Init("hi", nil, []float32{6})}
		}},
		{op: "MaxPool", attrs: []*onnx.AttributeProto{build.Ints("kernel_shape", 2, 2), build.Ints("strides", 2, 2)}},
		{op: "Pad", extra: func(b *build.Builder) []string {
			return []string{b.InitInts("pads", []int64{8}, []int64{0, 0, 1, 1, 0, 0, 1, 1})}
		}},
		{op: "Pad", extra: func(b *build.Builder) []string {
			return []string{b.InitInts("pads", []int64{8}, []int64{0, 1, 0, 0, 0, 0, 0, 0})}
		}, frozen: "pads the channel axis"},
		{op: "Softmax", attrs: []*onnx.AttributeProto{build.Int("axis", 1)}, frozen: "normalises over the channel axis"},
		{op: "LRN", attrs: []*onnx.AttributeProto{build.Int("size", 3)}, frozen: "no rule for op LRN"},
	}
	for _, c := range cases {
		t.Run(c.op+c.frozen, func(t *testing.T) {
			b := build.New(13)
			x := b.Input("x", f32, -1, 3, 4, 4)
			c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
			in := []string{c1}
			if c.extra != nil {
				in = append(in, c.extra(b)...)
			}
			p := b.Node(c.op, in, c.attrs...)
			y := b.Node("Conv", []string{p, initW(b, "w2", 2, 4, 1, 1)})
			b.Output(y, f32, -1, 2, -1, -1)
			m, a := analyzeBuilt(t, b)
			g := groupOfNode(t, a, "Conv_1")
			if c.frozen != "" {
				wantFrozen(t, g, c.frozen)
				return
			}
			wantMembers(t, g, "w1:0:weight-out", "w2:1:weight-in")
			pruneIdx(t, a, g, 2)
			wantDims(t, m, "w2", 2, 3, 1, 1)
		})
	}
}

func TestDepthSpaceRule(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", f32, -1, 3, 4, 4)
	c1 := b.Node("Conv", []string{x, initW(b, "w1", 8, 3, 1, 1)})
	d2s := b.Node("DepthToSpace", []string{c1}, build.Int("blocksize", 2))
	y := b.Node("Conv", []string{d2s, initW(b, "w2", 2, 2, 1, 1)})
	b.Output(y, f32, -1, 2, 8, 8)
	m, a := analyzeBuilt(t, b)
	g := groupOfNode(t, a, "Conv_1")
	if g.Size != 2 {
		t.Fatalf("size %d, want 2 (blocks of 4 channels)", g.Size)
	}
	for _, mem := range g.Members {
		if mem.Tensor == "w1" && !mem.Map.Equal(IndexMap{0, 1, 0, 1, 0, 1, 0, 1}) {
			t.Errorf("w1 map %v (DCR)", mem.Map)
		}
	}
	pruneIdx(t, a, g, 0)
	wantDims(t, m, "w1", 4, 3, 1, 1)
	wantDims(t, m, "w2", 2, 1, 1, 1)
}

func TestQDQRule(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", f32, -1, 3, 4, 4)
	c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
	q := b.Node("QuantizeLinear", []string{c1, initW(b, "qs", 4), b.InitTensor(uint8Zero("qz", 4))}, build.Int("axis", 1))
	dq := b.Node("DequantizeLinear", []string{q, "qs", "qz"}, build.Int("axis", 1))
	y := b.Node("Conv", []string{dq, initW(b, "w2", 2, 4, 1, 1)})
	b.Output(y, f32, -1, 2, 4, 4)
	m, a := analyzeBuilt(t, b)
	g := groupOfNode(t, a, "Conv_1")
	wantMembers(t, g, "w1:0:weight-out", "qs:0:qparam", "qz:0:qparam", "w2:1:weight-in")
	pruneIdx(t, a, g, 0)
	wantDims(t, m, "qz", 3)
}

func uint8Zero(name string, n int64) *onnx.TensorProto {
	dt := int32(onnx.TensorProto_UINT8)
	return &onnx.TensorProto{Name: &name, DataType: &dt, Dims: []int64{n}, RawData: make([]byte, n)}
}

func TestSubgraphAndCustomDomainFreeze(t *testing.T) {
	b := build.New(13).Import("com.example", 1)
	x := b.Input("x", f32, -1, 3, 4, 4)
	c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
	y := b.Node("Custom", []string{c1})
	b.Last().Domain = ptr("com.example")
	b.Output(y, f32, -1, 4, 4, 4)
	_, a := analyzeBuilt(t, b)
	wantFrozen(t, groupOfNode(t, a, "Conv_1"), "custom-domain")
}

func ptr(s string) *string { return &s }

func TestIgnore(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", f32, -1, 3, 4, 4)
	c1 := b.Node("Conv", []string{x, initW(b, "w1", 4, 3, 1, 1)})
	y := b.Node("Conv", []string{c1, initW(b, "w2", 2, 4, 1, 1)})
	b.Output(y, f32, -1, 2, 4, 4)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a, err := Analyze(m, Options{Ignore: regexpMust("^w1$")})
	if err != nil {
		t.Fatal(err)
	}
	wantFrozen(t, groupOfNode(t, a, "Conv_1"), "ignored")
}
