package importance

import (
	"math"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph/build"
	"github.com/pare-dev/pare/onnx"
)

// max(0, a) for a ~ N(0, 1): mean 1/√(2π), variance ½ − 1/(2π).
func TestRectifiedMoments(t *testing.T) {
	m, v := rectified(0, 1)
	if math.Abs(m-1/math.Sqrt(2*math.Pi)) > 1e-12 || math.Abs(v-(0.5-1/(2*math.Pi))) > 1e-12 {
		t.Errorf("mean %v var %v", m, v)
	}
	if m, v := rectified(2, 0); m != 2 || v != 0 {
		t.Errorf("deterministic positive input: %v %v", m, v)
	}
}

// Data-free H of a 1×1 Conv after BN → Relu over two channels:
// channel c is relu(N(β_c, γ_c²)); H = 2(μμᵀ + diag σ²).
func TestBNHessian(t *testing.T) {
	b := build.New(13)
	x := b.Input("x", onnx.TensorProto_FLOAT, -1, 2, 4, 4)
	bn := b.Node("BatchNormalization", []string{x, b.Init("g", []int64{2}, []float32{1, 2}), b.Init("b", []int64{2}, []float32{0, 1}),
		b.Init("mu", []int64{2}, []float32{0, 0}), b.Init("var", []int64{2}, []float32{1, 1})})
	r := b.Node("Relu", []string{bn})
	y := b.Node("Conv", []string{r, b.Init("w", []int64{3, 2, 1, 1}, []float32{1, 1, 1, 1, 1, 1})})
	b.Output(y, onnx.TensorProto_FLOAT, -1, 3, 4, 4)
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	l, err := calib.NewLayer(m.Graph, m.Graph.Nodes[2])
	if err != nil {
		t.Fatal(err)
	}
	h, err := bnHessian(m.Graph, l)
	if err != nil {
		t.Fatal(err)
	}
	m0, v0 := rectified(0, 1)
	m1, v1 := rectified(1, 4)
	want := []float64{2 * (m0*m0 + v0), 2 * m0 * m1, 2 * m0 * m1, 2 * (m1*m1 + v1)}
	for i := range want {
		if math.Abs(h[i]-want[i]) > 1e-12 {
			t.Fatalf("H %v, want %v", h, want)
		}
	}
}
