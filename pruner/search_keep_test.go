package pruner

import (
	"context"
	"slices"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// With KeepModels (bench/results' candidate tables), the picked
// candidate's copy stays as the search measured it: the block fit
// trains the installed model's weights, not the kept copy's. On the
// trained OpNet at 70% the pick has 5 steps, the copy that is
// installed rather than redone.
func TestSearchKeepsPickBeforeFit(t *testing.T) {
	m, err := graph.Load(fixtures + "models/fmnist_opnet_op12.onnx")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Settings: prune.Settings{Criterion: "obs", Target: "params", Ratio: 0.7, MaxLayerRatio: 0.8, RoundTo: prune.DefaultRoundTo, RoundNarrow: prune.DefaultRoundNarrow, RoundSoft: true, Seed: 1},
		Calib:    fixtures + "data/fmnist_calib_x.npy", Reconstruct: true, FitBlocks: 10,
	}
	_, s, err := RunSearch(context.Background(), m, prune.Options{}, cfg, SearchConfig{KeepModels: true})
	if err != nil {
		t.Fatal(err)
	}
	pick := s.Candidates[s.Picked]
	t.Logf("picked %s", pick.Name)
	if pick.Steps < 2 {
		t.Fatalf("picked the one-step %s: this test needs a multi-step pick", pick.Name)
	}
	changed := 0
	for _, init := range m.Graph.Proto.Initializer {
		kept := pick.Model.Graph.Initializer(init.GetName())
		if kept == nil || !slices.Equal(kept.RawData, init.RawData) || !slices.Equal(kept.FloatData, init.FloatData) {
			changed++
		}
	}
	if changed == 0 {
		t.Errorf("the kept candidate has the fitted weights of the written model")
	}
}
