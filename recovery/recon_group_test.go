package recovery

import (
	"context"
	"math"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/tensor"
)

// groupedPair: x[·,4,1,1] → 1×1 Conv P to 6 channels, h = (x0, x1,
// x0+x1, x2, x3, x2+x3) → 1×1 Conv G of 2 groups (3 inputs, 2 outputs
// each) with a bias. In both groups offset 2 is the sum of offsets 0
// and 1, so removing it and refitting each group folds its column into
// the other two: every group's W' = [w0+w2, w1+w2], the bias unchanged.
func groupedPair(t *testing.T) (m, dense *graph.Model, plan *prune.Plan, src *calib.Source, x map[string]tensor.Dense) {
	t.Helper()
	b := build.New(13)
	in := b.Input("x", f32, -1, 4, 1, 1)
	p := b.Node("Conv", []string{in, b.Init("wp", []int64{6, 4, 1, 1}, []float32{
		1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0,
		0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1})})
	g := b.Node("Conv", []string{p, b.Init("wg", []int64{4, 3, 1, 1}, []float32{
		1, 2, 3, -1, 0.5, 2,
		0.25, -2, 1, 3, 1, -0.5}), b.Init("bg", []int64{4}, []float32{0.5, -1, 2, 0})}, build.Int("group", 2))
	b.Output(g, f32, -1, 4, 1, 1)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if dense, err = graph.FromProto(cloneProto(m)); err != nil {
		t.Fatal(err)
	}
	rows := []float32{1, 0, 2, -1, 0, 2, 1, 1, 1, 1, -3, 0.5, -1, 3, 0, 2, 2, -2, 1, 1, 0.5, 0.25, -1, 4}
	src = calibFile(t, m, rows, 6, 4, 1, 1)
	d, err := tensor.New([]int64{6, 4, 1, 1}, rows)
	if err != nil {
		t.Fatal(err)
	}
	a, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var grp *prune.Group
	for _, c := range a.Prunable() {
		if c.Size == 3 {
			grp = c
		}
	}
	if grp == nil || grp.Size != 3 {
		t.Fatalf("no group of the 3 offsets of the grouped Conv's inputs in %v", a.Prunable())
	}
	plan, err = a.PlanWithCounts(prune.Settings{Criterion: "test", Ratio: 0.3, MaxLayerRatio: 0.8},
		map[int][]float64{grp.ID: {3, 2, 1}}, map[int]int{grp.ID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyPlan(plan); err != nil {
		t.Fatal(err)
	}
	return m, dense, plan, src, map[string]tensor.Dense{"x": d}
}

func TestReconstructGroupedConvByGroup(t *testing.T) {
	defer func(d float64) { ReconDamping = d }(ReconDamping)
	ReconDamping = 1e-9
	m, dense, plan, src, x := groupedPair(t)
	want := runInputs(t, dense, x)
	if got := runInputs(t, m, x); maxAbsDiff(got, want) < 1e-2 {
		t.Fatalf("pruning alone kept the outputs (%v): the test proves nothing", got)
	}
	if _, err := Reconstruct(context.Background(), m, dense, plan, src, 4); err != nil {
		t.Fatal(err)
	}
	wg, _ := m.Graph.Constant("wg")
	got, _ := graph.Float32s(wg)
	for i, v := range []float32{4, 5, 1, 2.5, 1.25, -1, 2.5, 0.5} {
		if math.Abs(float64(got[i]-v)) > 1e-4 {
			t.Fatalf("W' = %v, want [4 5 1 2.5 1.25 -1 2.5 0.5]", got)
		}
	}
	bg, _ := m.Graph.Constant("bg")
	if b, _ := graph.Float32s(bg); b[0] != 0.5 || b[1] != -1 || b[2] != 2 || b[3] != 0 {
		t.Errorf("bias %v, want it unchanged", b)
	}
	if d := maxAbsDiff(runInputs(t, m, x), want); d > 1e-4 {
		t.Errorf("outputs differ from the dense model's by %g", d)
	}
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}
