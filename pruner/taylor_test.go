package pruner

import (
	"context"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// First-order Taylor importance (gradients through package grad's
// gorgonia translation, pseudo-labels from the dense model, no labels)
// on the trained Fashion-MNIST ResNet with BatchNorm: at 30% of the
// parameters removed by one global ranking, it keeps more test accuracy
// than weight magnitude and than random scores. (At 50% it does not:
// docs/RESULTS.md.)
func TestTaylorBeatsMagnitude(t *testing.T) {
	run := func(criterion string) (acc, removed float64) {
		m, err := graph.Load(fixtures + "models/fmnist_resnet_bn_op17.onnx")
		if err != nil {
			t.Fatal(err)
		}
		an, err := prune.Analyze(m, prune.Options{})
		if err != nil {
			t.Fatal(err)
		}
		before, err := graph.Count(m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Run(context.Background(), m, an, nil, Config{
			Settings: prune.Settings{Criterion: criterion, Target: "params", Ratio: 0.3, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1},
			Calib:    fixtures + "data/fmnist_calib_x.npy", Allocate: "global",
		})
		if err != nil {
			t.Fatalf("%s: %v", criterion, err)
		}
		after, err := graph.Count(m)
		if err != nil {
			t.Fatal(err)
		}
		return testAccuracy(t, m), 1 - float64(after.Params)/float64(before.Params)
	}
	mAcc, mRm := run("magnitude")
	rAcc, _ := run("random")
	tAcc, tRm := run("taylor")
	t.Logf("random %.3f", rAcc)
	t.Logf("magnitude: %.1f%% removed, accuracy %.3f; taylor: %.1f%% removed, accuracy %.3f", 100*mRm, mAcc, 100*tRm, tAcc)
	if tRm < 0.29 || mRm < 0.29 {
		t.Fatalf("removed %.3f (taylor) and %.3f (magnitude), asked 0.3", tRm, mRm)
	}
	if tAcc <= mAcc || tAcc <= rAcc {
		t.Errorf("taylor %.3f does not beat magnitude %.3f and random %.3f", tAcc, mAcc, rAcc)
	}
}
