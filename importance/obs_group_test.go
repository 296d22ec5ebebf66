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

// OBS with a grouped Conv as the consumer: x[·,4,1,1] → 1×1 Conv to
// h = (x0, x1, x0+x1, x2, x3, x2+x3) → 1×1 Conv of 2 groups (3 inputs,
// 2 outputs each). An index of the producer's group is one offset of
// both groups; its cost is the sum of each group's OBS cost, each group
// with the Hessian of its own inputs.
func TestOBSScoresGroupedConsumerByGroup(t *testing.T) {
	b := build.New(13)
	in := b.Input("x", onnx.TensorProto_FLOAT, -1, 4, 1, 1)
	h := b.Node("Conv", []string{in, b.Init("wp", []int64{6, 4, 1, 1}, []float32{
		1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0,
		0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1})})
	wg := []float64{1, 2, 3, -1, 0.5, 2, 0.25, -2, 1, 3, 1, -0.5}
	w32 := make([]float32, len(wg))
	for i, v := range wg {
		w32[i] = float32(v)
	}
	y := b.Node("Conv", []string{h, b.Init("wg", []int64{4, 3, 1, 1}, w32)}, build.Int("group", 2))
	b.Output(y, onnx.TensorProto_FLOAT, -1, 4, 1, 1)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	xs := []float32{1, 0, 2, -1, 0, 2, 1, 1, 1, 1, -3, 0.5}
	d, _ := tensor.New([]int64{3, 4, 1, 1}, xs)
	p := filepath.Join(t.TempDir(), "x.npy")
	if err := tensor.WriteNpyFile(p, d); err != nil {
		t.Fatal(err)
	}
	src, err := calib.Open(p, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	var grp *prune.Group
	for _, g := range a.Prunable() {
		if g.Size == 3 {
			grp = g
		}
	}
	if grp == nil {
		t.Fatal("no group of 3 offsets")
	}
	o, err := importance.NewOBS(context.Background(), a.Model, a, importance.Data{Src: src}, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	got, err := o.Score(a.Graph(), grp)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, 3)
	for j := range 2 {
		// Group j's inputs per sample: (x_{2j}, x_{2j+1}, their sum).
		hs := make([]float64, 9)
		for s := range 3 {
			u, v := float64(xs[4*s+2*j]), float64(xs[4*s+2*j+1])
			r := []float64{u, v, u + v}
			for a := range 3 {
				for c := range 3 {
					hs[a*3+c] += 2 * r[a] * r[c] / 3
				}
			}
		}
		hinv, err := calib.DampedInverseRows(hs, 3, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			sq := 0.0
			for r := range 2 {
				w := wg[(2*j+r)*3+i]
				sq += w * w
			}
			want[i] += 0.5 * sq / hinv[i*3+i]
		}
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6*max(1, want[i]) {
			t.Errorf("offset %d: cost %v, want %v (both groups' costs)", i, got[i], want[i])
		}
	}
	for _, n := range o.Notes {
		t.Log(n)
	}
}
