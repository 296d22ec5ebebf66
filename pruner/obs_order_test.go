package pruner

import (
	"context"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/importance"
	"github.com/pare-dev/pare/prune"
)

// Ordering each group's channels greedily (one removal at a time, the
// rest re-costed after each optimal update) leaves the trained DenseNet
// and MobileNet closer to their dense outputs at 70% of the parameters
// removed than costing every channel alone, and more accurate, with
// the same allocation and reconstruction.
func TestGreedyOBSOrderBeatsOneShot(t *testing.T) {
	if testing.Short() {
		t.Skip("four OBS prunes with reconstruction: run without -short")
	}
	for _, model := range []string{"models/fmnist_densenet_op17.onnx", "models/fmnist_mobilenet_op17.onnx"} {
		dense, err := graph.Load(fixtures + model)
		if err != nil {
			t.Fatal(err)
		}
		denseOut := testOutputs(t, dense)
		run := func(order string) (acc, relErr float64) {
			m, err := graph.Load(fixtures + model)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := RunSteps(context.Background(), m, prune.Options{}, Config{
				Settings: prune.Settings{Criterion: "obs", Target: "params", Ratio: 0.7, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1},
				Calib:    fixtures + "data/fmnist_calib_x.npy", Reconstruct: true, OBSOrder: order,
			}, 1); err != nil {
				t.Fatal(err)
			}
			return testAccuracy(t, m), CompareOutputs(denseOut, testOutputs(t, m), 10).RelMSE
		}
		oneAcc, oneErr := run(importance.OBSOneShot)
		acc, relErr := run(importance.OBSGreedy)
		t.Logf("%s: one-shot accuracy %.3f, relative output error %.4f; greedy %.3f, %.4f", model, oneAcc, oneErr, acc, relErr)
		if relErr > 0.8*oneErr {
			t.Errorf("%s: greedy relative output error %.4f, want at least 20%% below one-shot's %.4f", model, relErr, oneErr)
		}
		if acc <= oneAcc {
			t.Errorf("%s: greedy accuracy %.3f, want above one-shot's %.3f", model, acc, oneAcc)
		}
	}
}
