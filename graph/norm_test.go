package graph_test

import (
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
)

// TestNormMatchers finds the written-out LayerNorms of an opset-13 GPT
// export whole and by their two reductions, an RMSNorm by its mean of
// squares, and nothing in a plain reduction.
func TestNormMatchers(t *testing.T) {
	count := func(path string) (layer, rms, whole int) {
		m, err := graph.Load(filepath.Join("..", "fixtures", "models", path))
		if err != nil {
			t.Fatal(err)
		}
		g := m.Graph
		for _, n := range g.Nodes {
			switch graph.NormReduce(g, n) {
			case graph.LayerNormKind:
				layer++
			case graph.RMSNormKind:
				rms++
			}
			if ln, ok := graph.MatchLayerNorm(g, n, func(c string) bool { _, ok := g.Constant(c); return ok }); ok {
				whole++
				if graph.NormReduce(g, ln.Mean) != graph.LayerNormKind || graph.NormReduce(g, ln.Variance) != graph.LayerNormKind {
					t.Errorf("%s: matched LayerNorm at %s whose reductions are not seen as one", path, n)
				}
				if ln.Gamma == "" || ln.Beta == "" || ln.Eps <= 0 || ln.Y != ln.Nodes[len(ln.Nodes)-1].Output(0) {
					t.Errorf("%s: LayerNorm at %s: %+v", path, n, ln)
				}
			}
		}
		return
	}
	layer, rms, whole := count("gpt_nano_op13.onnx")
	if whole == 0 || layer != 2*whole || rms != 0 {
		t.Errorf("gpt_nano_op13: %d LayerNorm reductions, %d RMSNorm, %d whole LayerNorms", layer, rms, whole)
	}
	// RMSNorm in real decoder exports: x·(1/√(mean(x²)+ε)) written
	// Div(1, Sqrt(…)) by torch's exporter (Llama, Qwen2, Phi-3 modelling
	// code) and Reciprocal(Sqrt(…)) by the Hugging Face export; every
	// ReduceMean of these models is an RMSNorm's (one per norm).
	for _, path := range []string{"llama_nano_op14.onnx", "llama_nano_op17.onnx", "llama_char_op17.onnx",
		"qwen2_nano_op17.onnx", "phi3_nano_op17.onnx", "hf_llama_tiny.onnx"} {
		layer, rms, whole := count(path)
		means := 0
		m, err := graph.Load(filepath.Join("..", "fixtures", "models", path))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range m.Graph.Nodes {
			if n.Op() == "ReduceMean" {
				means++
			}
		}
		if means == 0 || rms != means || layer != 0 || whole != 0 {
			t.Errorf("%s: %d ReduceMeans: %d RMSNorm, %d LayerNorm reductions, %d whole LayerNorms", path, means, rms, layer, whole)
		}
	}
	// RMSNorm as Llama's modelling code writes it, and a plain mean.
	b := build.New(13)
	x := b.Input("x", f32, 2, 8)
	ms := b.Node("ReduceMean", []string{b.Node("Pow", []string{x, b.Init("two", nil, []float32{2})})}, build.Ints("axes", -1))
	r := b.Node("Reciprocal", []string{b.Node("Sqrt", []string{b.Node("Add", []string{ms, b.Init("eps", nil, []float32{1e-6})})})})
	y := b.Node("Mul", []string{x, r})
	plain := b.Node("ReduceMean", []string{y}, build.Ints("axes", -1))
	b.Output(b.Node("Add", []string{y, plain}), f32, 2, 8)
	mod, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]graph.NormKind{}
	for _, n := range mod.Graph.Nodes {
		kinds[n.Output(0)] = graph.NormReduce(mod.Graph, n)
	}
	if kinds[ms] != graph.RMSNormKind || kinds[plain] != graph.NotNorm {
		t.Errorf("mean of squares seen as %d, plain mean as %d", kinds[ms], kinds[plain])
	}
}
