package recovery

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// twoGemms: x[·,2] → Gemm W1 (3×2, transB) → h[·,3] → Gemm W2 (2×3,
// transB) + bias → y. Row 2 of W1 is row 0 + row 1, so h₂ = h₀ + h₁.
func twoGemms(t *testing.T) (*graph.Model, *prune.Analysis) {
	t.Helper()
	b := build.New(13)
	x := b.Input("x", f32, -1, 2)
	h := b.Node("Gemm", []string{x, b.Init("w1", []int64{3, 2}, []float32{1, 0, 0, 1, 1, 1})}, build.Int("transB", 1))
	y := b.Node("Gemm", []string{h, b.Init("w2", []int64{2, 3}, []float32{1, 1, 1, 2, 0, 1}), b.Init("b2", []int64{2}, []float32{0.5, -1})},
		build.Int("transB", 1))
	b.Output(y, f32, -1, 2)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m, a
}

const f32 = onnx.TensorProto_FLOAT

// calibFile writes rows as calibration samples of shape dims (default
// [·, 2]) and opens them for m.
func calibFile(t *testing.T, m *graph.Model, rows []float32, dims ...int64) *calib.Source {
	t.Helper()
	if dims == nil {
		dims = []int64{int64(len(rows) / 2), 2}
	}
	d, err := tensor.New(dims, rows)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "x.npy")
	if err := tensor.WriteNpyFile(p, d); err != nil {
		t.Fatal(err)
	}
	src, err := calib.Open(p, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func runModel(t *testing.T, m *graph.Model, x []float32) []float32 {
	t.Helper()
	d, _ := tensor.New([]int64{int64(len(x) / 2), 2}, x)
	return runInputs(t, m, map[string]tensor.Dense{"x": d})
}

// prunedTwoGemms returns twoGemms with h₂ pruned (scores 3, 2, 1, two
// channels kept), the model before pruning, six calibration samples x
// as a source, and the outputs of the model before pruning on them.
func prunedTwoGemms(t *testing.T) (m, dense *graph.Model, plan *prune.Plan, src *calib.Source, x, want []float32) {
	t.Helper()
	m, a := twoGemms(t)
	dense, err := graph.FromProto(cloneProto(m))
	if err != nil {
		t.Fatal(err)
	}
	x = []float32{1, 0, 0, 2, 1, 1, -1, 3, 2, -2, 0.5, 0.25}
	src = calibFile(t, m, x)
	want = runModel(t, dense, x)
	g := a.Prunable()
	if len(g) != 1 || g[0].Size != 3 {
		t.Fatalf("groups %v", g)
	}
	scores := map[int][]float64{g[0].ID: {3, 2, 1}}
	plan, err = a.PlanWithCounts(prune.Settings{Criterion: "test", Ratio: 0.3, MaxLayerRatio: 0.8}, scores, map[int]int{g[0].ID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyPlan(plan); err != nil {
		t.Fatal(err)
	}
	return m, dense, plan, src, x, want
}

// Removing h₂ and re-fitting W2 must fold its column into the others:
// W2' = [[1+1, 1+1], [2+1, 0+1]] and the bias unchanged, so the pruned
// model reproduces the dense outputs. The ridge is made negligible: on six
// samples the default one shifts the solution by a few percent.
func TestReconstructFoldsDependentChannel(t *testing.T) {
	defer func(d float64) { ReconDamping = d }(ReconDamping)
	ReconDamping = 1e-9
	m, dense, plan, src, x, want := prunedTwoGemms(t)
	if _, err := Reconstruct(context.Background(), m, dense, plan, src, 4); err != nil {
		t.Fatal(err)
	}
	w2, _ := m.Graph.Constant("w2")
	got, _ := graph.Float32s(w2)
	for i, v := range []float32{2, 2, 3, 1} {
		if math.Abs(float64(got[i]-v)) > 1e-4 {
			t.Errorf("W2' = %v, want [2 2 3 1]", got)
			break
		}
	}
	b2, _ := m.Graph.Constant("b2")
	gb, _ := graph.Float32s(b2)
	if math.Abs(float64(gb[0]-0.5)) > 1e-4 || math.Abs(float64(gb[1]+1)) > 1e-4 {
		t.Errorf("bias %v, want [0.5 -1]", gb)
	}
	out := runModel(t, m, x)
	for i := range want {
		if math.Abs(float64(out[i]-want[i])) > 1e-4 {
			t.Fatalf("outputs %v, dense %v", out, want)
		}
	}
}

// With batch norms folded, the output channels of the pruned consumer get
// their dense mean and standard deviation back.
func TestRecalibrateFoldedMatchesMoments(t *testing.T) {
	m, dense, plan, src, x, want := prunedTwoGemms(t)
	if _, err := RecalibrateBN(context.Background(), m, dense, plan, src, 4); err != nil {
		t.Fatal(err)
	}
	got := runModel(t, m, x)
	for c := range 2 {
		mw, sw := moments(want, c)
		mg, sg := moments(got, c)
		if math.Abs(mw-mg) > 1e-4 || math.Abs(sw-sg) > 1e-4 {
			t.Errorf("channel %d: mean/std %v/%v, dense %v/%v", c, mg, sg, mw, sw)
		}
	}
}

func moments(v []float32, c int) (float64, float64) {
	n := len(v) / 2
	s, q := 0.0, 0.0
	for i := range n {
		x := float64(v[2*i+c])
		s += x
		q += x * x
	}
	mu := s / float64(n)
	return mu, math.Sqrt(q/float64(n) - mu*mu)
}

func cloneProto(m *graph.Model) *onnx.ModelProto { return proto.Clone(m.Proto).(*onnx.ModelProto) }
