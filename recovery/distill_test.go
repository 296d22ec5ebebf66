package recovery

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/ort"
	"github.com/pare-dev/pare/tensor"
)

// klToDense is the mean KL divergence from the dense model's softmax to
// m's on the first n Fashion-MNIST test images, run in onnxruntime.
func klToDense(t *testing.T, dense, m *graph.Model, n int) float64 {
	t.Helper()
	f, err := tensor.OpenNpy("../fixtures/data/fmnist_test_x.npy")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := f.ReadRows(0, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	logits := func(m *graph.Model) []float32 {
		return runInputs(t, m, map[string]tensor.Dense{m.Graph.Inputs[0].Name: x})
	}
	p, q := logits(dense), logits(m)
	logSoftmax := func(r []float32) []float64 {
		mx := math.Inf(-1)
		for _, v := range r {
			mx = math.Max(mx, float64(v))
		}
		s := 0.0
		for _, v := range r {
			s += math.Exp(float64(v) - mx)
		}
		out := make([]float64, len(r))
		for i, v := range r {
			out[i] = float64(v) - mx - math.Log(s)
		}
		return out
	}
	c := len(p) / n
	kl := 0.0
	for r := range n {
		lp, lq := logSoftmax(p[r*c:(r+1)*c]), logSoftmax(q[r*c:(r+1)*c])
		for i := range lp {
			kl += math.Exp(lp[i]) * (lp[i] - lq[i])
		}
	}
	return kl / float64(n)
}

// runInputs runs m in onnxruntime on in and returns its first output.
func runInputs(t *testing.T, m *graph.Model, in map[string]tensor.Dense) []float32 {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(b, ort.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := out[0].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Distillation on the trained Fashion-MNIST ResNet with half its
// parameters removed (the last channels of every group): a few Adam
// steps on the calibration images bring the pruned model's outputs on
// held-out test images closer to the dense model's, and the trained
// weights are in the model onnxruntime runs.
func TestDistillMovesPrunedTowardDense(t *testing.T) {
	dense, m := prunedResNet(t)
	before := klToDense(t, dense, m, 200)
	src, err := calib.Open("../fixtures/data/fmnist_calib_x.npy", m, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	notes, err := Distill(context.Background(), m, dense, src, DistillConfig{Steps: 12, Batch: 16, LR: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	after := klToDense(t, dense, m, 200)
	t.Logf("KL to dense on 200 test images: %.4f before, %.4f after; %v", before, after, notes)
	if !(after < 0.8*before) {
		t.Errorf("KL to dense %.4f after distillation, %.4f before: not 20%% lower", after, before)
	}
}

// A distillation that diverges (a learning rate of 10) does worse on the
// held-out calibration batch than the pruned model, so the pruned
// weights are kept unchanged.
func TestDistillKeepsPrunedWeightsWhenTrainingHurts(t *testing.T) {
	before, after, notes := distillDiverging(t, 32)
	if math.Abs(after-before) > 1e-5*before {
		t.Errorf("KL to dense %.6f after a diverging distillation, %.6f before; notes %v", after, before, notes)
	}
}

// With one calibration batch nothing is held out: the checkpoints are
// compared on that batch, so a diverging run still leaves the pruned
// weights unchanged, and the notes say no data was held out.
func TestDistillOneBatchKeepsPrunedWeightsWhenTrainingHurts(t *testing.T) {
	before, after, notes := distillDiverging(t, 16)
	if math.Abs(after-before) > 1e-5*before {
		t.Errorf("KL to dense %.6f after a diverging distillation on one batch, %.6f before; notes %v", after, before, notes)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "none held out") {
		t.Errorf("notes do not say nothing was held out: %v", notes)
	}
}

// distillDiverging distils the pruned ResNet for two steps at a learning
// rate of 10 on the first samples calibration images (batches of 16) and
// returns its KL to the dense model on 50 test images before and after,
// and the notes.
func distillDiverging(t *testing.T, samples int) (before, after float64, notes []string) {
	t.Helper()
	dense, m := prunedResNet(t)
	before = klToDense(t, dense, m, 50)
	src, err := calib.Open("../fixtures/data/fmnist_calib_x.npy", m, samples)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	notes, err = Distill(context.Background(), m, dense, src, DistillConfig{Steps: 2, Batch: 16, LR: 10})
	if err != nil {
		t.Fatal(err)
	}
	return before, klToDense(t, dense, m, 50), notes
}

// prunedResNet is the trained ResNet (BatchNorm) and a copy with half
// its parameters removed, the last channels of every group.
func prunedResNet(t *testing.T) (dense, m *graph.Model) {
	t.Helper()
	dense, m, _ = prunedFixture(t, "fmnist_resnet_bn_op17.onnx")
	return dense, m
}

// TestLinearHead: a language model's logits come from a linear head
// (distilled by KL), an encoder's hidden states from a LayerNorm
// (distilled by MSE).
func TestLinearHead(t *testing.T) {
	for name, want := range map[string]bool{
		"llama_char_op17": true, "qwen2_nano_op17": true, "gpt2_nano_op17": true, "hf_llama_tiny": true,
		// The head's bias Add reads the bias first.
		"char_gpt_op17":  true,
		"bert_nano_op17": false, "hf_bert_tiny": false,
	} {
		m, err := graph.Load("../fixtures/models/" + name + ".onnx")
		if err != nil {
			t.Fatal(err)
		}
		if got := linearHead(m); got != want {
			t.Errorf("%s: linearHead = %v, want %v", name, got, want)
		}
	}
}
