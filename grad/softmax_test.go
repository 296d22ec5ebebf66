package grad

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
)

// TestSoftmaxMatchesGorgonia: Softmax and LogSoftmax give gorgonia's
// SoftMax and LogSoftMax values along the last axis, on a tensor large
// enough to be split into runs over the worker pool.
func TestSoftmaxMatchesGorgonia(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	g := G.NewGraph()
	xv := rnd(r, 8, 40, 33)
	x := G.NewTensor(g, G.Float64, 3, G.WithShape(8, 40, 33), G.WithValue(xv), G.WithName("x"))
	ours, err := Softmax(x)
	if err != nil {
		t.Fatal(err)
	}
	oursLog, err := LogSoftmax(x)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := G.SoftMax(x, 2)
	if err != nil {
		t.Fatal(err)
	}
	flat, err := G.Reshape(x, []int{8 * 40, 33})
	if err != nil {
		t.Fatal(err)
	}
	theirsLog, err := G.LogSoftMax(flat, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := G.NewTapeMachine(g).RunAll(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want *G.Node
	}{{"softmax", ours, theirs}, {"log-softmax", oursLog, theirsLog}} {
		a, b := c.got.Value().Data().([]float64), c.want.Value().Data().([]float64)
		if len(a) != len(b) {
			t.Fatalf("%s: %d values, gorgonia %d", c.name, len(a), len(b))
		}
		for i := range a {
			if math.Abs(a[i]-b[i]) > 1e-12*(1+math.Abs(b[i])) {
				t.Fatalf("%s[%d] = %g, gorgonia %g", c.name, i, a[i], b[i])
			}
		}
	}
}
