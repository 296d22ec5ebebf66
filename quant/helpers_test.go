package quant

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// runORT runs m in onnxruntime (all optimisations) and returns its
// outputs in model order.
func runORT(t testing.TB, m *graph.Model, inputs map[string]tensor.Dense) []tensor.Dense {
	t.Helper()
	return runORTWith(t, m, inputs, ort.Options{})
}

// runORTWith runs m with the given session options.
func runORTWith(t testing.TB, m *graph.Model, inputs map[string]tensor.Dense, opts ort.Options) []tensor.Dense {
	t.Helper()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, opts)
	if err != nil {
		t.Fatalf("onnxruntime rejects the model: %v", err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), inputs, nil)
	if err != nil {
		t.Fatalf("onnxruntime run: %v", err)
	}
	return out
}

func float32s(t testing.TB, d tensor.Dense) []float32 {
	t.Helper()
	v, err := d.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// randDense returns a float32 array of normal values.
func randDense(rng *rand.Rand, shape ...int64) tensor.Dense {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	d, _ := tensor.New(shape, v)
	return d
}

// matmulRef returns A[M,K] · Wᵀ for W given as [N,K], in float64, with
// the sum of absolute products per element (the scale of float32
// rounding error).
func matmulRef(a []float32, m, k int, w Matrix) (out, mag []float64) {
	out = make([]float64, m*w.Rows)
	mag = make([]float64, m*w.Rows)
	for i := range m {
		for n := range w.Rows {
			s, g := 0.0, 0.0
			for j := range k {
				p := float64(a[i*k+j]) * float64(w.Data[n*k+j])
				s += p
				g += math.Abs(p)
			}
			out[i*w.Rows+n], mag[i*w.Rows+n] = s, g
		}
	}
	return out, mag
}

// relL2 returns ‖got − want‖ / ‖want‖.
func relL2(got []float32, want []float32) float64 {
	num, den := 0.0, 0.0
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}
