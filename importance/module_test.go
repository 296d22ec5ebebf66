package importance_test

import (
	"math"
	"testing"

	"github.com/pare-dev/pare/importance"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

// |w| sorted 4, 3, 2, 1: squares 16, 9, 4, 1, cumulative 16, 25, 29, 30.
func TestCumulativeScores(t *testing.T) {
	got := importance.CumulativeScores([]float32{3, -4, 1, 2})
	want := []float64{9.0 / 25, 1, 1.0 / 30, 4.0 / 29}
	for i := range want {
		if !near(got[i], want[i]) {
			t.Errorf("score[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	// Equal magnitudes share one denominator: 4+4 = 8, then 9.
	got = importance.CumulativeScores([]float32{2, -2, 1, 0})
	want = []float64{0.5, 0.5, 1.0 / 9, 0}
	for i := range want {
		if !near(got[i], want[i]) {
			t.Errorf("tie score[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// chain: w1 rows 1,1 / 2,2 / 3,3 / -4,4 (squares 1,4,9,16 per weight):
// cumulative over w1 sorted by magnitude: 32 (the two 4s), 50, 58, 60;
// so the weights of output i score 1/60, 4/58, 9/50, 16/32. w2 is twelve
// ones: each scores 1/12 and each input channel has three of them.
func TestModuleChannelScores(t *testing.T) {
	a, g := chain(t)
	mo := importance.NewModule(a)
	got, err := mo.Score(a.Graph(), g)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{2.0 / 60, 8.0 / 58, 18.0 / 50, 32.0 / 32}
	for i := range want {
		want[i] += 3.0 / 12
		if !near(got[i], want[i]) {
			t.Errorf("channel %d: %v, want %v", i, got[i], want[i])
		}
	}
	if m := mo.Modules[g.ID]; m != "stem" {
		t.Errorf("the conv fed by the graph input is in module %q, want stem", m)
	}
}
