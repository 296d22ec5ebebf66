package pruner

import (
	"context"
	"strings"
	"testing"

	"github.com/pare-dev/pare/graph"
	"github.com/pare-dev/pare/prune"
)

// On the trained Fashion-MNIST ResNet (BatchNorm) at 70% of the
// parameters removed with OBS and reconstruction, three steps that
// re-collect the statistics on the pruned model keep more accuracy than
// one step from the dense model's.
func TestStepsBeatOneStep(t *testing.T) {
	if testing.Short() {
		t.Skip("four OBS prunes with reconstruction: run without -short")
	}
	run := func(steps int) (acc, removed float64, out *Outcome) {
		m, err := graph.Load(fixtures + "models/fmnist_resnet_bn_op17.onnx")
		if err != nil {
			t.Fatal(err)
		}
		before, err := graph.Count(m)
		if err != nil {
			t.Fatal(err)
		}
		out, err = RunSteps(context.Background(), m, prune.Options{}, Config{
			Settings: prune.Settings{Criterion: "obs", Target: "params", Ratio: 0.7, MaxLayerRatio: 0.8, RoundTo: 8, RoundSoft: true, Seed: 1},
			Calib:    fixtures + "data/fmnist_calib_x.npy", Reconstruct: true,
		}, steps)
		if err != nil {
			t.Fatalf("%d steps: %v", steps, err)
		}
		after, err := graph.Count(m)
		if err != nil {
			t.Fatal(err)
		}
		return testAccuracy(t, m), 1 - float64(after.Params)/float64(before.Params), out
	}
	oneAcc, oneRm, _ := run(1)
	acc, rm, out := run(3)
	t.Logf("1 step: %.1f%% removed, accuracy %.3f; 3 steps: %.1f%% removed, accuracy %.3f", 100*oneRm, oneAcc, 100*rm, acc)
	if rm < 0.68 || rm > 0.72 || oneRm < 0.68 {
		t.Fatalf("removed %.3f (3 steps), %.3f (1 step), asked 0.7", rm, oneRm)
	}
	if acc < oneAcc+0.01 {
		t.Errorf("3 steps %.3f do not beat 1 step %.3f by a point", acc, oneAcc)
	}
	n := 0
	for _, s := range out.Notes {
		if strings.HasPrefix(s, "step ") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d step notes: %q", n, out.Notes)
	}
}
