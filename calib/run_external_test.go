package calib

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// A model loaded with external data reaches onnxruntime by reference
// (graph.MarshalMapped): the bytes handed over are a small fraction of
// the weights, and the captured values equal those of the same model
// loaded inline.
func TestRunnerExternalDataByReference(t *testing.T) {
	inline, err := graph.Load("../fixtures/models/fmnist_resnet_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ext.onnx")
	if err := inline.Save(path, graph.SaveOptions{ExternalData: true, Threshold: 256}); err != nil {
		t.Fatal(err)
	}
	ext, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	compareByReference(t, inline, ext)
}

// A large model file is mapped (graph.MapMin, lowered here for a small
// fixture) and reaches onnxruntime by reference into the file itself,
// with the same captured values as the model read into memory.
func TestRunnerMappedModelFileByReference(t *testing.T) {
	const path = "../fixtures/models/fmnist_resnet_op13.onnx"
	inline, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func(old int64) { graph.MapMin = old }(graph.MapMin)
	graph.MapMin = 1
	mapped, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	compareByReference(t, inline, mapped)
}

// compareByReference checks that ext, whose weights are mapped, is
// handed to onnxruntime by reference and captures what inline does.
func compareByReference(t *testing.T, inline, ext *graph.Model) {
	t.Helper()
	whole, _ := ext.Marshal()
	b, dir, err := graph.MarshalMapped(ext.Proto)
	if err != nil {
		t.Fatal(err)
	}
	if dir == "" || len(b) > len(whole)/4 {
		t.Fatalf("MarshalMapped: %d bytes (whole model %d), folder %q: weights were not referenced", len(b), len(whole), dir)
	}
	var names []string
	for _, n := range ext.Graph.Nodes {
		if n.Op() == "Conv" {
			names = append(names, n.Output(0))
		}
	}
	in := map[string]tensor.Dense{}
	x := make([]float32, 2*28*28)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	d, err := tensor.New([]int64{2, 1, 28, 28}, x)
	if err != nil {
		t.Fatal(err)
	}
	in[inline.Graph.Inputs[0].Name] = d
	run := func(m *graph.Model) map[string]tensor.Dense {
		r, err := NewRunner(m, names)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		v, err := r.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	want, got := run(inline), run(ext)
	for _, name := range names {
		a, _ := want[name].Data.([]float32)
		b, _ := got[name].Data.([]float32)
		if len(a) == 0 || len(a) != len(b) {
			t.Fatalf("%s: %d vs %d values", name, len(a), len(b))
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s[%d]: %v inline, %v by reference", name, i, a[i], b[i])
			}
		}
	}
}

// A model whose rewritten weights live on the heap is spilled to a mapped
// file before a session is built from it (SpillAbove, lowered here), and
// then reaches onnxruntime by reference with the same captured values;
// the copy it was cloned from keeps its own bytes.
func TestRunnerSpillsRewrittenWeights(t *testing.T) {
	inline, err := graph.Load("../fixtures/models/fmnist_resnet_op13.onnx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := graph.RemoveSpills(); err != nil {
			t.Error(err)
		}
	})
	rewritten, err := graph.Clone(inline)
	if err != nil {
		t.Fatal(err)
	}
	if _, dir, _ := graph.MarshalMapped(rewritten.Proto); dir != "" {
		t.Fatal("the inline model's clone is already mapped")
	}
	moved, err := graph.SpillHeap(rewritten, 1)
	if err != nil {
		t.Fatal(err)
	}
	if moved == 0 {
		t.Fatal("nothing spilled")
	}
	if again, err := graph.SpillHeap(rewritten, 1); err != nil || again != 0 {
		t.Fatalf("a second spill moved %d bytes (%v)", again, err)
	}
	if _, dir, _ := graph.MarshalMapped(inline.Proto); dir != "" {
		t.Fatal("spilling the clone mapped the original's tensors")
	}
	compareByReference(t, inline, rewritten)
}
