package prune_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pare-dev/pare/prune"
	"github.com/pare-dev/pare/prune/prunetest"
	"github.com/pare-dev/pare/tensor"
)

// TestContribLayers: on the onnxruntime-fused BERT layers of
// fixtures/contrib (com.microsoft Attention, SkipLayerNormalization,
// FastGelu/BiasGelu), the dense model matches its numpy reference in
// onnxruntime, --mlp 0.25 prunes through FastGelu/BiasGelu (bias sliced)
// and matches the dead-channel oracle, and the Attention heads and the
// SkipLayerNormalization widths stay frozen with the node named.
func TestContribLayers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(fixtureDir, "contrib", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		fixture
		RefOutputs string `json:"ref_outputs"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 {
		t.Fatal("fixtures/contrib/index.json lists no models")
	}
	mlp := prune.Settings{Criterion: "magnitude", Scope: "global", Target: "channels", MaxLayerRatio: 0.8,
		KindRatios: map[string]float64{prune.KindMLP: 0.25}}
	for _, e := range list {
		f := e.fixture
		f.Path = filepath.Join("contrib", f.Path)
		f.RefInputs = filepath.Join("contrib", f.RefInputs)
		t.Run(f.Name, func(t *testing.T) {
			m := loadFixture(t, f)
			in := inputsOf(t, f)
			ref, err := tensor.ReadNpz(filepath.Join(fixtureDir, "contrib", e.RefOutputs))
			if err != nil {
				t.Fatal(err)
			}
			got := prunetest.Run(t, prunetest.Clone(t, m), in)
			if d := prunetest.MaxRelDiff(t, got, []tensor.Dense{ref["y"]}); d > 1e-5 {
				t.Fatalf("dense model differs from its numpy reference by %.3g relative", d)
			}
			r := prunetest.DeadOracle(t, m, in, prune.Options{}, mlp)
			if !r.Exact {
				t.Errorf("an inexact group was pruned: %v", r)
			}
			t.Log(r)
			an, err := prune.Analyze(prunetest.Clone(t, m), prune.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range an.Groups {
				if g.Kind == prune.KindHeads && !g.Frozen {
					t.Errorf("group %s: heads of com.microsoft Attention are prunable, but the rule does not rewrite them", g.Name)
				}
				if g.Kind != prune.KindMLP && !g.Frozen {
					t.Errorf("group %s (%s) prunable next to SkipLayerNormalization", g.Name, g.Kind)
				}
			}
		})
	}
}
