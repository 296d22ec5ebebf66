package ort

import (
	"math"
	"testing"

	"github.com/pare-dev/pare/onnx"
	"github.com/pare-dev/pare/ort/orttest"
	"github.com/pare-dev/pare/tensor"
)

// mlpRef computes orttest.MLP in Go: hidden = relu(x W1 + b1) and
// logits = hidden W2 + b2, reading the weights from the model.
func mlpRef(t *testing.T, m *onnx.ModelProto, x []float32, rows int) (hidden, logits []float32) {
	t.Helper()
	w := map[string][]float32{}
	for _, init := range m.Graph.Initializer {
		vals := make([]float32, len(init.RawData)/4)
		for i := range vals {
			vals[i] = math.Float32frombits(uint32(init.RawData[4*i]) | uint32(init.RawData[4*i+1])<<8 | uint32(init.RawData[4*i+2])<<16 | uint32(init.RawData[4*i+3])<<24)
		}
		w[init.GetName()] = vals
	}
	hidden = make([]float32, rows*8)
	logits = make([]float32, rows*3)
	for r := range rows {
		for j := range 8 {
			s := w["b1"][j]
			for k := range 4 {
				s += x[r*4+k] * w["W1"][k*8+j]
			}
			hidden[r*8+j] = max(s, 0)
		}
		for j := range 3 {
			s := w["b2"][j]
			for k := range 8 {
				s += hidden[r*8+k] * w["W2"][k*3+j]
			}
			logits[r*3+j] = s
		}
	}
	return hidden, logits
}

func inputX(rows int) tensor.Dense {
	x := make([]float32, rows*4)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.37)) * 2
	}
	d, _ := tensor.New([]int64{int64(rows), 4}, x)
	return d
}

func assertClose(t *testing.T, what string, got tensor.Dense, want []float32, tol float64) {
	t.Helper()
	g, err := got.Float64s()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(g) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(g), len(want))
	}
	for i := range g {
		if math.Abs(g[i]-float64(want[i])) > tol {
			t.Fatalf("%s[%d] = %v, want %v", what, i, g[i], want[i])
		}
	}
}

func openSession(t *testing.T, m *onnx.ModelProto, opts Options) *Session {
	t.Helper()
	s, err := NewSession(orttest.Bytes(t, m), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
