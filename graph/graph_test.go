package graph_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

func smallModel(t *testing.T) *graph.Model {
	t.Helper()
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, -1, 4)
	w := b.Init("w", []int64{4, 3}, make([]float32, 12))
	bias := b.Init("bias", []int64{3}, []float32{1, 2, 3})
	y := b.Node("MatMul", []string{x, w})
	z := b.Node("Add", []string{y, bias})
	r := b.Node("Relu", []string{z})
	b.Output(r, onnx.TensorProto_FLOAT, -1, 3)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestIndexes(t *testing.T) {
	m := smallModel(t)
	g := m.Graph
	if len(g.Inputs) != 1 || g.Inputs[0].Name != "x" {
		t.Fatalf("inputs = %v", g.Inputs)
	}
	w := g.Value("w")
	if w.Initializer == nil || len(w.Consumers) != 1 || w.Consumers[0].Op() != "MatMul" {
		t.Fatalf("w: %+v", w)
	}
	add := g.Consumers(g.Nodes[0].Output(0))
	if len(add) != 1 || add[0].Op() != "Add" {
		t.Fatalf("consumers of matmul: %v", add)
	}
	if p := g.Producer(g.Outputs[0].Name); p == nil || p.Op() != "Relu" {
		t.Fatalf("producer of output: %v", p)
	}
}

func TestSortsUnsortedNodes(t *testing.T) {
	m := smallModel(t)
	nodes := m.Proto.Graph.Node
	nodes[0], nodes[2] = nodes[2], nodes[0]
	m2, err := graph.FromProto(m.Proto)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, n := range m2.Graph.Nodes {
		ops = append(ops, n.Op())
	}
	if ops[0] != "MatMul" || ops[2] != "Relu" {
		t.Fatalf("order %v", ops)
	}
}

func TestCycleIsAnError(t *testing.T) {
	b := build.New(13)
	b.Input("x", onnx.TensorProto_FLOAT, 1)
	b.Node("Add", []string{"x", "Relu_2_out0"})
	b.Node("Relu", []string{"Add_1_out0"})
	b.Output("Relu_2_out0", onnx.TensorProto_FLOAT, 1)
	if _, err := b.Build(); err == nil {
		t.Fatal("cycle accepted")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, external := range []bool{false, true} {
		m := smallModel(t)
		dir := t.TempDir()
		p := filepath.Join(dir, "m.onnx")
		if err := m.Save(p, graph.SaveOptions{ExternalData: external, Threshold: 8}); err != nil {
			t.Fatal(err)
		}
		m2, err := graph.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(m.Proto, m2.Proto) {
			t.Fatalf("external=%v: model changed by save/load", external)
		}
		p2 := filepath.Join(dir, "m2.onnx")
		if err := m2.Save(p2, graph.SaveOptions{ExternalData: external, Threshold: 8}); err != nil {
			t.Fatal(err)
		}
		a, _ := os.ReadFile(p)
		b, _ := os.ReadFile(p2)
		if external {
			// The data file name differs, so compare the data files.
			a, _ = os.ReadFile(p + ".data")
			b, _ = os.ReadFile(p2 + ".data")
			if len(m2.External) == 0 {
				t.Fatal("external tensors not recorded")
			}
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("external=%v: saving twice gave different bytes", external)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if filepath.Ext(e.Name()) != ".onnx" && filepath.Ext(e.Name()) != ".data" {
				t.Errorf("stray file %s", e.Name())
			}
		}
	}
}

func TestUnknownFieldsSurvive(t *testing.T) {
	m := smallModel(t)
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Field 99, wire type 0 (varint), value 42: a field from a future IR.
	future := append(append([]byte{}, data...), 0x98, 0x06, 42)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.onnx")
	if err := os.WriteFile(in, future, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := graph.Load(in)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.onnx")
	if err := loaded.Save(out, graph.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(out)
	if !bytes.Contains(saved, []byte{0x98, 0x06, 42}) {
		t.Fatal("unknown field 99 lost on round trip")
	}
}
