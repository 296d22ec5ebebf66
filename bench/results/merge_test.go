package main

import (
	"math"
	"strings"
	"testing"

	"github.com/pare-dev/pare/pruner"
)

// The merged summaries are computed from the candidate tables' text, so
// the text must read back as what was measured.
func TestCandidateTableReadsBack(t *testing.T) {
	s := &pruner.Search{Picked: 1, Candidates: []pruner.Tried{
		{Candidate: pruner.Candidate{Name: "obs + reconstruct, global"}, Removed: 0.516, Score: pruner.HeldOutScore{KL: 0.0223, RelMSE: 0.0151, Agreement: 0.953, PseudoCE: 0.31}},
		{Candidate: pruner.Candidate{Name: "obs + reconstruct, sensitivity, 3 steps"}, Removed: 0.492, Score: pruner.HeldOutScore{KL: 0.0152, RelMSE: 0.0086, Agreement: 0.969, PseudoCE: 0.33}},
		{Candidate: pruner.Candidate{Name: "obs + reconstruct, sensitivity"}, Err: "boom"},
	}}
	in := []searchMeasured{{model: "m.onnx", ratio: 0.5, search: s, acc: []float64{0.91, 0.905, -1},
		test: []pruner.HeldOutScore{{RelMSE: 0.02, Agreement: 0.95, KL: 0.04, PseudoCE: 0.35}, {RelMSE: 0.01, Agreement: 0.96, KL: 0.03, PseudoCE: 0.34}, {RelMSE: -1}}}}
	got, err := parseCandidates("### m.onnx (dense 91.5%)\n\n" + candidateTable(in, 10000) + softProxyTable(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].model != "m.onnx" || got[0].ratio != 0.5 {
		t.Fatalf("got %+v", got)
	}
	g := got[0]
	if g.search.Picked != 1 || len(g.search.Candidates) != 2 || g.search.Candidates[1].Name != "obs + reconstruct, sensitivity, 3 steps" {
		t.Fatalf("candidates %+v, picked %d", g.search.Candidates, g.search.Picked)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	c := g.search.Candidates[0]
	if !near(c.Removed, 0.516) || !near(c.Score.KL, 0.0223) || !near(c.Score.RelMSE, 0.0151) || !near(c.Score.Agreement, 0.953) ||
		!near(g.test[1].RelMSE, 0.01) || !near(g.test[1].Agreement, 0.96) || !near(g.acc[0], 0.91) || !near(g.acc[1], 0.905) {
		t.Fatalf("read back %+v, test %+v, acc %v", g.search.Candidates, g.test, g.acc)
	}
	if !near(c.Score.PseudoCE, 0.31) || !near(g.test[1].PseudoCE, 0.34) || !near(g.test[1].KL, 0.03) {
		t.Fatalf("softmax measures read back %+v, test %+v", g.search.Candidates, g.test)
	}
	// The held-out ranking picks the 3-step candidate (0.5 point below
	// the best); the test-image ranking picks the same.
	sum := proxySummary(got)
	// The held-out pseudo-label cross-entropy picks the best one.
	for _, want := range []string{"| held out: relative output MSE (the search's) | 0.50 | 0.5 | 1 of 1 |", "| held out: KL divergence of the softmax | 0.50 | 0.5 | 1 of 1 |",
		"| held out: pseudo-label cross-entropy | 0.00 | 0.0 | 1 of 1 |"} {
		if !contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	// More than a point short of the ratio, the 3-step candidate ranks
	// after the one that reaches it, as in the search.
	g.search.Candidates[1].Removed = 0.47
	if want := "| held out: relative output MSE (the search's) | 0.00 | 0.0 | 1 of 1 |"; !contains(proxySummary(got), want) {
		t.Errorf("a short candidate ranked first: summary lacks %q", want)
	}
	if contains(sum, "cross-fitted") {
		t.Errorf("summary ranks by a second fold that was not measured:\n%s", sum)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// A partial regeneration copies the cells of the allocation section
// measured on the same test images, not another section's table of the
// same model.
func TestPreviousCellsFromTheSameTestSet(t *testing.T) {
	defer func(r string) { *root = r }(*root)
	*root = "../.."
	thousand := "the 1000 test images of `fixtures/data/fmnist_test_x.npy`"
	got := previousCells("fixtures/models/fmnist_resnet_bn_op17.onnx", thousand)
	if c := got["obs, global"]; len(c) != 2 || !strings.HasSuffix(c[0], "%") {
		t.Fatalf("1000-image cells of obs, global: %q", c)
	}
	if got := previousCells("fixtures/models/fmnist_resnet_bn_op17.onnx", "the 10000 test images of `elsewhere.npy`"); got != nil {
		t.Fatalf("cells copied across test sets: %v", got)
	}
}
