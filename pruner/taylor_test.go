package pruner

import (
	"testing"

	"github.com/pare-dev/pare/prune"
)

// First-order Taylor importance (gradients through package grad's
// gorgonia translation, pseudo-labels from the dense model, no labels)
// on the trained Fashion-MNIST ResNet with BatchNorm: at 30% of the
// parameters removed by one global ranking, it keeps more test accuracy
// than weight magnitude and than random scores. (At 50% it does not:
// docs/RESULTS.md.)
func TestTaylorBeatsMagnitude(t *testing.T) {
	if testing.Short() {
		t.Skip("an accuracy study on a trained model (several prunes with calibration): run without -short")
	}
	run := func(criterion string) (acc, removed float64) {
		acc, removed, _ = pruneFixture(t, "fmnist_resnet_bn_op17.onnx", Config{
			Settings: prune.Settings{Criterion: criterion, Target: "params", Ratio: 0.3, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1},
			Allocate: "global",
		})
		return acc, removed
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
