package graph_test

import (
	"testing"

	"github.com/pare-dev/pare/internal/sweeptest"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/onnx"
)

// quantizeConvWeights replaces every Conv weight initializer with an
// int8 tensor behind a per-channel DequantizeLinear, as a QDQ export
// does.
func quantizeConvWeights(t *testing.T, m *graph.Model) int {
	t.Helper()
	gp := m.Proto.Graph
	inits := map[string]*onnx.TensorProto{}
	for _, init := range gp.Initializer {
		inits[init.GetName()] = init
	}
	var nodes []*onnx.NodeProto
	done := map[string]bool{}
	for _, n := range gp.Node {
		if n.GetOpType() == "Conv" && inits[n.Input[1]] != nil {
			w := inits[n.Input[1]]
			name := w.GetName()
			if !done[name] {
				done[name] = true
				ch := w.Dims[0]
				q := newTensor(name+"_q", onnx.TensorProto_INT8, w.Dims)
				gp.Initializer = append(gp.Initializer, q,
					graph.FloatTensor(name+"_scale", []int64{ch}, zeros(int(ch))),
					newTensor(name+"_zp", onnx.TensorProto_INT8, []int64{ch}))
				axis := "axis"
				zero := int64(0)
				op := "DequantizeLinear"
				nodes = append(nodes, &onnx.NodeProto{OpType: &op,
					Input: []string{name + "_q", name + "_scale", name + "_zp"}, Output: []string{name + "_dq"},
					Attribute: []*onnx.AttributeProto{{Name: &axis, Type: onnx.AttributeProto_INT.Enum(), I: &zero}}})
			}
			n.Input[1] = name + "_dq"
		}
		nodes = append(nodes, n)
	}
	gp.Node = nodes
	var kept []*onnx.TensorProto
	for _, init := range gp.Initializer {
		if !done[init.GetName()] {
			kept = append(kept, init)
		}
	}
	gp.Initializer = kept
	if err := m.Graph.Reindex(); err != nil {
		t.Fatal(err)
	}
	return len(done)
}

// Quantizing weights to int8 with float scales keeps the parameter count
// and the MACs of every CNN fixture.
func TestCountQuantizedFixtures(t *testing.T) {
	quantized := 0
	for _, f := range sweeptest.Pick(loadManifest(t)) {
		m := loadFixture(t, f)
		before, err := graph.Count(m)
		if err != nil {
			t.Fatal(err)
		}
		if quantizeConvWeights(t, m) == 0 {
			continue
		}
		quantized++
		after, err := graph.Count(m)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if after.Params != before.Params || after.MACs != before.MACs {
			t.Errorf("%s: params %d -> %d, MACs %d -> %d", f.Name, before.Params, after.Params, before.MACs, after.MACs)
		}
	}
	if quantized == 0 {
		t.Fatal("no fixture has Conv weights to quantize")
	}
}
