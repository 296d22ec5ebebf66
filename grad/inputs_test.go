package grad

import (
	"context"
	"math"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// maskedModels are exports that take an attention mask and position or
// token-type ids besides the token ids, as Hugging Face exports ship
// them (the first two: their reference inputs pad the second row), and
// a decoding step that also takes and returns a key/value cache.
var maskedModels = []string{"llama_masked_nano_op17", "bert_masked_nano_op17", "llama_kv_nano_op17"}

// shapesOf are the shapes of a batch's inputs.
func shapesOf(in map[string]tensor.Dense) map[string][]int64 {
	out := map[string][]int64{}
	for k, d := range in {
		out[k] = d.Shape
	}
	return out
}

// refPair reads a fixture's reference inputs and PyTorch's values of
// its first output (model m's).
func refPair(t *testing.T, name string, m *graph.Model) (map[string]tensor.Dense, []float32) {
	t.Helper()
	in, err := tensor.ReadNpz("../fixtures/ref/" + name + ".inputs.npz")
	if err != nil {
		t.Fatal(err)
	}
	out, err := tensor.ReadNpz("../fixtures/ref/" + name + ".outputs.npz")
	if err != nil {
		t.Fatal(err)
	}
	first, ok := out[m.Graph.Outputs[0].Name]
	if !ok {
		t.Fatalf("no reference for output %s", m.Graph.Outputs[0].Name)
	}
	return in, first.Data.([]float32)
}

// ortInputs runs the model file in onnxruntime on every input (the key
// "" names the first).
func ortInputs(t *testing.T, path string, in map[string]tensor.Dense) []float32 {
	t.Helper()
	if err := ort.Init(""); err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSessionFromFile(path, ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d, ok := in[""]; ok {
		in = map[string]tensor.Dense{s.Inputs()[0].Name: d}
	}
	out, err := s.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out[0].Data.([]float32)
}

// TestMaskedInputsForwardMatchesOnnxruntime: a model taking an
// attention mask and position or token-type ids besides the ids is
// translated with every input: on the reference inputs (the second row
// padded) its outputs are onnxruntime's and PyTorch's, within 1e-5 of
// their scale; the mask changes the padded row's outputs. The KV-cache
// decoding step is built for its data's own shapes (the past's length)
// and its first output, the logits, compared.
func TestMaskedInputsForwardMatchesOnnxruntime(t *testing.T) {
	for _, name := range maskedModels {
		t.Run(name, func(t *testing.T) {
			path := models + name + ".onnx"
			m, err := graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			in, torch := refPair(t, name, m)
			net, err := BuildInputs(m, shapesOf(in))
			if err != nil {
				t.Fatal(err)
			}
			if len(net.Inputs) != len(in) {
				t.Fatalf("%d inputs translated, want %d", len(net.Inputs), len(in))
			}
			got, err := net.ForwardInputs(in)
			if err != nil {
				t.Fatal(err)
			}
			for ref, want := range map[string][]float32{"onnxruntime": ortInputs(t, path, in), "PyTorch": torch} {
				scale := 0.0
				for _, v := range want {
					scale = math.Max(scale, math.Abs(float64(v)))
				}
				if d := maxAbsDiff(got, want); len(got) != len(want) || d > 1e-5*scale {
					t.Errorf("max |gorgonia − %s| = %g over %d outputs (%d expected, up to %g)", ref, d, len(got), len(want), scale)
				}
			}
			if name == "llama_kv_nano_op17" {
				return // no padding in its reference inputs
			}
			// All ones: the padded row's outputs must move.
			ones := tensor.Dense{Shape: in["attention_mask"].Shape, DType: in["attention_mask"].DType, Data: make([]int64, len(in["attention_mask"].Data.([]int64)))}
			for i := range ones.Data.([]int64) {
				ones.Data.([]int64)[i] = 1
			}
			unmasked := map[string]tensor.Dense{"attention_mask": ones}
			for k, v := range in {
				if k != "attention_mask" {
					unmasked[k] = v
				}
			}
			free, err := net.ForwardInputs(unmasked)
			if err != nil {
				t.Fatal(err)
			}
			half := len(got) / 2
			if d := maxAbsDiffF64(got[half:], free[half:]); d < 1e-3 {
				t.Errorf("the padded row's outputs do not depend on the mask (max difference %g)", d)
			}
		})
	}
}

func maxAbsDiffF64(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// TestMaskedInputsGradientsMatchFiniteDifferences: the gradients of the
// KL (a decoder's logits) or the MSE (an encoder's hidden states)
// toward onnxruntime's outputs on other ids, with the padding mask and
// the position or token-type ids fed, are the loss's central finite
// differences.
func TestMaskedInputsGradientsMatchFiniteDifferences(t *testing.T) {
	for _, name := range maskedModels {
		t.Run(name, func(t *testing.T) {
			path := models + name + ".onnx"
			m, err := graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			in, _ := refPair(t, name, m)
			other := map[string]tensor.Dense{}
			for k, v := range in {
				other[k] = v
			}
			ids := in["input_ids"]
			shifted := make([]int64, len(ids.Data.([]int64)))
			for i, v := range ids.Data.([]int64) {
				shifted[i] = (v*7 + 3) % 256
			}
			other["input_ids"] = tensor.Dense{Shape: ids.Shape, DType: ids.DType, Data: shifted}
			ref := ortInputs(t, path, other)
			net, err := BuildInputs(m, shapesOf(in))
			if err != nil {
				t.Fatal(err)
			}
			loss := KL
			if name == "bert_masked_nano_op17" {
				loss = MSE
			}
			o, err := NewObjective(net, loss)
			if err != nil {
				t.Fatal(err)
			}
			checkGradients(t, net, loss, func() (float64, error) { return o.StepInputs(in, ref) }, o.Grad)
		})
	}
}
