package graph_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

func summaryModel(t *testing.T) *graph.Model {
	t.Helper()
	b := build.New(17)
	x := b.Input("x", f32, -1, 16)
	w := b.Init("w", []int64{16, 512}, zeros(16*512))
	q := b.InitTensor(newTensor("q", onnx.TensorProto_INT4, []int64{512, 3}))
	dq := b.Node("DequantizeLinear", []string{q, b.Init("s", nil, []float32{1})})
	y := b.Node("Relu", []string{b.Node("MatMul", []string{x, w})})
	y = b.Node("Relu", []string{y})
	out := b.Node("MatMul", []string{y, dq})
	b.Output(out, f32, -1, 3)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSummarize(t *testing.T) {
	s, err := graph.Summarize(summaryModel(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.IRVersion != 8 || len(s.Opsets) != 1 || s.Opsets[0] != (graph.OpsetSummary{Domain: "", Version: 17}) {
		t.Errorf("header: ir %d, opsets %v", s.IRVersion, s.Opsets)
	}
	in := s.Inputs[0]
	if in.ElemType != "float" || len(in.Shape) != 2 || in.Shape[0] != "d0" || in.Shape[1] != int64(16) {
		t.Errorf("input %+v", in)
	}
	if s.Outputs[0].Display != "float[d0,3]" {
		t.Errorf("output %+v", s.Outputs[0])
	}
	wantOps := []graph.OpCount{{Op: "MatMul", Count: 2}, {Op: "Relu", Count: 2}, {Op: "DequantizeLinear", Count: 1}}
	if len(s.Ops) != len(wantOps) {
		t.Fatalf("ops %v", s.Ops)
	}
	for i, o := range wantOps {
		if s.Ops[i] != o {
			t.Errorf("ops[%d] = %v, want %v", i, s.Ops[i], o)
		}
	}
	// w and q are parameters; the scale s is not.
	if s.Params != 16*512+512*3 || s.ParamTensors != 2 {
		t.Errorf("params %d in %d tensors", s.Params, s.ParamTensors)
	}
	if s.MACs != 16*512+512*3 || s.MACsSymbolValue != 1 || len(s.MACsUncounted) != 0 {
		t.Errorf("MACs %d (symbols as %d), uncounted %v", s.MACs, s.MACsSymbolValue, s.MACsUncounted)
	}
	// float32 w, packed int4 q, float32 scalar s.
	if want := int64(4*16*512 + 512*3/2 + 4); s.InitializerBytes != want || s.Initializers != 3 {
		t.Errorf("initializers %d, %d bytes; want 3, %d", s.Initializers, s.InitializerBytes, want)
	}
	if len(s.Nodes) != s.NodeCount || s.Nodes[1].Params != 16*512 || s.Nodes[1].Outputs[0].Display != "float[d0,512]" {
		t.Errorf("nodes %+v", s.Nodes)
	}
}

func TestDiskUsageWithExternalData(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := summaryModel(t).Save(path, graph.SaveOptions{ExternalData: true}); err != nil {
		t.Fatal(err)
	}
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := graph.DiskUsageOf(m, path)
	if err != nil {
		t.Fatal(err)
	}
	model, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.ExternalFiles) != 1 {
		t.Fatalf("external files %v", d.ExternalFiles)
	}
	data, err := os.Stat(filepath.Join(dir, d.ExternalFiles[0]))
	if err != nil {
		t.Fatal(err)
	}
	if d.ModelBytes != model.Size() || d.ExternalBytes != data.Size() || d.Total() != model.Size()+data.Size() {
		t.Errorf("usage %+v, files %d + %d", d, model.Size(), data.Size())
	}
	if d.ExternalBytes < 4*16*512 {
		t.Errorf("external data %d bytes cannot hold w", d.ExternalBytes)
	}
}
