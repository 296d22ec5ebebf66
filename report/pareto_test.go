package report

import (
	"slices"
	"testing"
)

func TestReportParetoFront(t *testing.T) {
	for _, tc := range []struct {
		name string
		pts  []Point
		want []bool
	}{
		{"empty", nil, []bool{}},
		{"one", []Point{{1, 0.5}}, []bool{true}},
		{"dominated", []Point{{1, 0.9}, {2, 0.8}}, []bool{true, false}},
		{"trade-off", []Point{{1, 0.5}, {2, 0.8}, {3, 0.9}}, []bool{true, true, true}},
		{"same cost, lower quality", []Point{{2, 0.8}, {2, 0.7}}, []bool{true, false}},
		{"same quality, higher cost", []Point{{2, 0.8}, {3, 0.8}}, []bool{true, false}},
		{"equal points", []Point{{2, 0.8}, {2, 0.8}}, []bool{true, true}},
		{"mixed", []Point{{4, 0.9}, {1, 0.2}, {3, 0.6}, {2, 0.7}, {5, 0.85}}, []bool{true, true, false, true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParetoFront(tc.pts); !slices.Equal(got, tc.want) {
				t.Fatalf("ParetoFront(%v) = %v, want %v", tc.pts, got, tc.want)
			}
		})
	}
}

func TestReportMarkParetoPerModel(t *testing.T) {
	run := func(model string, macs int64, acc float64) RunEntry {
		return RunEntry{Run: Run{Model: model, After: Metrics{MACs: &macs, Accuracy: &acc}}}
	}
	runs := []RunEntry{
		run("a", 10, 0.9), run("a", 20, 0.8), // the second is dominated
		run("b", 20, 0.8),      // alone in its model, so on its front
		{Run: Run{Model: "a"}}, // nothing measured: never on the front
	}
	MarkPareto(runs)
	got := []bool{runs[0].Pareto, runs[1].Pareto, runs[2].Pareto, runs[3].Pareto}
	if want := []bool{true, false, true, false}; !slices.Equal(got, want) {
		t.Fatalf("pareto marks %v, want %v", got, want)
	}
}
