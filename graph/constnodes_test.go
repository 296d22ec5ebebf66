package graph_test

import (
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// Constant-node weights become initializers and back, Identity(constant)
// readers read the constant, and the values survive.
func TestConstantNodesAndInitializers(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, 1, 4)
	w := b.Node("Constant", nil, build.Tensor("value", graph.FloatTensor("", []int64{4, 2}, []float32{1, 2, 3, 4, 5, 6, 7, 8})))
	wi := b.Node("Identity", []string{w})
	y := b.Node("MatMul", []string{x, wi})
	b.Output(y, onnx.TensorProto_FLOAT)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m.BypassConstantIdentities(); err != nil || n != 1 {
		t.Fatalf("bypassed %d, %v", n, err)
	}
	if got := m.Graph.Nodes[len(m.Graph.Nodes)-1].Input(1); got != w {
		t.Fatalf("MatMul reads %q, want %q", got, w)
	}
	n, err := m.ConstantsToInitializers(func(v *graph.Value) bool { return len(v.Consumers) > 0 })
	if err != nil || n != 1 || m.Graph.Initializer(w) == nil || len(m.Graph.Nodes) != 1 {
		t.Fatalf("lifted %d (%v): %d nodes, initializer %v", n, err, len(m.Graph.Nodes), m.Graph.Initializer(w) != nil)
	}
	if err := m.InitializersToConstants(); err != nil {
		t.Fatal(err)
	}
	if len(m.Graph.Proto.Initializer) != 0 || m.Graph.Nodes[0].Op() != "Constant" {
		t.Fatalf("%d initializers left, first node %s", len(m.Graph.Proto.Initializer), m.Graph.Nodes[0])
	}
	ct, ok := m.Graph.Constant(w)
	if !ok {
		t.Fatal("weight is no longer a constant")
	}
	v, err := graph.Float32s(ct)
	if err != nil || len(v) != 8 || v[7] != 8 {
		t.Fatalf("weight values %v, %v", v, err)
	}
	if err := graph.CheckInvariants(m); err != nil {
		t.Fatal(err)
	}
}
