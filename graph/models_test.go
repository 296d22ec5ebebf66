package graph_test

// Models and measures shared by the reliability, fuzz and invariant
// tests; reliability_test.go itself runs on Linux only.

import (
	"runtime"
	"strings"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// baseProto returns a small valid model: out = Relu(x·w + bias), with a
// 4×3 float weight (48 bytes) and a 3-element bias.
func baseProto() *onnx.ModelProto {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, 1, 4)
	w := b.Init("w", []int64{4, 3}, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	bias := b.Init("bias", []int64{3}, []float32{1, 2, 3})
	y := b.Node("MatMul", []string{x, w})
	z := b.Node("Add", []string{y, bias})
	r := b.Node("Relu", []string{z})
	b.Output(r, onnx.TensorProto_FLOAT, 1, 3)
	return b.Model
}

// externalProto returns the base model with w stored externally with the
// given external_data entries (key, value, key, value...).
func externalProto(kv ...string) *onnx.ModelProto {
	mp := baseProto()
	w := mp.Graph.Initializer[0]
	w.RawData = nil
	w.DataLocation = onnx.TensorProto_EXTERNAL.Enum()
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		w.ExternalData = append(w.ExternalData, &onnx.StringStringEntryProto{Key: &k, Value: &v})
	}
	return mp
}

// allocatedBy returns the bytes allocated while f runs.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// nestedIf returns a graph whose output y<depth> comes from depth nested
// If nodes, all reading the outer condition "cond".
func nestedIf(depth int) *onnx.GraphProto {
	str := func(s string) *string { return &s }
	out := "y" + strings.Repeat("i", depth)
	if depth == 0 {
		return &onnx.GraphProto{
			Name:   str("leaf"),
			Node:   []*onnx.NodeProto{{OpType: str("Identity"), Input: []string{"x"}, Output: []string{out}}},
			Output: []*onnx.ValueInfoProto{build.ValueInfo(out, onnx.TensorProto_FLOAT, 1)},
		}
	}
	leaf := nestedIf(0)
	leaf.Node[0].Output[0] = out + "_else"
	leaf.Output[0].Name = str(out + "_else")
	return &onnx.GraphProto{
		Name: str("level"),
		Node: []*onnx.NodeProto{{OpType: str("If"), Input: []string{"cond"}, Output: []string{out},
			Attribute: []*onnx.AttributeProto{
				{Name: str("then_branch"), Type: onnx.AttributeProto_GRAPH.Enum(), G: nestedIf(depth - 1)},
				{Name: str("else_branch"), Type: onnx.AttributeProto_GRAPH.Enum(), G: leaf},
			}}},
		Output: []*onnx.ValueInfoProto{build.ValueInfo(out, onnx.TensorProto_FLOAT, 1)},
	}
}

func nestedIfModel(depth int) *onnx.ModelProto {
	b := build.New(13)
	g := nestedIf(depth)
	g.Input = []*onnx.ValueInfoProto{
		build.ValueInfo("cond", onnx.TensorProto_BOOL),
		build.ValueInfo("x", onnx.TensorProto_FLOAT, 1),
	}
	b.Model.Graph = g
	return b.Model
}
