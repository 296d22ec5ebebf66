package importance_test

import (
	"context"
	"testing"

	"github.com/pare-dev/pare/calib"
	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/prune"
)

// One prunable group, two calibration rows in batches of one: each batch
// costs a reference pass and two perturbed passes, so a budget of 4 uses
// one batch (3 passes) and a budget of 100 both (6). The scores are
// seeded: two runs agree.
func TestZerothBudgetAndSeed(t *testing.T) {
	for _, c := range []struct{ budget, passes int }{{4, 3}, {100, 6}} {
		var scores []map[int]float64
		for range 2 {
			a, g, d := gemms(t)
			d.Batch = 1
			z := &importance.Zeroth{Local: importance.Magnitude{P: 2}, Budget: c.budget, Seed: 3}
			z.SetData(a.Model, d)
			s := prune.Settings{Criterion: "zeroth", Scope: "global", Target: "channels", Ratio: 0.3, MaxLayerRatio: 0.8,
				Options: &prune.CriterionOptions{}}
			plan, err := z.Plan(context.Background(), a, s)
			if err != nil {
				t.Fatalf("onnxruntime: %v", err)
			}
			if z.Passes != c.passes {
				t.Errorf("budget %d: %d passes, want %d", c.budget, z.Passes, c.passes)
			}
			if plan.Settings.Options.ZOPasses != c.passes {
				t.Errorf("plan records %d passes", plan.Settings.Options.ZOPasses)
			}
			if !(z.Scores[g.ID] > 0) {
				t.Errorf("sensitivity %v, want > 0", z.Scores[g.ID])
			}
			scores = append(scores, z.Scores)
		}
		if scores[0][0] != scores[1][0] {
			t.Errorf("seeded runs differ: %v and %v", scores[0], scores[1])
		}
	}
}

// A model whose weights are int8 codes behind DequantizeLinear (the QDQ
// MultiHeadAttention layer of fixtures/contrib): zeroth perturbs the float
// members only, and the perturbed model still loads.
func TestZerothQuantizedWeights(t *testing.T) {
	m, err := graph.Load("../fixtures/contrib/models/bert_layer_mha_qdq.onnx")
	if err != nil {
		t.Fatal(err)
	}
	a, err := prune.Analyze(m, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := calib.Open("../fixtures/contrib/ref/bert_layer_mha_qdq.inputs.npz", m, 0)
	if err != nil {
		t.Fatal(err)
	}
	z := &importance.Zeroth{Local: importance.Magnitude{P: 2}, Budget: 8, Seed: 1}
	z.SetData(m, importance.Data{Src: src})
	s := prune.Settings{Criterion: "zeroth", Scope: "global", Target: "channels", Ratio: 0.3, MaxLayerRatio: 0.8,
		Options: &prune.CriterionOptions{}}
	if _, err := z.Plan(context.Background(), a, s); err != nil {
		t.Fatal(err)
	}
}
