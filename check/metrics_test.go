package check

import (
	"math"
	"testing"

	"github.com/pare-dev/pare/tensor"
)

func dense(t *testing.T, shape []int64, v ...float32) tensor.Dense {
	t.Helper()
	d, err := tensor.New(shape, v)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func metricsOf(t *testing.T, ac *AllClose, pairs ...[2]tensor.Dense) Metrics {
	t.Helper()
	a := newAccumulator(ac)
	for _, p := range pairs {
		if _, _, err := a.add(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	return a.metrics()
}

// same compares floats, treating NaN as equal to NaN.
func same(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return a == b
	}
	return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b))
}

func TestMetricsHandComputed(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name       string
		ref, cand  tensor.Dense
		maxAbs     float64
		meanAbs    float64
		relL2      float64
		cos        float64
		top1       float64 // NaN: not applicable
		violations int64   // with atol 0.5, rtol 0
	}{
		{
			// diffs 0 0 0 1; ‖d‖=1, ‖r‖=√30; r·c = 1+4+9+20 = 34, ‖c‖ = √39.
			name: "one element off",
			ref:  dense(t, []int64{2, 2}, 1, 2, 3, 4), cand: dense(t, []int64{2, 2}, 1, 2, 3, 5),
			maxAbs: 1, meanAbs: 0.25, relL2: 1 / math.Sqrt(30), cos: 34 / math.Sqrt(30*39), top1: 1, violations: 1,
		},
		{
			name: "identical",
			ref:  dense(t, []int64{1, 3}, -1, 0.5, 2), cand: dense(t, []int64{1, 3}, -1, 0.5, 2),
			maxAbs: 0, meanAbs: 0, relL2: 0, cos: 1, top1: 1,
		},
		{
			// Row 0 argmax 1 vs 0, row 1 argmax 0 vs 0.
			name: "top-1 half",
			ref:  dense(t, []int64{2, 2}, 0, 1, 1, 0), cand: dense(t, []int64{2, 2}, 1, 0, 1, 0),
			maxAbs: 1, meanAbs: 0.5, relL2: 1, cos: 0.5, top1: 0.5, violations: 2,
		},
		{
			name: "opposite",
			ref:  dense(t, []int64{2}, 1, 0), cand: dense(t, []int64{2}, -1, 0),
			maxAbs: 2, meanAbs: 1, relL2: 2, cos: -1, top1: 0, violations: 1,
		},
		{
			name: "both zero",
			ref:  dense(t, []int64{3}, 0, 0, 0), cand: dense(t, []int64{3}, 0, 0, 0),
			maxAbs: 0, meanAbs: 0, relL2: 0, cos: 1, top1: 1,
		},
		{
			name: "zero reference",
			ref:  dense(t, []int64{2}, 0, 0), cand: dense(t, []int64{2}, 0.25, 0),
			maxAbs: 0.25, meanAbs: 0.125, relL2: math.Inf(1), cos: 0, top1: 1,
		},
		{
			name: "zero candidate",
			ref:  dense(t, []int64{2}, 3, 4), cand: dense(t, []int64{2}, 0, 0),
			maxAbs: 4, meanAbs: 3.5, relL2: 1, cos: 0, top1: 0, violations: 2,
		},
		{
			name: "NaN in candidate",
			ref:  dense(t, []int64{1, 2}, 1, 2), cand: dense(t, []int64{1, 2}, nan, 2),
			maxAbs: math.NaN(), meanAbs: math.NaN(), relL2: math.NaN(), cos: math.NaN(), top1: 0, violations: 1,
		},
		{
			name: "NaN in reference",
			ref:  dense(t, []int64{2}, nan, 2), cand: dense(t, []int64{2}, 1, 2),
			maxAbs: math.NaN(), meanAbs: math.NaN(), relL2: math.NaN(), cos: math.NaN(), top1: 0, violations: 1,
		},
		{
			// Equal infinities match; the finite pair decides the metrics.
			name: "equal infinities",
			ref:  dense(t, []int64{2}, inf, 2), cand: dense(t, []int64{2}, inf, 2),
			maxAbs: 0, meanAbs: 0, relL2: 0, cos: 1, top1: 1,
		},
		{
			name: "infinity mismatch",
			ref:  dense(t, []int64{2}, inf, 2), cand: dense(t, []int64{2}, 1, 2),
			maxAbs: math.Inf(1), meanAbs: math.Inf(1), relL2: math.Inf(1), cos: math.NaN(), top1: 0, violations: 1,
		},
		{
			// Ties go to the first index, as numpy.argmax does; r·c = 10,
			// ‖r‖ = 3, ‖c‖ = √12.
			name: "ties",
			ref:  dense(t, []int64{1, 3}, 2, 2, 1), cand: dense(t, []int64{1, 3}, 2, 2, 2),
			maxAbs: 1, meanAbs: 1.0 / 3, relL2: 1 / 3.0, cos: 10 / (3 * math.Sqrt(12)), top1: 1, violations: 1,
		},
		{
			name: "last dim 1: no top-1",
			ref:  dense(t, []int64{2, 1}, 1, 2), cand: dense(t, []int64{2, 1}, 1, 2),
			maxAbs: 0, meanAbs: 0, relL2: 0, cos: 1, top1: math.NaN(),
		},
		{
			name: "scalar",
			ref:  dense(t, nil, 3), cand: dense(t, nil, 3),
			maxAbs: 0, meanAbs: 0, relL2: 0, cos: 1, top1: math.NaN(),
		},
	}
	for _, tt := range tests {
		m := metricsOf(t, &AllClose{ATol: 0.5}, [2]tensor.Dense{tt.ref, tt.cand})
		got := []float64{float64(m.MaxAbs), float64(m.MeanAbs), float64(m.RelL2), float64(m.Cosine)}
		want := []float64{tt.maxAbs, tt.meanAbs, tt.relL2, tt.cos}
		for i, what := range []string{"max_abs", "mean_abs", "rel_l2", "cosine"} {
			if !same(got[i], want[i]) {
				t.Errorf("%s: %s = %v, want %v", tt.name, what, got[i], want[i])
			}
		}
		switch {
		case math.IsNaN(tt.top1) && m.Top1 != nil:
			t.Errorf("%s: top1 = %v, want none", tt.name, *m.Top1)
		case !math.IsNaN(tt.top1) && (m.Top1 == nil || !same(float64(*m.Top1), tt.top1)):
			t.Errorf("%s: top1 = %v, want %v", tt.name, m.Top1, tt.top1)
		}
		if m.AllCloseViolations != tt.violations {
			t.Errorf("%s: violations = %d, want %d", tt.name, m.AllCloseViolations, tt.violations)
		}
	}
}

func TestMetricsAccumulateOverBatches(t *testing.T) {
	ref := dense(t, []int64{4, 2}, 1, 2, 3, 4, 5, 6, 7, 8)
	cand := dense(t, []int64{4, 2}, 1.5, 2, 3, 3, 5, 6.25, 8, 7)
	whole := metricsOf(t, &AllClose{ATol: 0.1, RTol: 0.1}, [2]tensor.Dense{ref, cand})
	var pairs [][2]tensor.Dense
	for _, r := range [][2]int64{{0, 1}, {1, 3}, {3, 4}} {
		a, _ := ref.Slice(r[0], r[1])
		b, _ := cand.Slice(r[0], r[1])
		pairs = append(pairs, [2]tensor.Dense{a, b})
	}
	split := metricsOf(t, &AllClose{ATol: 0.1, RTol: 0.1}, pairs...)
	if !same(float64(whole.RelL2), float64(split.RelL2)) || !same(float64(whole.Cosine), float64(split.Cosine)) ||
		whole.MaxAbs != split.MaxAbs || !same(float64(whole.MeanAbs), float64(split.MeanAbs)) ||
		*whole.Top1 != *split.Top1 || whole.AllCloseViolations != split.AllCloseViolations || whole.Rows != 4 || split.Rows != 4 {
		t.Errorf("whole %+v\nsplit %+v", whole, split)
	}
	// |d| ≤ 0.1 + 0.1|r| fails for 0.5 > 0.2, 1 > 0.5, 1 > 0.8 and 1 > 0.9.
	if whole.AllCloseViolations != 4 {
		t.Errorf("violations %d, want 4", whole.AllCloseViolations)
	}
	// Top-1 per row: agree, disagree (4 vs 3,3 tie → 0), agree, disagree.
	if *whole.Top1 != 0.5 {
		t.Errorf("top1 %v, want 0.5", *whole.Top1)
	}
	if m := metricsOf(t, nil, [2]tensor.Dense{ref, cand}); m.AllCloseViolations != -1 {
		t.Errorf("no allclose gate: violations %d, want -1", m.AllCloseViolations)
	}
}

func TestMetricsShapeMismatch(t *testing.T) {
	a := newAccumulator(nil)
	if _, _, err := a.add(dense(t, []int64{2}, 1, 2), dense(t, []int64{1, 2}, 1, 2)); err == nil {
		t.Error("different shapes accepted")
	}
	a.add(dense(t, []int64{1, 2}, 1, 2), dense(t, []int64{1, 2}, 1, 2))
	if _, _, err := a.add(dense(t, []int64{1, 3}, 1, 2, 3), dense(t, []int64{1, 3}, 1, 2, 3)); err == nil {
		t.Error("shape change between batches accepted")
	}
}

func TestNumberJSON(t *testing.T) {
	for _, tt := range []struct {
		n    Number
		want string
	}{{1.5, "1.5"}, {Number(math.NaN()), `"NaN"`}, {Number(math.Inf(1)), `"Inf"`}, {Number(math.Inf(-1)), `"-Inf"`}, {1e-7, "1e-07"}} {
		b, err := tt.n.MarshalJSON()
		if err != nil || string(b) != tt.want {
			t.Errorf("%v → %s, %v", float64(tt.n), b, err)
		}
		var back Number
		if err := back.UnmarshalJSON(b); err != nil || !same(float64(back), float64(tt.n)) {
			t.Errorf("%s → %v, %v", b, back, err)
		}
	}
	var n Number
	if err := n.UnmarshalJSON([]byte(`"x"`)); err == nil {
		t.Error(`"x" accepted`)
	}
}
