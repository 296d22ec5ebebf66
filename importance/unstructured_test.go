package importance_test

import (
	"context"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/onnx"
)

// One 32×32 Gemm with weights ±1..1024: going down the magnitudes, the
// cumulative score w² / Σ_{|w_j|≥|w|} w_j² has a falling numerator and a
// growing denominator, so module sparsity 0.25 zeroes exactly the 256
// smallest magnitudes.
func TestModuleUnstructuredSmallestGo(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, -1, 32)
	w := make([]float32, 1024)
	for i := range w {
		w[i] = float32(i + 1)
		if i%3 == 0 {
			w[i] = -w[i]
		}
	}
	y := b.Node("Gemm", []string{x, b.Init("w", []int64{32, 32}, w)}, build.Int("transB", 1))
	b.Output(y, onnx.TensorProto_FLOAT, -1, 32)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := importance.UnstructuredScored(context.Background(), m, "module", 0.25, 0.8, importance.Data{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sparsity != 0.25 {
		t.Errorf("sparsity %v, want 0.25", rep.Sparsity)
	}
	tw, _ := m.Graph.Constant("w")
	got, _ := graph.Float32s(tw)
	for i, v := range got {
		if zero := v == 0; zero != (i < 256) {
			t.Fatalf("weight %d (|w| = %d) zeroed: %v", i, i+1, zero)
		}
	}
}
