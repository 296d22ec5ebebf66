package importance_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// gemms: x[·,2] → Gemm W1 = [[1,0],[0,1],[1,1]] (transB) → h[·,3] → Gemm
// W2 = [[1,1,1],[2,0,1]] (transB) → y. Calibration rows x = (1,0), (0,2)
// give ‖X‖ = (1, 2) for W1 and h = (1,0,1), (0,2,2): ‖H‖ = (1, 2, √5).
func gemms(t *testing.T) (*prune.Analysis, *prune.Group, importance.Data) {
	t.Helper()
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, -1, 2)
	h := b.Node("Gemm", []string{x, b.Init("w1", []int64{3, 2}, []float32{1, 0, 0, 1, 1, 1})}, build.Int("transB", 1))
	y := b.Node("Gemm", []string{h, b.Init("w2", []int64{2, 3}, []float32{1, 1, 1, 2, 0, 1})}, build.Int("transB", 1))
	b.Output(y, onnx.TensorProto_FLOAT, -1, 2)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := tensor.New([]int64{2, 2}, []float32{1, 0, 0, 2})
	p := filepath.Join(t.TempDir(), "x.npy")
	if err := tensor.WriteNpyFile(p, d); err != nil {
		t.Fatal(err)
	}
	src, err := calib.Open(p, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return a, a.Prunable()[0], importance.Data{Src: src}
}

// Producer rows of W1, mean of |w|·‖X‖ over 2 columns: 0.5, 1, 1.5 (mean
// 1). Consumer columns of W2, mean over 2 rows: (1+2)·1/2 = 1.5,
// (1+0)·2/2 = 1, (1+1)·√5/2 = √5 (mean (2.5+√5)/3). The group score is
// the mean of the two member-normalised scores.
func TestWandaStructuredByHand(t *testing.T) {
	a, g, d := gemms(t)
	w, err := importance.NewWanda(context.Background(), a.Model, a, d)
	if err != nil {
		t.Fatalf("onnxruntime: %v", err)
	}
	got, err := w.Score(a.Graph(), g)
	if err != nil {
		t.Fatal(err)
	}
	r5 := math.Sqrt(5)
	inMean := (2.5 + r5) / 3
	want := []float64{(0.5 + 1.5/inMean) / 2, (1 + 1/inMean) / 2, (1.5 + r5/inMean) / 2}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6 {
			t.Errorf("channel %d: %v, want %v", i, got[i], want[i])
		}
	}
	// Unstructured: |w|·‖X_j‖ for W2 in its stored layout.
	es, ok := w.ElementScores(g.Members[len(g.Members)-1].Node)
	if !ok {
		t.Fatal("no element scores for the consumer")
	}
	wantEl := []float64{1, 2, r5, 2, 0, r5}
	for i := range wantEl {
		if math.Abs(es[i]-wantEl[i]) > 1e-6 {
			t.Errorf("element %d: %v, want %v", i, es[i], wantEl[i])
		}
	}
}

// OBS on the same layer: H = (2/n) Σ h hᵀ over h = (1,0,1), (0,2,2) with
// 1% damping; removing channel i costs ½ Σ_rows w_i² / [H⁻¹]_ii, the same
// as prune.OBSCost on W2's column i.
func TestOBSScoreIsConsumerCost(t *testing.T) {
	a, g, d := gemms(t)
	o, err := importance.NewOBS(context.Background(), a.Model, a, d, 0.01)
	if err != nil {
		t.Fatalf("onnxruntime: %v", err)
	}
	got, err := o.Score(a.Graph(), g)
	if err != nil {
		t.Fatal(err)
	}
	// H = (2/2)·[[1,0,1],[0,4,4],[1,4,5]], mean diagonal 10/3.
	h := []float64{1, 0, 1, 0, 4, 4, 1, 4, 5}
	hinv, err := calib.DampedInverseRows(h, 3, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	w2 := []float64{1, 1, 1, 2, 0, 1}
	for i := range 3 {
		want := 0.5 * (w2[i]*w2[i] + w2[3+i]*w2[3+i]) / hinv[i*3+i]
		if math.Abs(got[i]-want) > 1e-9*max(1, want) {
			t.Errorf("channel %d: cost %v, want %v", i, got[i], want)
		}
	}
}
