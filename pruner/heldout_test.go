package pruner

import (
	"math"
	"testing"
)

// Identical outputs have no error and agree on every row; a row whose
// arg max moves counts as a disagreement; KL and the pseudo-label
// cross-entropy match the closed forms of two 2-way softmaxes.
func TestCompareOutputs(t *testing.T) {
	ref := []float32{0, 1, 3, 0}
	if s := CompareOutputs(ref, ref, 2); s.KL != 0 || s.RelMSE != 0 || s.Agreement != 1 {
		t.Fatalf("identical outputs: %+v", s)
	}
	y := []float32{1, 0, 3, 0}
	s := CompareOutputs(ref, y, 2)
	p := 1 / (1 + math.Exp(-1)) // softmax([0,1])[1]
	want := (p*math.Log(p/(1-p)) + (1-p)*math.Log((1-p)/p)) / 2
	if math.Abs(s.KL-want) > 1e-9 || s.Agreement != 0.5 || math.Abs(s.RelMSE-2.0/10) > 1e-9 {
		t.Fatalf("got %+v, want KL %g, agreement 0.5, rel. MSE 0.2", s, want)
	}
	// The dense arg maxes are class 1, then class 0: the pruned softmax
	// gives them 1−p and σ(3).
	q := 1 / (1 + math.Exp(-3))
	if ce := -(math.Log(1-p) + math.Log(q)) / 2; math.Abs(s.PseudoCE-ce) > 1e-9 {
		t.Errorf("pseudo-label CE %g, want %g", s.PseudoCE, ce)
	}
}

// A quarter of the samples is held out, in whole fixed batches, and
// none when fewer than minHeldOut would be.
func TestHeldOutSplit(t *testing.T) {
	for _, c := range []struct{ n, fixed, fit, held int }{
		{256, 0, 192, 64},
		{256, 1, 192, 64},
		{96, 8, 72, 24},
		{80, 8, 64, 16},
		{63, 0, 63, 0},
		{64, 0, 48, 16},
		{64, 32, 64, 0},
	} {
		if fit, held := heldOutSplit(c.n, c.fixed); fit != c.fit || held != c.held {
			t.Errorf("heldOutSplit(%d, %d) = %d, %d; want %d, %d", c.n, c.fixed, fit, held, c.fit, c.held)
		}
	}
}
