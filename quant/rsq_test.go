package quant

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/internal/sweeptest"

	"github.com/pare-dev/pare/tensor"
)

func TestWeightedHessianRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	const n, k = 20, 6
	x := make([]float64, n*k)
	w := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	for i := range w {
		w[i] = rng.Float64() * 2
	}
	h := NewHessian(k, 1)
	h.AddRows(0, x, w)
	hn := h.Normalized()
	total := 0.0
	for _, v := range w {
		total += v
	}
	for i := range k {
		for j := range k {
			want := 0.0
			for r := range n {
				want += w[r] * x[r*k+i] * x[r*k+j]
			}
			want *= 2 / total
			if got := hn.H[0][i*k+j]; math.Abs(got-want) > 1e-12*max(1, math.Abs(want)) {
				t.Fatalf("H[%d][%d] = %v, want %v", i, j, got, want)
			}
		}
	}
}

// fixtureOutputErr quantizes a fresh copy of fixture f with o and returns
// the relative L2 error of its first output against the float model on
// the fixture's reference inputs.
func fixtureOutputErr(t *testing.T, f fixture, o Options) (float64, *Report) {
	t.Helper()
	m, in := loadFixture(t, f)
	want := runORT(t, m, in)
	if o.Calib == nil && symbolicSeq(m) {
		// Synthetic data needs every dim but the batch; a symbolic
		// sequence length (the exporter fixtures) takes the reference
		// token ids as calibration data instead.
		o.Calib = &Dataset{Inputs: in}
	}
	rep, err := Quantize(context.Background(), m, o)
	if err != nil {
		t.Fatal(err)
	}
	got := runORT(t, m, in)
	if want[0].DType != tensor.Float32 {
		t.Fatalf("first output is %v", want[0].DType)
	}
	return relL2(float32s(t, got[0]), float32s(t, want[0])), rep
}

// symbolicSeq reports whether a graph input has a symbolic dim after the
// first.
func symbolicSeq(m *graph.Model) bool {
	for _, in := range m.Graph.Inputs {
		if ts, ok := graph.ShapeFromInfo(in.Info); ok && ts.Ranked {
			for _, d := range ts.Dims[1:] {
				if !d.IsKnown() {
					return true
				}
			}
		}
	}
	return false
}

func TestFourBitMethodsOnTransformers(t *testing.T) {
	for _, f := range sweeptest.Pick(loadManifest(t)) {
		if f.Kind == "cnn" {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			errs := map[string]float64{}
			for _, c := range []struct {
				method, rotate string
			}{{MethodRTN, RotateNone}, {MethodGPTQ, RotateNone}, {MethodRTN, RotateHadamard}, {MethodGPTQ, RotateHadamard}, {MethodRSQ, RotateHadamard}} {
				o := Options{Format: FormatNBits, Bits: 4, Block: 32, Method: c.method, Rotate: c.rotate, CalibSamples: 32, Seed: 1}
				e, rep := fixtureOutputErr(t, f, o)
				key := c.method + "+" + c.rotate
				errs[key] = e
				if c.method == MethodRSQ {
					withAttention := len(rep.Notes) > 0 && strings.Contains(strings.Join(rep.Notes, "\n"), "token weights from")
					uniform := strings.Contains(strings.Join(rep.Notes, "\n"), "uniform")
					if !withAttention && !uniform {
						t.Errorf("rsq said neither which attention it used nor that it fell back: %v", rep.Notes)
					}
				}
				if c.method != MethodRTN {
					for _, l := range rep.Layers {
						if l.OutputError == nil {
							t.Errorf("%s: layer %s has no output error", key, l.Node)
						}
					}
				}
			}
			t.Logf("4-bit nbits output error: %s", fmt.Sprint(errs))
			// GPTQ lowers the error of RTN with and without rotation. (On
			// these untrained fixtures rotation itself may not help: their
			// random weights have no outliers to spread.)
			for _, rot := range []string{RotateNone, RotateHadamard} {
				if g, r := errs["gptq+"+rot], errs["rtn+"+rot]; g > r {
					t.Errorf("rotation %s: GPTQ error %.4f above RTN's %.4f", rot, g, r)
				}
			}
		})
	}
}

// RSQ finds the attention softmaxes of every exported decoder: read by
// the probabilities' MatMul directly (the torch-2 dynamo export, the
// trained decoder), or through the Cast that Hugging Face's eager
// attention writes after its float32 softmax (llama_nano and the KV-cache
// decoding step), one per layer.
func TestAttentionSoftmaxesOfExports(t *testing.T) {
	for name, want := range map[string]int{
		"hf_llama_tiny": 2, "llama_char_op17": 3, "llama_nano_op17": 2, "llama_masked_nano_op17": 2, "llama_kv_nano_op17": 2,
		"fmnist_resnet_op17": 0,
	} {
		m, err := graph.Load("../fixtures/models/" + name + ".onnx")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(attentionSoftmaxes(m)); got != want {
			t.Errorf("%s: %d attention softmaxes, want %d", name, got, want)
		}
	}
}
