package recovery

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/tensor"
)

// maskedInputs draws rows of token ids with an attention mask that pads
// the tail of every third row, and the third input the model takes:
// position ids 0..seq-1, or token types 0 then 1.
func maskedInputs(m *graph.Model, rows, seq int, seed uint64) map[string]tensor.Dense {
	r := rand.New(rand.NewPCG(seed, 3))
	shape := []int64{int64(rows), int64(seq)}
	out := map[string]tensor.Dense{}
	for _, in := range m.Graph.Inputs {
		v := make([]int64, rows*seq)
		for i := range v {
			row, pos := i/seq, i%seq
			switch in.Name {
			case "input_ids":
				v[i] = r.Int64N(256)
			case "attention_mask":
				if row%3 != 0 || pos < seq-4 {
					v[i] = 1
				}
			case "position_ids":
				v[i] = int64(pos)
			default: // token_type_ids
				if pos >= seq/2 {
					v[i] = 1
				}
			}
		}
		out[in.Name] = tensor.Dense{DType: tensor.Int64, Shape: shape, Data: v}
	}
	return out
}

// outputMSE is the mean squared difference of two models' outputs on
// in, run in onnxruntime with every input.
func outputMSE(t *testing.T, a, b *graph.Model, in map[string]tensor.Dense) float64 {
	t.Helper()
	p, q := runInputs(t, a, in), runInputs(t, b, in)
	s := 0.0
	for i := range p {
		d := float64(p[i] - q[i])
		s += d * d
	}
	return s / float64(len(p))
}

// Distillation of exports that take an attention mask and position or
// token-type ids besides the ids (a Llama decoder, a BERT encoder, with
// half their parameters removed): every input reaches both the dense
// model and the student, and the outputs on other padded inputs move
// toward the dense model's.
func TestDistillModelsWithMaskInputs(t *testing.T) {
	for _, name := range []string{"llama_masked_nano_op17", "bert_masked_nano_op17"} {
		t.Run(name, func(t *testing.T) {
			dense, m, _ := prunedFixture(t, name+".onnx")
			data := filepath.Join(t.TempDir(), "calib.npz")
			if err := tensor.WriteNpzFile(data, maskedInputs(m, 96, 12, 1), false); err != nil {
				t.Fatal(err)
			}
			eval := maskedInputs(m, 16, 12, 2)
			before := outputMSE(t, dense, m, eval)
			src, err := calib.Open(data, m, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			notes, err := Distill(context.Background(), m, dense, src, DistillConfig{Steps: 40, Batch: 32, LR: 1e-3})
			if err != nil {
				t.Fatal(err)
			}
			after := outputMSE(t, dense, m, eval)
			t.Logf("output MSE to dense on 16 other padded rows: %.4g before, %.4g after; %s", before, after, strings.Join(notes, "; "))
			if !(after < 0.8*before) {
				t.Errorf("output MSE to dense %.4g after distillation, %.4g before: not 20%% lower", after, before)
			}
		})
	}
}
