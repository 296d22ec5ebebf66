package importance_test

import (
	"errors"
	"testing"

	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/prune"
)

// chain: conv w1 (4 outputs, output i has all weights i+1) → conv w2
// whose input slice i has all weights 1, so only w1 orders the channels.
func chain(t *testing.T) (*prune.Analysis, *prune.Group) {
	t.Helper()
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, -1, 2, 4, 4)
	w1 := make([]float32, 4*2)
	for i := range w1 {
		w1[i] = float32(i/2 + 1)
	}
	w1[6] = -w1[6] // sign must not matter
	c1 := b.Node("Conv", []string{x, b.Init("w1", []int64{4, 2, 1, 1}, w1)})
	w2 := make([]float32, 3*4)
	for i := range w2 {
		w2[i] = 1
	}
	y := b.Node("Conv", []string{c1, b.Init("w2", []int64{3, 4, 1, 1}, w2)})
	b.Output(y, onnx.TensorProto_FLOAT, -1, 3, 4, 4)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a, a.Groups[0]
}

func TestMagnitudeOrdersByWeight(t *testing.T) {
	for _, p := range []int{1, 2} {
		a, g := chain(t)
		s, err := importance.Magnitude{P: p}.Score(a.Graph(), g)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(s); i++ {
			if !(s[i] > s[i-1]) {
				t.Errorf("p=%d: scores %v not increasing with |w|", p, s)
			}
		}
	}
}

func TestRandomIsSeeded(t *testing.T) {
	a, g := chain(t)
	s1, _ := importance.Random{Seed: 7}.Score(a.Graph(), g)
	s2, _ := importance.Random{Seed: 7}.Score(a.Graph(), g)
	s3, _ := importance.Random{Seed: 8}.Score(a.Graph(), g)
	same := func(x, y []float64) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(s1, s2) || same(s1, s3) {
		t.Errorf("seed 7: %v and %v, seed 8: %v", s1, s2, s3)
	}
}

func TestNewCriteria(t *testing.T) {
	for _, c := range []struct{ crit, norm, name string }{
		{"magnitude", "l1", "magnitude-l1"}, {"magnitude", "l2", "magnitude-l2"},
		{"l1", "", "magnitude-l1"}, {"random", "", "random"},
	} {
		s, err := importance.New(c.crit, c.norm, 1)
		if err != nil || s.Name() != c.name {
			t.Errorf("%s/%s: %v %v", c.crit, c.norm, s, err)
		}
	}
	if _, err := importance.New("taylor", "", 0); !errors.Is(err, importance.ErrUnknownCriterion) {
		t.Errorf("unknown criterion: %v", err)
	}
}
